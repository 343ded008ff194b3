#!/usr/bin/env bash
# Make sure the classroom (docklab classroom, tests/classroom) has JupyterHub's proxy,
# configurable-http-proxy: one on PATH is used as it is; else npm installs it into .docklab/proxy
# (~3 s, 39 packages; the hub finds it there); else Debian's node-configurable-http-proxy (with
# Debian's nodejs) is installed with apt.
set -euo pipefail
DIR=${DOCKLAB_PROXY_DIR:-.docklab/proxy}
VERSION=4.6.3

say() { printf 'docklab: %s\n' "$*" >&2; }

[ -x "$DIR/node_modules/.bin/configurable-http-proxy" ] && exit 0
command -v configurable-http-proxy >/dev/null 2>&1 && exit 0

if command -v npm >/dev/null 2>&1; then
  say "installing configurable-http-proxy $VERSION from npm into $DIR ..."
  mkdir -p "$DIR"
  npm install --silent --no-audit --no-fund --prefix "$DIR" "configurable-http-proxy@$VERSION" >/dev/null
  exit 0
fi

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  say "installing Debian's node-configurable-http-proxy ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends node-configurable-http-proxy >/dev/null
  exit 0
fi

say "the classroom needs configurable-http-proxy: install npm (then rerun), or Debian's"
say "node-configurable-http-proxy, or set DOCKLAB_CLASSROOM_PROXY to its path."
exit 1
