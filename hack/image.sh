#!/usr/bin/env bash
# Build the operator image (it also holds the emulator) with the Dockerfile,
# from binaries built here: no registry, no base image. Saves an OCI archive.
#
#   hack/image.sh [--debug] [--tag IMAGE] [--out ARCHIVE] [--tool podman|docker] [--quiet] [--rm]
#
#   --debug    the dev-profile binaries (what `cargo test` builds; CI uses this)
#              instead of `cargo build --release` (the default, for users)
#   --tag      image name (default smooch-operator:<Cargo.toml version>)
#   --out      OCI archive to write (default build/smooch-operator-image.tar)
#   --tool     podman (default when installed) or docker
#   --quiet    only the summary line on stderr (no build steps)
#   --rm       keep only the archive: remove the image (and podman's layer
#              cache) from the local store (the tests and the demo do)
#
# SMOOCH_OPERATOR_BIN / SMOOCH_EMULATOR_BIN: use these binaries instead of
# building them (the tests pass the ones `cargo test` built).
#
# The image is FROM scratch: the two binaries (dynamically linked against
# glibc, as cargo builds them), the glibc libraries `ldd` lists for them,
# /etc/passwd and /etc/group with the nonroot user 65532, the CA bundle
# (TLS to api.smooch.io) and /etc/nsswitch.conf. Nothing else: no shell.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

profile=release tag="" out=$ROOT/build/smooch-operator-image.tar tool="" quiet=() rm=0
while (($#)); do
  case $1 in
    --debug) profile=debug; shift ;;
    --tag) tag=${2:?--tag needs a name}; shift 2 ;;
    --out) out=${2:?--out needs a file}; shift 2 ;;
    --tool) tool=${2:?--tool needs podman or docker}; shift 2 ;;
    --quiet) quiet=(--quiet); shift ;;
    --rm) rm=1; shift ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
version=$(awk -F'"' '/^version = / {print $2; exit}' Cargo.toml)
tag=${tag:-smooch-operator:$version}
if [[ -z $tool ]]; then
  if command -v podman >/dev/null; then tool=podman; elif command -v docker >/dev/null; then tool=docker
  else echo "image.sh: needs podman or docker" >&2; exit 1; fi
fi
log() { echo "image.sh: $*" >&2; }
t0=$SECONDS

if [[ -n ${SMOOCH_OPERATOR_BIN:-} && -n ${SMOOCH_EMULATOR_BIN:-} ]]; then
  operator=$SMOOCH_OPERATOR_BIN emulator=$SMOOCH_EMULATOR_BIN
else
  target=${CARGO_TARGET_DIR:-$ROOT/target}
  if [[ $profile == release ]]; then
    log "cargo build --release (first time: several minutes)"
    cargo build --locked --release --bin smooch-operator --bin smooch-emulator
  else
    cargo build --locked --bin smooch-operator --bin smooch-emulator
  fi
  operator=$target/$profile/smooch-operator emulator=$target/$profile/smooch-emulator
fi

# The build context: a private dir holding build/image/rootfs, the only
# path the Dockerfile copies (so that concurrent runs cannot mix their files;
# .dockerignore makes `docker build .` in the repo send only that path too).
mkdir -p "$ROOT/build"
context=$(mktemp -d "$ROOT/build/context.XXXXXX")
trap 'rm -rf "$context"' EXIT
rootfs=$context/build/image/rootfs
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs"
# Symbols are not needed at run time (a debug binary shrinks ~10x).
strip -o "$rootfs/usr/local/bin/smooch-operator" "$operator"
strip -o "$rootfs/usr/local/bin/smooch-emulator" "$emulator"
# The shared libraries and the loader, at the paths the binaries ask for.
for lib in $(ldd "$operator" "$emulator" | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}' | sort -u); do
  cp -L --parents "$lib" "$rootfs/"
done
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$rootfs/etc/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' >"$rootfs/etc/group"
printf '%s\n' 'hosts: files dns' >"$rootfs/etc/nsswitch.conf"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
((${#quiet[@]})) || log "root filesystem staged ($(du -sh "$rootfs" | cut -f1)): $(cd "$rootfs" && find . -type f | sort | tr '\n' ' ')"

if ((${#quiet[@]})); then build_out=/dev/null; else build_out=/dev/stderr; fi
cp .dockerignore "$context/"
layers=()
((rm == 0)) || [[ $tool != podman ]] || layers=(--layers=false)
"$tool" build "${quiet[@]}" "${layers[@]}" --file Dockerfile --tag "$tag" \
  --label "org.opencontainers.image.version=$version" "$context" >"$build_out"
mkdir -p "$(dirname "$out")"
rm -f "$out"
if [[ $tool == podman ]]; then
  podman save "${quiet[@]}" --format oci-archive -o "$out" "$tag" >&2
else
  docker save -o "$out" "$tag" >&2
fi
((rm == 0)) || "$tool" rmi "$tag" >/dev/null
log "built $tag with $tool (${SMOOCH_OPERATOR_BIN:+given }$profile binaries) and saved $out ($(du -h "$out" | cut -f1)) in $((SECONDS - t0))s"
echo "$out"
