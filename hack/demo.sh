#!/usr/bin/env bash
# The demo (README, first command), the way users run the operator: a local
# control plane with a real node (containerd, kubelet, kube-proxy,
# kube-scheduler), the operator image built here, the Smooch emulator as a
# Deployment behind a Service, the Helm chart installed into a namespace
# enforcing the `restricted` Pod Security profile; applies examples/, waits
# until everything is Ready, and shows the pods, the resources, the Secrets
# (values masked) and the key's JWT decoded. Stays up until Ctrl-C (or exits
# at once with --exit; without a terminal it exits too unless --wait), then
# removes everything it started and restores the host.
#
#   hack/demo.sh [--exit|--wait] [--out-of-cluster]
#
# The node needs root and changes the host while it runs (printed before
# anything is changed; undone on exit). --out-of-cluster: the old mode, no
# node and no root: the operator and the emulator run as local processes
# against a loopback-only control plane.
# SMOOCH_OPERATOR_BIN / SMOOCH_EMULATOR_BIN: use these binaries instead of
# building them (the tests do, from inside `cargo test`).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
NS=smooch-demo
OPERATOR_NS=smooch-operator

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

mode="" node=1
for arg in "$@"; do
  case $arg in
    --exit|--wait) mode=$arg ;;
    --out-of-cluster) node=0 ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done

