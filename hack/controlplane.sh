#!/usr/bin/env bash
# Build and run a throwaway Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager) on 127.0.0.1 for integration tests, envtest-style:
# the binaries are compiled from the Go modules pinned in tests/controlplane/
# (no Docker, no prebuilt downloads) and cached outside the repo.
#
#   hack/controlplane.sh build                 build (or reuse) the binaries; last stdout line = bin dir
#   hack/controlplane.sh bin-dir               print the bin dir of an existing build
#   hack/controlplane.sh start <run-dir> [--parent-pid PID] [--node]
#                                              start a control plane; stdout = `export ...` lines
#                                              --node: also a real node (root): containerd, kubelet,
#                                              kube-proxy, kube-scheduler, CNI bridge; Pods run
#   hack/controlplane.sh stop <run-dir>        stop it and remove <run-dir> (idempotent, trap-safe;
#                                              with --node: host changes undone, see hack/lib/node.sh)
#   hack/controlplane.sh up [<run-dir>] [--node]  start, wait for Ctrl-C, stop
#   hack/controlplane.sh import <run-dir> <archive>  load an OCI/docker image archive into the node
#   hack/controlplane.sh node-changes          print what --node changes on the host
#
# Typical test harness use:
#   eval "$(hack/controlplane.sh start "$dir" --parent-pid $$)"; trap 'hack/controlplane.sh stop "$dir"' EXIT
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CP_DIR=$ROOT/tests/controlplane
CACHE_ROOT=${SMOOCH_CACHE_DIR:-$HOME/.cache/smooch-operator}/controlplane
# kube-scheduler, kubelet and kube-proxy run only with `start DIR --node`.
BINARIES=(etcd kube-apiserver kube-controller-manager kubectl helm kube-scheduler kubelet kube-proxy)
# Bump when the build recipe below changes (flags, ldflags) so the cache key changes.
BUILD_REV=1
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
# Stay on the installed toolchain (never auto-download another Go) and never
# let a build edit go.mod/go.sum: they are the committed pins.
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"

