#!/usr/bin/env bash
# Build and run a throwaway Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager) on 127.0.0.1 for integration tests, envtest-style:
# the binaries are compiled from the Go modules pinned in tests/controlplane/
# (no Docker, no prebuilt downloads) and cached outside the repo.
#
#   hack/controlplane.sh build                 build (or reuse) the binaries; last stdout line = bin dir
#   hack/controlplane.sh bin-dir               print the bin dir of an existing build
#   hack/controlplane.sh start <run-dir> [--parent-pid PID]
#                                              start a control plane; stdout = `export ...` lines
#   hack/controlplane.sh stop <run-dir>        stop it and remove <run-dir> (idempotent, trap-safe)
#   hack/controlplane.sh up [<run-dir>]        start, wait for Ctrl-C, stop
#
# Typical test harness use:
#   eval "$(hack/controlplane.sh start "$dir" --parent-pid $$)"; trap 'hack/controlplane.sh stop "$dir"' EXIT
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CP_DIR=$ROOT/tests/controlplane
CACHE_ROOT=${SMOOCH_CACHE_DIR:-$HOME/.cache/smooch-operator}/controlplane
BINARIES=(etcd kube-apiserver kube-controller-manager kubectl helm)
# Bump when the build recipe below changes (flags, ldflags) so the cache key changes.
BUILD_REV=1
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
# Stay on the installed toolchain (never auto-download another Go) and never
# let a build edit go.mod/go.sum: they are the committed pins.
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"

log() { echo "controlplane: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { echo "${EPOCHREALTIME/./}"; }                  # microseconds
since() { local d=$(($(now) - $1)); printf '%d.%01ds' $((d / 1000000)) $((d % 1000000 / 100000)); }

# versions.env is the single source of truth; fail loudly if a go.mod disagrees.
load_versions() {
  # shellcheck source=../tests/controlplane/versions.env
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
  local h
  h=$(cd "$CP_DIR" && {
    echo "rev=$BUILD_REV go=$("$GO" env GOVERSION)"
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
    log "waiting for build lock"; flock 9
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
  mkdir "$tmp/bin"
  log "building $key with $("$GO" env GOVERSION) (cold: ~20-30 min on 2 cores)"
  local v=${KUBE_VERSION#v} kube_ld="-s -w" p
  # Same version stamping as upstream hack/lib/version.sh, so `kubectl version` is truthful.
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    kube_ld+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=${v%%.*} -X $p.gitMinor=$(cut -d. -f2 <<<"$v") -X $p.gitTreeState=clean"
  done
  # Static binaries like the upstream release builds.
  export CGO_ENABLED=0
  (cd "$CP_DIR" && "$GO" build -trimpath -ldflags "$kube_ld" -o "$tmp/bin/" \
    ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kubectl)
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

main() {
  local cmd=${1:-}; shift || true
  case $cmd in
    build) cmd_build ;;
    bin-dir) cmd_bin_dir ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    up) cmd_up "$@" ;;
    _watchdog) cmd_watchdog "$@" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

main "$@"
