#!/usr/bin/env bash
# Operator benchmarks (benches/operator/, one file per scenario) against a throwaway control plane.
#
#   hack/bench.sh <scenario> [flags]    one scenario, e.g.
#       hack/bench.sh convergence --n 100 --runs 3
#       hack/bench.sh faults --n 100 --runs 3
#       hack/bench.sh --help            (scenarios and flags)
#   hack/bench.sh all                   every scenario with the settings of BENCHMARKS.md
#   hack/bench.sh peer                  side by side with the Go controller-runtime peer
#       (PEER_DIR, default ../shared/peers/controller-runtime; its bench.sh takes
#       NS_LIST, RUNS, STEADY_N, WINDOW_S: e.g. NS_LIST=1000 RUNS=3 hack/bench.sh peer;
#       the chart's finalizer policy is in place for both, FINALIZER_POLICY=0 leaves it out)
#
# Starts a control plane (hack/controlplane.sh, in a fresh temp dir), builds
# the operator in release, runs `cargo bench --bench operator -- <args>`
# (the operator runs as a child process: RSS and CPU are its own), and stops
# the control plane on exit, failure or Ctrl-C. Results are printed and
# appended as JSON lines to $BENCH_JSON (default target/bench/operator.jsonl).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

[[ $# -gt 0 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

if [[ $1 == peer ]]; then
  # The peer's own script builds it, starts its control plane (ours,
  # hack/controlplane.sh) and runs both operators alternately; it expects
  # our release binaries in $SMOOCH_REPO/target/release.
  PEER_DIR=${PEER_DIR:-$ROOT/../shared/peers/controller-runtime}
  [[ -x $PEER_DIR/bench.sh ]] || { echo "bench: no peer at $PEER_DIR (set PEER_DIR)" >&2; exit 1; }
  cargo build --release --bin smooch-operator --bin smooch-emulator
  [[ $TARGET == "$ROOT/target" || -e $ROOT/target ]] || ln -s "$TARGET" "$ROOT/target"
  echo "bench: $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD) load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  REPO=$ROOT
  # The peer's script applies $SMOOCH_REPO/crds/crds.yaml to its control
  # plane. A cluster set up by `helm install` with default values also has
  # the chart's finalizer policy (templates/finalizer-policy.yaml): both
  # operators run with it, from a copy of crds.yaml that carries it too.
  # FINALIZER_POLICY=0 leaves it out (a cluster older than Kubernetes 1.36,
  # or finalizerPolicy.enabled=false).
  if [[ ${FINALIZER_POLICY:-1} == 1 ]]; then
    HELM=$(hack/controlplane.sh build | tail -n 1)/helm
    REPO=$(mktemp -d /tmp/smooch-bench-repo.XXXXXX)
    trap 'rm -rf "$REPO"' EXIT
    ln -s "$ROOT/hack" "$REPO/hack"
    ln -s "$ROOT/tests" "$REPO/tests"   # the control plane's pinned versions
    ln -s "$ROOT/target" "$REPO/target"
    mkdir "$REPO/crds"
    { cat crds/crds.yaml; echo "---"
      "$HELM" template bench charts/smooch-operator --show-only templates/finalizer-policy.yaml \
        --api-versions admissionregistration.k8s.io/v1/MutatingAdmissionPolicy
    } >"$REPO/crds/crds.yaml"
    echo "bench: with the chart's finalizer policy (FINALIZER_POLICY=0: without)" >&2
  fi
  SMOOCH_REPO=$REPO PEER_BENCH_DIR=${PEER_BENCH_DIR:-$ROOT/target/peer-bench} "$PEER_DIR/bench.sh"
  exit
fi
export BENCH_JSON=${BENCH_JSON:-$TARGET/bench/operator.jsonl}
mkdir -p "$(dirname "$BENCH_JSON")"

echo "bench: building the operator (release)" >&2
cargo build --release --bin smooch-operator
cargo bench --bench operator --no-run

CP_DIR=$(mktemp -d /tmp/smooch-bench-cp.XXXXXX)
rmdir "$CP_DIR"   # controlplane.sh start wants a new (or empty) dir
trap 'hack/controlplane.sh stop "$CP_DIR"' EXIT
trap 'exit 130' INT TERM
eval "$(hack/controlplane.sh start "$CP_DIR" --parent-pid $$)"
export CONTROLPLANE_DIR=$CP_DIR   # for the apiserver-restart scenario

run() {
  echo "bench: $(date -u +%FT%TZ) uptime:$(uptime | sed 's/.*load/ load/')" >&2
  echo "bench: cargo bench --bench operator -- $*" >&2
  cargo bench --bench operator -- "$@"
}

if [[ $1 == all ]]; then
  shift
  run convergence --n 100 --runs 5 "$@"
  run convergence --n 1000 --runs 3 --timeout-secs 900 "$@"
  run sweep --n 100 --runs 3 --reconcile 2,4,8,16 --smooch 2,4,16 "$@"
  run single-change --samples 100 "$@"
  run steady --n 1000 --resync 30s --periods 3 "$@"
  run footprint --n 0,100,1000 --runs 3 "$@"
  run faults --n 100 --runs 3 --error-rate 0.2 --rate-limit-rate 0.1 --retry-after-secs 1 "$@"
  run crash --n 300 --kills 20 --max-gap-ms 1200 "$@"
  run failover --n 100 --runs 3 --lease-secs 5 "$@"
  run apiserver-restart --n 100 "$@"
  run apiserver-restart --n 100 "$@"
  run apiserver-restart --n 100 "$@"
else
  run "$@"
fi
echo "bench: done $(date -u +%FT%TZ) uptime:$(uptime | sed 's/.*load/ load/'); JSON lines in $BENCH_JSON" >&2