log() { echo "controlplane: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { echo "${EPOCHREALTIME//[!0-9]/}"; }            # microseconds (locale-proof)
since() { local d=$(($(now) - $1)); printf '%d.%01ds' $((d / 1000000)) $((d % 1000000 / 100000)); }

# A self-contained kubeconfig (CA and client certificate embedded) for the
# API server at $API_URL: the admin's, and (--node) the kubelet's.
kubeconfig_for() { # <file> <user cert> <user key> [user name]
  cat >"$1" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: smooch-test
  cluster:
    server: $API_URL
    certificate-authority-data: $(base64 -w0 "$RUN/pki/ca.crt")
users:
- name: ${4:-user}
  user:
    client-certificate-data: $(base64 -w0 "$2")
    client-key-data: $(base64 -w0 "$3")
contexts:
- name: smooch-test
  context: {cluster: smooch-test, user: ${4:-user}}
current-context: smooch-test
KUBECONFIG
  chmod 600 "$1"
}
# shellcheck source=hack/lib/node.sh
source "$ROOT/hack/lib/node.sh"

# versions.env is the single source of truth; fail loudly if a go.mod disagrees.
load_versions() {
  # shellcheck disable=SC1091 # defines KUBE_VERSION, ETCD_VERSION, HELM_VERSION
  source "$CP_DIR/versions.env"
  local staging="v0.${KUBE_VERSION#v1.}" bad=0 line
  grep -Eq "^(require)?\s*k8s.io/kubernetes $KUBE_VERSION\$" "$CP_DIR/go.mod" ||
    { log "go.mod does not require k8s.io/kubernetes $KUBE_VERSION"; bad=1; }
  # Every k8s.io/* staging replace must point at the matching v0.X.Y tag.
  while read -r line; do
    [[ $line == *" $staging" ]] || { log "go.mod replace not at $staging: $line"; bad=1; }
  done < <(grep -E '^\s*k8s.io/\S+ => ' "$CP_DIR/go.mod")
  grep -Eq "^(require)?\s*go.etcd.io/etcd/server/v3 $ETCD_VERSION( |\$)" "$CP_DIR/etcd/go.mod" ||
    { log "etcd/go.mod does not require go.etcd.io/etcd/server/v3 $ETCD_VERSION"; bad=1; }
  grep -Eq "^\s*helm.sh/helm/v3 $HELM_VERSION( |\$)" "$CP_DIR/helm/go.mod" ||
    { log "helm/go.mod does not require helm.sh/helm/v3 $HELM_VERSION"; bad=1; }
  ((bad == 0)) || die "tests/controlplane/versions.env and the go.mod files disagree"
}

# <versions>-<hash of everything that determines the binaries>.
cache_key() {
  local h gover
  gover=$("$GO" env GOVERSION) || die "no Go toolchain at '$GO' (set GO=/path/to/go)"
  h=$(cd "$CP_DIR" && {
    echo "rev=$BUILD_REV go=$gover"
    find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum -o -name versions.env \) -print0 |
      sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-12)
  echo "k8s-$KUBE_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION-$h"
}

bin_dir() { echo "$CACHE_ROOT/$(cache_key)/bin"; }

have_all() { local b; for b in "${BINARIES[@]}"; do [[ -x $1/$b ]] || return 1; done; }

cmd_build() {
  load_versions
  local key bin tmp t0
  key=$(cache_key); bin=$CACHE_ROOT/$key/bin
  if ! have_all "$bin"; then
    mkdir -p "$CACHE_ROOT"
    # Parallel test jobs may all call build; only one compiles, the others wait.
    exec 9>"$CACHE_ROOT/.build.lock"
    flock -n 9 || { log "another build is running; waiting for it"; flock 9; }
  fi
  if have_all "$bin"; then
    log "binaries cached in $bin"
    echo "$bin"; return
  fi
  t0=$(now)
  rm -rf "${CACHE_ROOT:?}/$key"   # an incomplete entry (someone deleted a binary)
  # Build into a temp dir next to the cache and rename it into place, so an
  # interrupted build never leaves a half-filled cache entry.
  tmp=$(mktemp -d "$CACHE_ROOT/.tmp-$key.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp"; mkdir "$tmp/bin"
  log "building $key with $("$GO" env GOVERSION) (cold: ~12 min on 2 cores)"
  local v=${KUBE_VERSION#v} kube_ld="-s -w" p
  # Same version stamping as upstream hack/lib/version.sh, so `kubectl version` is truthful.
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    kube_ld+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=${v%%.*} -X $p.gitMinor=$(cut -d. -f2 <<<"$v") -X $p.gitTreeState=clean"
  done
  # Static binaries like the upstream release builds.
  export CGO_ENABLED=0
  (cd "$CP_DIR" && "$GO" build -trimpath -ldflags "$kube_ld" -o "$tmp/bin/" \
    ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kubectl \
    ./cmd/kube-scheduler ./cmd/kubelet ./cmd/kube-proxy)
  log "kube binaries done after $(since "$t0")"
  (cd "$CP_DIR/etcd" && "$GO" build -trimpath -ldflags "-s -w" -o "$tmp/bin/etcd" .)
  log "etcd done after $(since "$t0")"
  # helm's Makefile stamps its version and the k8s minor of its client-go.
  local cg; cg=$(cd "$CP_DIR/helm" && "$GO" list -m -f '{{.Version}}' k8s.io/client-go)
  cg=${cg#v0.}; cg=${cg%%.*}
  (cd "$CP_DIR/helm" && "$GO" build -trimpath -o "$tmp/bin/helm" -ldflags "-s -w \
    -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$cg \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$cg" \
    helm.sh/helm/v3/cmd/helm)
  printf 'built %s in %s with %s\n' "$(date -u +%FT%TZ)" "$(since "$t0")" "$("$GO" env GOVERSION)" >"$tmp/build-info"
  mv -T "$tmp" "$CACHE_ROOT/$key"   # atomic; the lock makes the target absent
  trap - EXIT
  log "build took $(since "$t0")"
  echo "$bin"
}

cmd_bin_dir() {
  load_versions
  local bin; bin=$(bin_dir)
  have_all "$bin" || die "not built yet: run hack/controlplane.sh build"
  echo "$bin"
}

# ---------------------------------------------------------------- start/stop

# Random free port below the kernel's ephemeral range (32768+), so it cannot
# collide with outgoing connections; result in REPLY (no subshell, so the
# "already picked" list survives).
PICKED=" "
free_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((10000 + RANDOM % 22000))
    [[ $PICKED == *" $p "* ]] && continue
    # Connection refused => nobody listens on it.
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then PICKED+="$p "; REPLY=$p; return; fi
  done
  die "no free loopback port found"
}

# Throwaway PKI for one run (EC P-256: instant to generate, accepted by
# kube-apiserver, Go, rustls and openssl clients).
gen_pki() { # <dir> [extra subjectAltName entries]
  local d=$1 extra_san=${2:-}
  ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
  sign() { # <name> <subject> <extensions>
    ec "$d/$1.key"
    openssl req -new -key "$d/$1.key" -subj "$2" -out "$d/$1.csr"
    openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
      -days 7 -out "$d/$1.crt" -extfile <(printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" "subjectKeyIdentifier=hash" \
        "authorityKeyIdentifier=keyid" "$3") 2>/dev/null
    rm "$d/$1.csr"
  }
  ec "$d/ca.key"
  openssl req -x509 -new -key "$d/ca.key" -subj "/CN=smooch-test-ca" -days 7 -out "$d/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  sign apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1${extra_san},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  sign admin "/O=system:masters/CN=admin" "extendedKeyUsage=clientAuth"
  ec "$d/sa.key"
  openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub"
  chmod 600 "$d"/*.key
}

# Start a component in its own session/process group (so stop can kill the
# whole group and the caller's Ctrl-C does not hit it), detached from the
# caller's stdio (so `$(controlplane.sh start ...)` returns).
spawn() { # <name> <cmd...>
  local name=$1; shift
  setsid "$@" </dev/null >>"$RUN/logs/$name.log" 2>&1 &
  echo "$name $!" >>"$RUN/pids"
}

# Poll an URL with the admin client cert until it answers "ok".
wait_ok() { # <name> <pid> <url> <timeout-seconds>
  local deadline=$((SECONDS + $4))
  until [[ $(curl -sS --max-time 2 --cacert "$RUN/pki/ca.crt" --cert "$RUN/pki/admin.crt" \
    --key "$RUN/pki/admin.key" "$3" 2>/dev/null) == ok ]]; do
    if ! kill -0 "$2" 2>/dev/null || ((SECONDS >= deadline)); then
      log "$1 did not become ready ($3); last log lines:"
      tail -n 30 "$RUN/logs/$1.log" >&2
      exit 1
    fi
    sleep 0.2
  done
}

cmd_start() {
  local parent_pid="" node=0
  RUN=${1:?usage: start <run-dir> [--parent-pid PID] [--node]}; shift
  while (($#)); do
    case $1 in
      --parent-pid) parent_pid=${2:?--parent-pid needs a PID}; shift 2 ;;
      --node) node=1; shift ;;
      *) die "start: unknown option $1" ;;
    esac
  done
  ((node == 0)) || node_preflight
  local t0
  bin=$(cmd_build | tail -n 1)
  t0=$(now)
  if [[ -e $RUN ]] && [[ -n $(ls -A "$RUN") ]]; then die "$RUN exists and is not empty"; fi
  mkdir -p "$RUN"
  RUN=$(cd "$RUN" && pwd)
  touch "$RUN/.smooch-controlplane"          # stop only deletes dirs carrying this marker
  mkdir -p "$RUN/logs" "$RUN/pki" "$RUN/etcd"
  chmod 700 "$RUN/pki" "$RUN/etcd"
  # If anything below fails, kill what was started and (--node) undo every
  # host change; the logs stay for inspection (the caller's `stop` removes them).
  trap 'rc=$?; if ((rc)); then log "start failed; logs in $RUN/logs"; node_teardown workloads; stop_processes "$RUN"; node_teardown host; fi' EXIT

  # The API server listens on loopback, or (--node) on the node IP, the
  # address of the bridge created here, so that Pods reach it through the
  # `kubernetes` Service (10.0.0.1, in its certificate for in-cluster clients).
  local api_host=127.0.0.1 san=""
  if ((node)); then
    mkdir -p "$RUN/node"
    echo "$bin" >"$RUN/node/bin-dir"
    node_lock
    node_refuse_leftovers
    node_record_host
    node_network
    api_host=$NODE_IP san=",IP:10.0.0.1,IP:$NODE_IP"
  fi
  gen_pki "$RUN/pki" "$san"
  ((node == 0)) || node_pki
  local etcd_port peer_port api_port kcm_port
  free_port; etcd_port=$REPLY; free_port; peer_port=$REPLY
  free_port; api_port=$REPLY; free_port; kcm_port=$REPLY
  echo "$etcd_port $peer_port $api_port $kcm_port" >"$RUN/ports"

  if [[ -n $parent_pid ]]; then spawn watchdog bash "$0" _watchdog "$RUN" "$parent_pid"; fi

  # etcd over plain HTTP, loopback only, like envtest; fsync off: test data is disposable.
  spawn etcd "$bin/etcd" --name=smooch --data-dir="$RUN/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="smooch=http://127.0.0.1:$peer_port" --unsafe-no-fsync --log-level=warn

  local sa_issuer=https://kubernetes.default.svc.cluster.local node_flags=()
  # Logs and exec: the API server dials the kubelet at the node IP (there is no DNS for its name).
  ((node == 0)) || node_flags=(--kubelet-preferred-address-types=InternalIP)
  spawn kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address="$api_host" --advertise-address="$api_host" --secure-port="$api_port" \
    --tls-cert-file="$RUN/pki/apiserver.crt" --tls-private-key-file="$RUN/pki/apiserver.key" \
    --client-ca-file="$RUN/pki/ca.crt" --authorization-mode=Node,RBAC \
    --service-account-issuer="$sa_issuer" --api-audiences="$sa_issuer" \
    --service-account-key-file="$RUN/pki/sa.pub" --service-account-signing-key-file="$RUN/pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true --profiling=false "${node_flags[@]}"
  API_URL=https://$api_host:$api_port
  wait_ok kube-apiserver "$(awk '$1 == "kube-apiserver" {print $2}' "$RUN/pids")" \
    "$API_URL/readyz" "${CONTROLPLANE_READY_TIMEOUT:-90}"
  log "kube-apiserver ready on $API_URL after $(since "$t0")"

  # Self-contained admin kubeconfig (certs embedded, so it can be copied around).
  kubeconfig_for "$RUN/kubeconfig" "$RUN/pki/admin.crt" "$RUN/pki/admin.key" admin

  # All default controllers (incl. garbagecollector, namespace, serviceaccount,
  # serviceaccount-token, deployment/replicaset...) unless overridden.
  spawn kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig="$RUN/kubeconfig" --authentication-kubeconfig="$RUN/kubeconfig" \
    --authorization-kubeconfig="$RUN/kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$kcm_port" --cert-dir="$RUN/pki/kcm" \
    --controllers="${CONTROLPLANE_KCM_CONTROLLERS:-*}" --leader-elect=false \
    --service-account-private-key-file="$RUN/pki/sa.key" --root-ca-file="$RUN/pki/ca.crt" \
    --service-cluster-ip-range=10.0.0.0/24 --profiling=false
  # The `default` ServiceAccount in `default` appears once the controllers run:
  # waiting for it means tests can create Pods right away.
  local deadline=$((SECONDS + 60))
  until "$bin/kubectl" --kubeconfig="$RUN/kubeconfig" -n default get serviceaccount default >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "kube-controller-manager did not create the default ServiceAccount; last log lines:"
      tail -n 30 "$RUN/logs/kube-controller-manager.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  ((node == 0)) || node_up
  trap - EXIT

  printf 'KUBECONFIG=%s\nCONTROLPLANE_BIN_DIR=%s\nAPISERVER_URL=%s\n' \
    "$RUN/kubeconfig" "$bin" "$API_URL" >"$RUN/env"
  ((node == 0)) || printf 'CONTROLPLANE_NODE=%s\nCONTAINERD_ADDRESS=%s\n' "$NODE_NAME" "$CONTAINERD_SOCK" >>"$RUN/env"
  log "control plane up in $(since "$t0") (run dir $RUN)"
  echo "export KUBECONFIG=$RUN/kubeconfig"
  echo "export CONTROLPLANE_BIN_DIR=$bin"
  ((node == 0)) || echo "export CONTROLPLANE_NODE=$NODE_NAME CONTAINERD_ADDRESS=$CONTAINERD_SOCK"
}

# TERM the given process groups, KILL whatever is left after the grace period,
# then wait until they are gone (they are not our children, so poll).
term_wait() {
  local pid i alive
  for pid in "$@"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  for ((i = 0; i < ${CONTROLPLANE_STOP_GRACE:-10} * 10; i++)); do
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.1
  done
  log "still running after TERM, sending KILL: $*"
  for pid in "$@"; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; done
  for ((i = 0; i < 50; i++)); do
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.1
  done
}

# Stop the clients of etcd first and etcd last: an apiserver whose etcd
# vanished hangs in shutdown, and etcd waits for its clients (~2s+3s total).
stop_processes() {
  local run=$1 name pid clients=() etcd=()
  [[ -f $run/pids ]] || return 0
  while read -r name pid; do
    [[ $pid == "$$" ]] && continue                # the watchdog stopping us
    # Guard against pid reuse: only touch processes that reference this run dir.
    grep -qF "$run" "/proc/$pid/cmdline" 2>/dev/null || continue
    if [[ $name == etcd ]]; then etcd+=("$pid"); else clients+=("$pid"); fi
  done <"$run/pids"
  ((${#clients[@]} == 0)) || term_wait "${clients[@]}"
  ((${#etcd[@]} == 0)) || term_wait "${etcd[@]}"
  : >"$run/pids"
}

cmd_stop() {
  local run=${1:?usage: stop <run-dir>} port
  [[ -d $run ]] || return 0                       # already stopped: idempotent
  run=$(cd "$run" && pwd)
  [[ -f $run/.smooch-controlplane ]] || die "$run is not a control plane run dir; not touching it"
  local restored=0
  RUN=$run node_teardown workloads
  stop_processes "$run"
  RUN=$run node_teardown host || restored=1
  if [[ -f $run/ports ]]; then
    for port in $(<"$run/ports"); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then log "WARNING: port $port still in use"; fi
    done
  fi
  if ((restored)); then
    # The record of the host's state stays, so that `stop` can be run again.
    rm -rf "$run/etcd" "$run/containerd/root"
    die "the node's host changes were not all undone (see above); record kept in $run/node/host"
  fi
  rm -rf "$run"
  log "stopped and removed $run"
}

# Stops the control plane when the parent dies (even by kill -9).
cmd_watchdog() {
  local run=$1 ppid=$2
  while kill -0 "$ppid" 2>/dev/null && [[ -d $run ]]; do sleep 1; done
  log "parent $ppid is gone; stopping $run"
  cmd_stop "$run"
}

cmd_up() {
  local run opts=()
  [[ ${1:-} == --* || -z ${1:-} ]] && run=$(mktemp -d /tmp/smooch-cp.XXXXXX) || { run=$1; shift; }
  opts=("$@")
  cmd_start "$run" --parent-pid $$ "${opts[@]}"   # the watchdog covers `kill -9` of this shell
  trap 'cmd_stop "$run"' EXIT   # after start: start clears its own EXIT trap
  trap 'exit 130' INT TERM
  log "running; Ctrl-C to stop"
  while :; do sleep 1; done   # short sleeps: the INT trap runs within a second
}

main() {
  local cmd=${1:-}; shift || true
  case $cmd in
    build) cmd_build ;;
    bin-dir) cmd_bin_dir ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    up) cmd_up "$@" ;;
    import) RUN=$(cd "${1:?usage: import <run-dir> <archive>}" && pwd); node_import "${2:?archive}" ;;
    node-changes) node_describe_changes ;;
    _watchdog) cmd_watchdog "$@" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

main "$@"
