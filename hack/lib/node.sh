# shellcheck shell=bash
# The node of `hack/controlplane.sh start DIR --node`: containerd + runc, a
# CNI bridge, kubelet, kube-proxy and kube-scheduler on this host, so that
# Pods really run. Sourced by hack/controlplane.sh (uses its log/die/spawn/
# free_port/now/since helpers and $RUN, $bin).
#
# Network rule: traffic goes only to loopback and to the networks created
# here: the bridge smooch0 with 10.244.0.1/24 (the node IP, where the API
# server listens and is advertised) and the Service range 10.0.0.0/24. Pods
# get a route to the Service range only, no default route, and no DNS.
#
# Everything changed on the host is recorded in $RUN/node/host before the
# first change and restored by node_teardown: sysctls (kubelet's kernel
# tunables, ip_forward from the bridge plugin), nftables/iptables tables and
# chains, mounts, network namespaces, links, cgroups, state directories.
# Only one node runs at a time (a lock in /run).

NODE_NAME=smooch-node
NODE_BRIDGE=smooch0
NODE_IP=10.244.0.1
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.0.0.0/24
NODE_LOCK=/run/smooch-operator-node.lock
# Sysctls kubelet (setupKernelTunables), kube-proxy and the CNI bridge
# plugin may write. ip_forward first: writing it also resets every
# conf.*.forwarding.
NODE_SYSCTLS=(net.ipv4.ip_forward net.ipv4.conf.all.forwarding net.ipv4.conf.default.forwarding
  net.ipv6.conf.all.forwarding net.ipv6.conf.default.forwarding
  kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.conf.all.route_localnet
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
  net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait net.netfilter.nf_conntrack_tcp_be_liberal)
# Host directories containerd, kubelet and CNI create outside the run dir
# (hardcoded in them); removed on teardown when they did not exist before.
NODE_HOST_PATHS=(/run/containerd /run/netns /var/lib/cni /var/log/pods /var/log/containers
  /var/lib/kubelet /var/lib/containerd /opt/containerd)
# Mount points under these prefixes that were not there before are ours.
node_mount_prefixes() { printf '%s\n' "$RUN/" /run/netns/ /run/containerd/ /var/lib/kubelet/; }
NODE_PACKAGES="containerd runc containernetworking-plugins conntrack iptables nftables podman gcc libc6-dev"

nlog() { log "node: $*"; }
# A failed step: name it (the caller's EXIT trap tears everything down).
step_failed() { # <step> <message> [log name]
  log "ERROR: node step '$1' failed: $2"
  if [[ -n ${3:-} && -f $RUN/logs/$3.log ]]; then
    log "last lines of $RUN/logs/$3.log:"
    tail -n 25 "$RUN/logs/$3.log" >&2
  fi
  exit 1
}

# ----------------------------------------------------------------- checks

