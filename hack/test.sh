#!/usr/bin/env bash
# The project's test command: build (cached) and start a real control plane
# (etcd + kube-apiserver + kube-controller-manager on 127.0.0.1), run the
# whole test suite against it with the emulator over HTTP, then stop it.
# The node tests (tests/chart_node.rs, tests/demo.rs) start their own
# control plane with a node (`hack/controlplane.sh start DIR --node`, root),
# which their Drop/watchdog tear down even when they fail.
# Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BIN_DIR=$(hack/controlplane.sh build | tail -n 1)
RUN_DIR=$(mktemp -u -d "${TMPDIR:-/tmp}/smooch-cp.XXXXXX")
trap 'hack/controlplane.sh stop "$RUN_DIR" >/dev/null 2>&1 || true' EXIT
started=$SECONDS
eval "$(hack/controlplane.sh start "$RUN_DIR" --parent-pid $$)"
echo "test.sh: control plane up in $((SECONDS - started))s (KUBECONFIG=$KUBECONFIG)" >&2
export PATH="$BIN_DIR:$PATH" SMOOCH_TEST_BIN_DIR="$BIN_DIR"
# Smooch's official clients (PyPI, npm) for the emulator's contract tests
# (crates/smooch-emulator/tests/official_clients.rs); cached, no network when warm.
eval "$(hack/clients.sh)"

# Tests share the control plane; each has its own namespace and emulator.
# --workspace: every crate's tests (the API crate, the emulator and its
# example, the operator), and both binaries built for the tests that run them.
cargo test --workspace --no-fail-fast --lib --bins --tests "$@" -- --test-threads="${TEST_THREADS:-4}"
