#!/usr/bin/env bash
# The demo (README, first command): a local control plane, the Smooch
# emulator and the operator; applies examples/, waits until everything is
# Ready, and shows the resources, the Secrets (values masked) and the key's
# JWT decoded. Stays up until Ctrl-C (or exits at once with --exit; without
# a terminal it exits too unless --wait), then removes everything it started.
# SMOOCH_OPERATOR_BIN / SMOOCH_EMULATOR_BIN: use these binaries instead of
# building them (the tests do, from inside `cargo test`).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
NS=smooch-demo
OPERATOR_NS=smooch-operator

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Debian packages the demo uses (present on most machines).
missing=()
for tool in openssl jq curl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

mode=${1:-}
say "Building the control plane (cached) and the operator"
BIN_DIR=$(hack/controlplane.sh build | tail -n 1)
if [[ -z ${SMOOCH_OPERATOR_BIN:-} || -z ${SMOOCH_EMULATOR_BIN:-} ]]; then
  cargo build --quiet --bin smooch-operator --bin smooch-emulator
fi
OPERATOR=${SMOOCH_OPERATOR_BIN:-target/debug/smooch-operator}
EMULATOR=${SMOOCH_EMULATOR_BIN:-target/debug/smooch-emulator}
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
  hack/controlplane.sh stop "$RUN_DIR" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

say "Applying examples/ to namespace $NS"
kubectl create namespace "$NS"
kubectl -n "$NS" apply -f examples/
kubectl -n "$NS" wait --for=condition=Ready --timeout=120s \
  smoochapps,smoochkeys,smoochintegrations,smoochwebhooks --all

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
  curl -s $SMOOCH_URL/v1/apps -H "authorization: Bearer \$(grep SMOOCH_TOKEN $WORK/emulator.env | cut -d= -f2)"
  logs: $WORK/operator.log, $WORK/emulator.log
HINT

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