node_preflight() {
  ((EUID == 0)) || die "--node needs root (it runs containerd and kubelet)"
  local missing=() t
  for t in containerd containerd-shim-runc-v2 runc ctr conntrack iptables nft podman gcc; do
    command -v "$t" >/dev/null || missing+=("$t")
  done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] ||
    missing+=("/usr/lib/cni/{bridge,host-local,loopback}")
  ((${#missing[@]} == 0)) || die "--node needs ${missing[*]}: apt-get install $NODE_PACKAGES (.ci/run does)"
  iptables --version | grep -q nf_tables ||
    die "--node needs the nf_tables backend of iptables (update-alternatives --set iptables /usr/sbin/iptables-nft)"
}

# One node per host: a lock dir naming its run dir. A lock whose run dir is
# gone is stale (a killed run whose teardown never ran) and is taken over.
node_lock() {
  local deadline=$((SECONDS + ${NODE_LOCK_TIMEOUT:-900})) owner said=0
  until mkdir "$NODE_LOCK" 2>/dev/null; do
    owner=$(cat "$NODE_LOCK/owner" 2>/dev/null || true)
    if [[ -n $owner && ! -f $owner/.smooch-controlplane ]]; then
      nlog "taking over the stale lock of $owner"
      rm -rf "$NODE_LOCK"; continue
    fi
    ((said)) || { nlog "another node runs ($owner); waiting for it"; said=1; }
    ((SECONDS < deadline)) || die "another node still runs after ${NODE_LOCK_TIMEOUT:-900}s ($owner)"
    sleep 1
  done
  echo "$RUN" >"$NODE_LOCK/owner"
  echo "$RUN" >"$RUN/node/locked"
}

node_unlock() {
  [[ -f $RUN/node/locked ]] || return 0
  [[ $(cat "$NODE_LOCK/owner" 2>/dev/null) == "$RUN" ]] && rm -rf "$NODE_LOCK"
  rm -f "$RUN/node/locked"
}

# ------------------------------------------------------- host state record

nft_tables() { nft list tables 2>/dev/null | sort; }
# iptables-save without comments and counters, so that two dumps compare.
ipt_dump() { "$1" 2>/dev/null | sed -e '/^#/d' -e 's/ \[[0-9]*:[0-9]*\]$//'; }
mountpoints() { awk '{print $5}' /proc/self/mountinfo; }
link_names() { ip -o link show | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | sort; }

# Refuse to start on top of another node's leftovers: they would be taken
# for ours and removed, or break the run.
node_refuse_leftovers() {
  local d
  for d in $(kubepods_dirs); do
    die "$d exists: another kubelet runs here, or a node run was not torn down"
  done
  if ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    die "link $NODE_BRIDGE exists: a node run was not torn down (ip link delete $NODE_BRIDGE)"
  fi
  ip -4 -o addr show | grep -q " $NODE_IP/" && die "$NODE_IP is already an address of this host"
  local a
  for a in "$NODE_IP" 10.0.0.1; do
    [[ -z $(ip -4 route show to match "$a" | grep -v '^default') ]] ||
      die "a route of this host covers $a ($(ip -4 route show to match "$a" | grep -v '^default' | head -1)): $POD_CIDR or $SERVICE_CIDR is in use"
  done
  return 0
}

# What the teardown restores, recorded before the first change.
node_record_host() {
  local h=$RUN/node/host k v p
  mkdir -p "$h"
  : >"$h/sysctls"
  for k in "${NODE_SYSCTLS[@]}"; do
    v=$(sysctl -n "$k" 2>/dev/null) && printf '%s=%s\n' "$k" "$v" >>"$h/sysctls"
  done
  nft_tables >"$h/nft-tables"
  ipt_dump iptables-save >"$h/iptables"
  ipt_dump ip6tables-save >"$h/ip6tables"
  : >"$h/paths"
  for p in "${NODE_HOST_PATHS[@]}"; do [[ -e $p ]] && echo "$p" >>"$h/paths"; done
  mountpoints >"$h/mounts"
  link_names >"$h/links"
  ls /run/netns 2>/dev/null >"$h/netns" || : >"$h/netns"
  touch "$h/complete"
}

# What start --node will change, for people to read before it happens.
node_describe_changes() {
  cat <<EOF
hack/controlplane.sh --node changes this host while the node runs, and restores it on stop:
  processes  containerd, kubelet, kube-proxy, kube-scheduler, containerd-shim-runc-v2 and the pods
  interfaces bridge $NODE_BRIDGE with $NODE_IP/24 (node IP; the API server listens there), one veth per pod;
             a route for the Service range $SERVICE_CIDR via the bridge
  netns      /run/netns/cni-* (one per pod)
  sysctls    net.ipv4.ip_forward=1 (CNI bridge); kernel.panic=10, kernel.panic_on_oops=1,
             vm.overcommit_memory=1, vm.panic_on_oom=0, kernel.keys.root_max{keys,bytes} (kubelet)
             (originals saved in the run dir, written back on stop)
  iptables   nf_tables tables ip/ip6 filter, nat, mangle with KUBE-* chains (kube-proxy, kubelet);
             tables that did not exist before are deleted on stop, existing ones restored
  mounts     kubelet volumes and container rootfs under the run dir, netns under /run/netns
  cgroups    /sys/fs/cgroup/*/kubepods
  dirs       /run/containerd, /var/log/pods, /var/log/containers, /var/lib/cni (when absent before)
  traffic    loopback, $NODE_IP and the Service range $SERVICE_CIDR only (pods get no default route)
EOF
}

# ------------------------------------------------------------------- start

node_pki() {
  local d=$RUN/pki
  sign_node() { # <name> <subject> <extensions>
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/$1.key" 2>/dev/null
    openssl req -new -key "$d/$1.key" -subj "$2" -out "$d/$1.csr"
    openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
      -days 7 -out "$d/$1.crt" -extfile <(printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" "$3") 2>/dev/null
    rm "$d/$1.csr"; chmod 600 "$d/$1.key"
  }
  # The Node authorizer and NodeRestriction know the kubelet by this name.
  sign_node kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" "extendedKeyUsage=clientAuth"
  sign_node kubelet-serving "/CN=$NODE_NAME" "extendedKeyUsage=serverAuth
subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME"
}


# The bridge exists before the API server starts (it listens on its
# address); the CNI bridge plugin finds it and attaches the pods' veths.
node_network() {
  ip link add "$NODE_BRIDGE" type bridge || step_failed network "cannot create bridge $NODE_BRIDGE"
  echo "$NODE_BRIDGE" >"$RUN/node/bridge"
  ip addr add "$NODE_IP/24" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  # The host's own connections to ClusterIPs (tests, the demo's curl) leave
  # from the node IP onto the bridge, never by the default route: without a
  # Service rule a packet stays on the bridge. (Goes away with the bridge.)
  ip route add "$SERVICE_CIDR" dev "$NODE_BRIDGE" src "$NODE_IP"
}

node_cni_config() {
  mkdir -p "$RUN/cni/net.d" "$RUN/cni/ipam"
  # Routes: the Service range only (ClusterIPs are DNATed on the host); the
  # pod subnet is on-link. No default route, no masquerade: a pod cannot
  # send anywhere else.
  cat >"$RUN/cni/net.d/10-smooch.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "smooch-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "$SERVICE_CIDR"}],
        "dataDir": "$RUN/cni/ipam"
      }
    }
  ]
}
EOF
}

node_containerd() {
  local c=$RUN/containerd
  mkdir -p "$c"
  CONTAINERD_SOCK=$c/containerd.sock
  cat >"$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Without CAP_SYS_RESOURCE (CI VMs) runc cannot lower oom_score_adj to the
  # -998 CRI asks for sandboxes; clamp it to containerd's own instead.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$c/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN/cni/net.d"
    max_conf_num = 1
EOF
  spawn containerd containerd --config "$c/config.toml"
  local pid deadline=$((SECONDS + 30))
  pid=$(pid_of containerd)
  until ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || step_failed containerd "containerd exited" containerd
    ((SECONDS < deadline)) || step_failed containerd "no answer on $CONTAINERD_SOCK after 30s" containerd
    sleep 0.2
  done
}

# Import an OCI or docker archive into the node's image store (kubelet's
# namespace k8s.io), for pods with imagePullPolicy Never/IfNotPresent.
node_import() { # <archive>
  ctr --address "$RUN/containerd/containerd.sock" -n k8s.io images import "$1" >&2 ||
    step_failed images "ctr images import $1"
}

# The pause image: built from hack/pause/pause.c (gcc -static, FROM scratch)
# and cached by content, since no registry is reachable.
pause_archive() {
  local dir h tmp
  # Bump rev when the image recipe below changes.
  h=$({ echo rev=1; cat "$ROOT/hack/pause/pause.c"; } | sha256sum | cut -c1-12)
  dir=${SMOOCH_CACHE_DIR:-$HOME/.cache/smooch-operator}/images
  PAUSE_IMAGE=localhost/smooch-pause:$h
  PAUSE_TAR=$dir/pause-$h.tar
  [[ -s $PAUSE_TAR ]] && return 0
  mkdir -p "$dir"
  tmp=$(mktemp -d "$dir/.pause.XXXXXX")
  gcc -static -Os -s -o "$tmp/pause" "$ROOT/hack/pause/pause.c" || { rm -rf "$tmp"; step_failed images "gcc -static pause.c"; }
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$tmp/Containerfile"
  if ! podman build -q -f "$tmp/Containerfile" -t "$PAUSE_IMAGE" "$tmp" >/dev/null ||
    ! podman save -q --format oci-archive -o "$tmp/pause.tar" "$PAUSE_IMAGE"; then
    rm -rf "$tmp"; step_failed images "podman build of the pause image"
  fi
  podman rmi "$PAUSE_IMAGE" >/dev/null 2>&1 || true
  mv "$tmp/pause.tar" "$PAUSE_TAR"; rm -rf "$tmp"
}

node_kubelet() {
  local k=$RUN/kubelet port hport
  mkdir -p "$k" "$RUN/pod-logs"
  free_port; port=$REPLY; free_port; hport=$REPLY
  kubeconfig_for "$RUN/kubelet.kubeconfig" "$RUN/pki/kubelet-client.crt" "$RUN/pki/kubelet-client.key"
  cat >"$RUN/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 hosts (Firecracker VMs) are refused by default since 1.35.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $NODE_IP
port: $port
healthzBindAddress: 127.0.0.1
healthzPort: $hport
readOnlyPort: 0
tlsCertFile: $RUN/pki/kubelet-serving.crt
tlsPrivateKeyFile: $RUN/pki/kubelet-serving.key
# The API server (logs, exec) is the only client, on the node IP.
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
podLogsDir: $RUN/pod-logs
# No cluster DNS and no host resolvers in pods: they use ClusterIPs.
resolvConf: ""
failSwapOn: false
maxOpenFiles: $(ulimit -Hn)
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 1Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
nodeStatusUpdateFrequency: 5s
EOF
  spawn kubelet "$bin/kubelet" --config="$RUN/kubelet-config.yaml" --kubeconfig="$RUN/kubelet.kubeconfig" \
    --root-dir="$k" --cert-dir="$RUN/pki/kubelet" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
}

node_scheduler() {
  local port; free_port; port=$REPLY
  spawn kube-scheduler "$bin/kube-scheduler" --kubeconfig="$RUN/kubeconfig" \
    --authentication-kubeconfig="$RUN/kubeconfig" --authorization-kubeconfig="$RUN/kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$port" --cert-dir="$RUN/pki/scheduler" --leader-elect=false
  local pid deadline=$((SECONDS + 60))
  pid=$(awk '$1 == "kube-scheduler" {print $2}' "$RUN/pids")
  until [[ $(curl -sk --max-time 2 "https://127.0.0.1:$port/healthz" 2>/dev/null) == ok ]]; do
    kill -0 "$pid" 2>/dev/null || step_failed scheduler "kube-scheduler exited" kube-scheduler
    ((SECONDS < deadline)) || step_failed scheduler "kube-scheduler not healthy after 60s" kube-scheduler
    sleep 0.2
  done
}

node_proxy() {
  local hport mport; free_port; hport=$REPLY; free_port; mport=$REPLY
  cat >"$RUN/kube-proxy-config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $RUN/kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
healthzBindAddress: 127.0.0.1:$hport
metricsBindAddress: 127.0.0.1:$mport
nodePortAddresses: ["$NODE_IP/32"]
# No NodePorts on 127.0.0.1: leaves net.ipv4.conf.all.route_localnet alone.
iptables: {localhostNodePorts: false}
# 0 = leave the host's conntrack sysctls alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  spawn kube-proxy "$bin/kube-proxy" --config="$RUN/kube-proxy-config.yaml" --v=1
  echo "$hport" >"$RUN/node/proxy-healthz-port"
}

node_wait_ready() {
  local deadline=$((SECONDS + ${NODE_READY_TIMEOUT:-120})) kc=("$bin/kubectl" --kubeconfig="$RUN/kubeconfig") name pid
  until "${kc[@]}" get node "$NODE_NAME" >/dev/null 2>&1; do
    pid=$(awk '$1 == "kubelet" {print $2}' "$RUN/pids")
    kill -0 "$pid" 2>/dev/null || step_failed "kubelet registration" "kubelet exited" kubelet
    ((SECONDS < deadline)) || step_failed "kubelet registration" "node $NODE_NAME not registered" kubelet
    sleep 0.3
  done
  nlog "node $NODE_NAME registered after $(since "$T0")"
  local ready msg
  while :; do
    ready=$("${kc[@]}" get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
    [[ $ready == True ]] && break
    if ((SECONDS >= deadline)); then
      msg=$("${kc[@]}" get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}' 2>/dev/null || true)
      if [[ $msg == *[Nn]etwork* || $msg == *CNI* || $msg == *cni* ]]; then
        step_failed CNI "node not Ready: $msg" containerd
      fi
      step_failed "node Ready" "node not Ready: $msg" kubelet
    fi
    for name in kubelet containerd kube-proxy; do
      pid=$(awk -v n="$name" '$1 == n {print $2}' "$RUN/pids")
      [[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || step_failed "$name" "$name exited" "$name"
    done
    sleep 0.3
  done
  # kube-proxy has written the Service rules once it reports healthy.
  local hp; hp=$(<"$RUN/node/proxy-healthz-port")
  until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$hp/healthz" 2>/dev/null) == 200 ]]; do
    ((SECONDS < deadline)) || step_failed kube-proxy "not healthy (no Service rules)" kube-proxy
    sleep 0.3
  done
}

# Called by cmd_start after the control plane is up (the bridge and PKI
# were made before the API server started).
node_up() {
  T0=$(now)
  pause_archive
  node_cni_config
  node_containerd
  node_import "$PAUSE_TAR" >/dev/null
  nlog "containerd up, pause image imported after $(since "$T0")"
  node_scheduler
  node_kubelet
  node_proxy
  node_wait_ready
  nlog "node $NODE_NAME Ready (containerd, kubelet, kube-proxy, kube-scheduler) after $(since "$T0")"
}

# ---------------------------------------------------------------- teardown

pid_of() { awk -v n="$1" '$1 == n {print $2}' "$RUN/pids" 2>/dev/null; }
alive_ours() { [[ -n $1 ]] && grep -qF "$RUN" "/proc/$1/cmdline" 2>/dev/null; }

# Every process whose command line names the run dir (containerd's shims
# outlive containerd and are not in a process group we started).
run_dir_pids() {
  local p skip=" "
  # The control plane's own processes are stopped by stop_processes (TERM).
  [[ -f $RUN/pids ]] && skip+="$(awk '$1 !~ /^(kubelet|kube-proxy|kube-scheduler|containerd)$/ {printf "%s ", $2}' "$RUN/pids")"
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ $p == "$$" || $p == "$BASHPID" || $skip == *" $p "* ]] && continue
    # (not this script's own processes: `stop DIR/`, the watchdog)
    grep -qF "controlplane.sh" "/proc/$p/cmdline" 2>/dev/null && continue
    grep -qF "$RUN/" "/proc/$p/cmdline" 2>/dev/null && echo "$p"
  done
  return 0
}

# Processes in the kubepods cgroups are containers of this node: the
# cgroups did not exist before it started (node_refuse_leftovers).
kubepods_dirs() {
  local d
  for d in /sys/fs/cgroup/kubepods /sys/fs/cgroup/*/kubepods; do [[ -d $d ]] && echo "$d"; done
  return 0
}
kubepods_pids() {
  local d
  for d in $(kubepods_dirs); do find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null; done | sort -un
}

# In a subshell without errexit: every step runs even when one fails.
# Two phases around the control plane's own stop: `workloads` while the API
# server still runs (pods, node processes), `host` after it stopped (the
# API server listens on the bridge's address, so the bridge goes last).
node_teardown() { # workloads|host
  [[ -d $RUN/node ]] || return 0
  # Nothing was changed before the record was complete.
  [[ -f $RUN/node/host/complete ]] || { node_unlock; return 0; }
  if [[ $1 == workloads ]]; then (set +e; node_stop_workloads); else (set +e; node_restore_host); fi
}

node_stop_workloads() {
  local bin pid i left name
  bin=$(cat "$RUN/node/bin-dir" 2>/dev/null)
  local kc=("$bin/kubectl" --kubeconfig="$RUN/kubeconfig" --request-timeout=5s) t0
  t0=$(now)
  nlog "tearing down"
  # 1. No new pods (stop the scheduler), then let kubelet stop the pods
  #    gracefully (SIGTERM, CNI DEL), while the API server is up.
  pid=$(pid_of kube-scheduler); alive_ours "$pid" && term_wait "$pid"
  if [[ -n $(pid_of kubelet) ]] && alive_ours "$(pid_of kubelet)" &&
    "${kc[@]}" delete pods --all -A --grace-period=5 --wait=false >/dev/null 2>&1; then
    for ((i = 0; i < 150; i++)); do
      [[ -z $(kubepods_pids) ]] && break
      sleep 0.2
    done
  fi
  # 2. The node processes (kubelet before containerd), by recorded PID
  #    after checking that their command line names this run dir.
  #    containerd at the same time: the pods are stopped, and what a kill
  #    leaves behind is swept below.
  local group=()
  for name in kubelet kube-proxy containerd; do
    pid=$(pid_of "$name"); alive_ours "$pid" && group+=("$pid")
  done
  ((${#group[@]} == 0)) || term_wait "${group[@]}"
  # 3. What is left: shims (by command line), then container processes
  #    (by cgroup).
  for ((i = 0; i < 3; i++)); do
    mapfile -t left < <(run_dir_pids)
    ((${#left[@]})) || break
    kill -KILL "${left[@]}" 2>/dev/null || true
    sleep 0.2
  done
  for ((i = 0; i < 20; i++)); do
    mapfile -t left < <(kubepods_pids)
    ((${#left[@]})) || break
    kill -KILL "${left[@]}" 2>/dev/null || true
    sleep 0.2
  done
  # 4. kube-proxy's own rule cleanup (matters when its tables existed before).
  "$bin/kube-proxy" --cleanup >>"$RUN/logs/kube-proxy-cleanup.log" 2>&1 || true
  nlog "pods and node processes stopped in $(since "$t0")"
}

node_restore_host() {
  local h=$RUN/node/host i left
  shopt -s nullglob
  # 5. Mounts (deepest first), network namespaces, links.
  local before_mounts m
  before_mounts=$(cat "$h/mounts" 2>/dev/null || true)
  for ((i = 0; i < 3; i++)); do
    mapfile -t left < <(mountpoints | grep -F -f <(node_mount_prefixes) | grep -vxF -f <(printf '%s\n' "$before_mounts" ) | sort -r)
    ((${#left[@]})) || break
    for m in "${left[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  done
  for m in /run/netns/*; do
    grep -qxF "${m##*/}" "$h/netns" 2>/dev/null || ip netns delete "${m##*/}" 2>/dev/null || rm -f "$m"
  done
  if [[ -f $RUN/node/bridge ]]; then
    for m in $(ip -o link show master "$NODE_BRIDGE" 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print $2}'); do
      ip link delete "$m" 2>/dev/null || true
    done
    ip link delete "$NODE_BRIDGE" 2>/dev/null || true
  fi
  # 6. cgroups (empty now), deepest first.
  for m in $(kubepods_dirs); do
    find "$m" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  # 7. Firewall: delete the tables that did not exist before; restore the
  #    iptables tables that did, if they changed.
  local t
  if [[ -f $h/nft-tables ]]; then
    local fam name
    while read -r t; do
      grep -qxF "$t" "$h/nft-tables" && continue
      read -r _ fam name <<<"$t"
      nft delete table "$fam" "$name" || log "WARNING: cannot delete nft $t"
    done < <(nft_tables)
    if [[ -s $h/iptables ]] && [[ $(ipt_dump iptables-save) != "$(cat "$h/iptables")" ]]; then
      nlog "restoring the iptables rules that existed before"; iptables-restore <"$h/iptables" || true
    fi
    if [[ -s $h/ip6tables ]] && [[ $(ipt_dump ip6tables-save) != "$(cat "$h/ip6tables")" ]]; then
      ip6tables-restore <"$h/ip6tables" || true
    fi
  fi
  command -v conntrack >/dev/null && {
    conntrack -D -d "$SERVICE_CIDR" >/dev/null 2>&1 || true
    conntrack -D -s "$POD_CIDR" >/dev/null 2>&1 || true
    conntrack -D -d "$POD_CIDR" >/dev/null 2>&1 || true
  }
  # 8. Sysctls, exactly as recorded (ip_forward first).
  local kv k v
  if [[ -f $h/sysctls ]]; then
    while IFS= read -r kv; do
      k=${kv%%=*}; v=${kv#*=}
      [[ $(sysctl -n "$k" 2>/dev/null) == "$v" ]] || sysctl -q -w "$k=$v" >/dev/null 2>&1 ||
        log "WARNING: cannot restore $k=$v"
    done <"$h/sysctls"
  fi
  # 9. Host directories that were created by this run.
  local p
  for p in "${NODE_HOST_PATHS[@]}"; do
    [[ -e $p ]] && ! grep -qxF "$p" "$h/paths" 2>/dev/null && rm -rf "$p"
  done
  node_unlock
  shopt -u nullglob
  node_check_restored
}

# Report (not fix) anything still differing from the record.
node_check_restored() {
  local h=$RUN/node/host bad=() kv k
  while IFS= read -r kv; do
    k=${kv%%=*}
    [[ $(sysctl -n "$k" 2>/dev/null) == "${kv#*=}" ]] || bad+=("sysctl $k")
  done <"$h/sysctls"
  [[ $(nft_tables) == "$(cat "$h/nft-tables")" ]] || bad+=("nft tables: $(nft_tables | tr '\n' ' ')")
  [[ $(link_names) == "$(cat "$h/links")" ]] || bad+=("links: $(link_names | tr '\n' ' ')")
  [[ -z $(kubepods_pids) ]] || bad+=("processes in kubepods")
  [[ -z $(kubepods_dirs) ]] || bad+=("cgroups $(kubepods_dirs | tr '\n' ' ')")
  [[ $(ls /run/netns 2>/dev/null) == "$(cat "$h/netns")" ]] || bad+=("netns: $(ls /run/netns | tr '\n' ' ')")
  [[ -z $(run_dir_pids) ]] || bad+=("processes naming $RUN: $(run_dir_pids | tr '\n' ' ')")
  local m p
  m=$(mountpoints | grep -F -f <(node_mount_prefixes) | grep -vxF -f <(cat "$h/mounts") || true)
  [[ -z $m ]] || bad+=("mounts: $(tr '\n' ' ' <<<"$m")")
  for p in "${NODE_HOST_PATHS[@]}"; do
    [[ -e $p ]] && ! grep -qxF "$p" "$h/paths" && bad+=("$p")
  done
  if ((${#bad[@]})); then
    log "WARNING: node teardown left: ${bad[*]}"
    return 1
  fi
  nlog "host restored (sysctls, nftables, links, netns, mounts, cgroups, dirs)"
}