# Debian packages the demo uses (present on most machines), and for the
# node: containerd, runc, CNI plugins, conntrack, nftables, podman, gcc.
packages=(openssl jq curl)
((node == 0)) || packages+=(containerd runc containernetworking-plugins conntrack iptables nftables podman gcc libc6-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((node)); then
  ((EUID == 0)) || { echo "demo: the node needs root (or run hack/demo.sh --out-of-cluster)" >&2; exit 1; }
  say "What this demo changes on this host (all undone when it exits)"
  ((${#missing[@]} == 0)) || echo "  packages   apt-get install ${missing[*]} (stay installed)"
  hack/controlplane.sh node-changes
fi
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

say "Building the control plane (cached) and the operator"
BIN_DIR=$(hack/controlplane.sh build | tail -n 1)
if [[ -z ${SMOOCH_OPERATOR_BIN:-} || -z ${SMOOCH_EMULATOR_BIN:-} ]]; then
  cargo build --quiet --bin smooch-operator --bin smooch-emulator
fi
OPERATOR=${SMOOCH_OPERATOR_BIN:-${CARGO_TARGET_DIR:-target}/debug/smooch-operator}
EMULATOR=${SMOOCH_EMULATOR_BIN:-${CARGO_TARGET_DIR:-target}/debug/smooch-emulator}
export PATH="$BIN_DIR:$PATH"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/smooch-demo.XXXXXX")
RUN_DIR="$WORK/controlplane"
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo
  echo "demo: stopping operator, emulator and control plane"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  hack/controlplane.sh stop "$RUN_DIR" >/dev/null 2>"$WORK/stop.log" || cat "$WORK/stop.log" >&2
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ((node)); then
  say "Building the operator image (hack/image.sh: FROM scratch, operator + emulator)"
  SMOOCH_OPERATOR_BIN=$OPERATOR SMOOCH_EMULATOR_BIN=$EMULATOR \
    hack/image.sh --debug --quiet --rm --tag localhost/smooch-operator:demo --out "$WORK/image.tar" >/dev/null

  say "Starting the control plane and a node (containerd, kubelet, kube-proxy, kube-scheduler)"
  eval "$(hack/controlplane.sh start "$RUN_DIR" --parent-pid $$ --node)"
  hack/controlplane.sh import "$RUN_DIR" "$WORK/image.tar" 2>/dev/null
  kubectl get nodes -o wide

  say "Starting the Smooch emulator in the cluster (Deployment + Service 10.0.0.100)"
  SMOOCH_KEY_ID=app_$(openssl rand -hex 12)
  SMOOCH_SECRET=$(openssl rand -hex 16)
  kubectl apply -f - <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: smooch-emulator, labels: {pod-security.kubernetes.io/enforce: restricted}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: emulator, namespace: smooch-emulator}
spec:
  selector: {matchLabels: {app: emulator}}
  template:
    metadata: {labels: {app: emulator}}
    spec:
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: emulator
        image: localhost/smooch-operator:demo
        imagePullPolicy: Never
        command: [/usr/local/bin/smooch-emulator, serve, --listen, "0.0.0.0:8091"]
        env:
        - {name: SMOOCH_EMULATOR_MAKER_KEY_ID, value: "$SMOOCH_KEY_ID"}
        - {name: SMOOCH_EMULATOR_MAKER_SECRET, value: "$SMOOCH_SECRET"}
        ports: [{name: http, containerPort: 8091}]
        readinessProbe: {httpGet: {path: /_emulator/healthz, port: http}, periodSeconds: 1}
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
---
apiVersion: v1
kind: Service
metadata: {name: emulator, namespace: smooch-emulator}
spec:
  clusterIP: 10.0.0.100   # fixed: there is no cluster DNS
  selector: {app: emulator}
  ports: [{name: http, port: 8091, targetPort: http}]
YAML
  kubectl -n smooch-emulator rollout status deployment/emulator --timeout=120s
  SMOOCH_URL=http://10.0.0.100:8091
  SMOOCH_TOKEN=$("$EMULATOR" token --maker-key-id "$SMOOCH_KEY_ID" --maker-secret "$SMOOCH_SECRET" 2>/dev/null | tail -n 1)

  say "helm install (namespace $OPERATOR_NS enforces the restricted Pod Security profile)"
  kubectl create namespace "$OPERATOR_NS"
  kubectl label namespace "$OPERATOR_NS" pod-security.kubernetes.io/enforce=restricted
  kubectl -n "$OPERATOR_NS" create secret generic smooch-credentials \
    --from-literal=keyId="$SMOOCH_KEY_ID" --from-literal=secret="$SMOOCH_SECRET" >/dev/null
  echo "secret/smooch-credentials created in $OPERATOR_NS"
  helm install smooch-operator charts/smooch-operator --namespace "$OPERATOR_NS" \
    --set image.repository=localhost/smooch-operator --set image.tag=demo --set image.pullPolicy=Never \
    --set smoochUrl="$SMOOCH_URL" --set logJson=true --wait --timeout 180s >"$WORK/helm-install.txt"
  head -n 6 "$WORK/helm-install.txt"
else
  say "Starting etcd, kube-apiserver and kube-controller-manager"
  eval "$(hack/controlplane.sh start "$RUN_DIR" --parent-pid $$)"

  say "Starting the Smooch emulator"
  "$EMULATOR" serve --listen 127.0.0.1:0 --print-env "$WORK/emulator.env" >"$WORK/emulator.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [[ -s $WORK/emulator.env ]] && break; sleep 0.1; done
  # shellcheck disable=SC1091 # written by the emulator: SMOOCH_URL, SMOOCH_KEY_ID, SMOOCH_SECRET, SMOOCH_TOKEN
  source "$WORK/emulator.env"
  echo "emulator at $SMOOCH_URL (app-maker key $SMOOCH_KEY_ID)"

  say "Installing the CRDs and the default app-maker credentials"
  kubectl apply --server-side -f crds/crds.yaml
  kubectl wait --for condition=established --timeout=60s -f crds/crds.yaml
  kubectl create namespace "$OPERATOR_NS"
  kubectl -n "$OPERATOR_NS" create secret generic smooch-credentials \
    --from-literal=keyId="$SMOOCH_KEY_ID" --from-literal=secret="$SMOOCH_SECRET" >/dev/null
  echo "secret/smooch-credentials created in $OPERATOR_NS"

  say "Starting the operator"
  "$OPERATOR" --smooch-url "$SMOOCH_URL" --operator-namespace "$OPERATOR_NS" \
    --metrics-addr 127.0.0.1:0 >"$WORK/operator.log" 2>&1 &
  pids+=($!)
fi

say "Applying examples/ to namespace $NS"
kubectl create namespace "$NS"
kubectl -n "$NS" apply -f examples/
kubectl -n "$NS" wait --for=condition=Ready --timeout=120s \
  smoochapps,smoochkeys,smoochintegrations,smoochwebhooks --all

if ((node)); then
  say "Pods (kubectl get pods -A -o wide)"
  kubectl get pods -A -o wide
fi
say "Resources (kubectl get smooch -n $NS)"
kubectl -n "$NS" get smooch

mask() { local v=$1; if ((${#v} <= 6)); then printf '******'; else printf '%s…(%d chars)' "${v:0:4}" "${#v}"; fi; }
say "Secrets written by the operator (values masked)"
for secret in $(kubectl -n "$NS" get secrets -l app.kubernetes.io/managed-by=smooch-operator -o name); do
  echo "$secret"
  kubectl -n "$NS" get "$secret" -o json | jq -r '.data | to_entries[] | "\(.key) \(.value)"' |
    while read -r key value; do
      printf '  %-10s %s\n' "$key" "$(mask "$(printf '%s' "$value" | base64 -d)")"
    done
done

b64url() { local s=${1//-/+}; s=${s//_//}; while ((${#s} % 4)); do s+="="; done; printf '%s' "$s" | base64 -d; }
say "The key's JWT (Secret support-backend), decoded"
jwt=$(kubectl -n "$NS" get secret support-backend -o jsonpath='{.data.jwt}' | base64 -d)
IFS=. read -r header claims _ <<<"$jwt"
echo "header: $(b64url "$header" | jq -c .)"
echo "claims: $(b64url "$claims" | jq -c .)"

say "Try it yourself"
cat <<HINT
  export KUBECONFIG=$KUBECONFIG
  export PATH=$BIN_DIR:\$PATH
  kubectl get smooch -A
  kubectl -n $NS describe smoochkey backend
  kubectl -n $NS get secret support-backend -o jsonpath='{.data.jwt}' | base64 -d
HINT
if ((node)); then
  cat <<HINT
  kubectl -n $OPERATOR_NS get pods,deployment,service,lease
  kubectl -n $OPERATOR_NS logs deployment/smooch-operator
  helm -n $OPERATOR_NS upgrade smooch-operator charts/smooch-operator --reuse-values --set replicas=2
  curl -s $SMOOCH_URL/v1/apps -H "authorization: Bearer $SMOOCH_TOKEN"
  logs: $RUN_DIR/logs/ (kubelet, containerd, kube-apiserver, ...)
HINT
else
  cat <<HINT
  curl -s $SMOOCH_URL/v1/apps -H "authorization: Bearer \$(grep SMOOCH_TOKEN $WORK/emulator.env | cut -d= -f2)"
  logs: $WORK/operator.log, $WORK/emulator.log
HINT
fi
echo "work dir: $WORK"

if [[ $mode == --exit ]] || [[ $mode != --wait && (-n ${CI:-} || ! -t 0) ]]; then
  exit 0
fi
echo
echo "demo: running; press Ctrl-C to stop and clean up"
# (`wait` returns at once when a trapped signal arrives; a foreground sleep
# would hold the trap back until it ended.)
while true; do
  sleep 3600 &
  wait $! || true
done
