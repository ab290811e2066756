#!/usr/bin/env bash
# Install Smooch's own published client libraries, pinned, for the contract
# tests in crates/smooch-emulator/tests/official_clients.rs (they drive the
# emulator with them over HTTP). Cached outside the repository, keyed by the
# versions, so a rerun with the cache present does no network:
#
#   ${SMOOCH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/smooch-operator}/clients/<key>/
#     python/   pip install --target: smooch, sunshine_conversations_client (PYTHONPATH)
#     node/     npm install --prefix: node_modules/smooch-core, .../sunshine-conversations-client
#     install-info
#
# stdout: one line, `export SMOOCH_CLIENTS_DIR=<cache entry>` (eval it).
# Needs python3 with pip and node with npm.
set -euo pipefail

PY_PACKAGES=(smooch==5.34.0 sunshine-conversations-client==17.0.1)
NODE_PACKAGES=(smooch-core@8.11.4 sunshine-conversations-client@14.1.0)
# Bump when the install recipe below changes so the cache key changes.
RECIPE_REV=1

log() { echo "clients: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v python3 >/dev/null || die "python3 is not installed"
python3 -m pip --version >/dev/null 2>&1 ||
  die "python3 has no pip ('python3 -m pip' fails): install it (Debian: apt-get install python3-pip)"
command -v node >/dev/null || die "node is not installed"
command -v npm >/dev/null || die "npm is not installed"

CACHE_ROOT=${SMOOCH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/smooch-operator}/clients
# The Python minor version is in the key: pip --target output is not shared
# across interpreters (compiled wheels of dependencies).
pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
key=$(printf '%s\n' "rev=$RECIPE_REV" "py=$pyver" "${PY_PACKAGES[@]}" "${NODE_PACKAGES[@]}" |
  sha256sum | cut -c1-12)
key="py$pyver-smooch-5.34.0-sc-17.0.1-smooch-core-8.11.4-sc-js-14.1.0-$key"
entry=$CACHE_ROOT/$key

complete() { [[ -f $1/install-info && -d $1/python/smooch && -d $1/python/sunshine_conversations_client &&
  -d $1/node/node_modules/smooch-core && -d $1/node/node_modules/sunshine-conversations-client ]]; }

if ! complete "$entry"; then
  mkdir -p "$CACHE_ROOT"
  # Parallel callers: only one installs, the others wait for it.
  exec 9>"$CACHE_ROOT/.install.lock"
  flock -n 9 || { log "another install is running; waiting for it"; flock 9; }
fi
if complete "$entry"; then
  log "clients cached in $entry"
else
  started=$SECONDS
  rm -rf "${entry:?}"   # an incomplete entry (someone deleted part of it)
  # Install into a temp dir next to the cache and rename it into place, so an
  # interrupted install is never taken for a complete one.
  tmp=$(mktemp -d "$CACHE_ROOT/.tmp-$key.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp"
  log "installing ${PY_PACKAGES[*]} ${NODE_PACKAGES[*]} into $entry"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-input --no-compile \
    --target "$tmp/python" "${PY_PACKAGES[@]}" >&2
  mkdir "$tmp/node"
  # A package.json of its own, so npm does not walk up to another project.
  echo '{"name": "smooch-official-clients", "private": true}' >"$tmp/node/package.json"
  npm install --prefix "$tmp/node" --no-audit --no-fund --no-update-notifier --loglevel=error \
    "${NODE_PACKAGES[@]}" >&2
  {
    echo "installed $(date -u +%FT%TZ) in $((SECONDS - started))s"
    echo "python $pyver: ${PY_PACKAGES[*]}"
    echo "node $(node --version): ${NODE_PACKAGES[*]}"
  } >"$tmp/install-info"
  complete "$tmp" || die "install finished but the packages are not all there (in $tmp)"
  mv -T "$tmp" "$entry"   # atomic; the lock makes the target absent
  trap - EXIT
  log "installed in $((SECONDS - started))s"
fi
echo "export SMOOCH_CLIENTS_DIR=$entry"
