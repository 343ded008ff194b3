#!/usr/bin/env bash
# Make sure `docker build` has BuildKit: the buildx CLI plugin, which the lessons build with (cache
# and secret mounts). A current engine installed by ensure-engine.sh brings it; an engine that was
# here before (Debian 12's 20.10, a docker CLI installed on its own) may not. Then, on a Debian
# host, take the plugin out of Debian trixie's docker-buildx package (the suite ensure-engine.sh
# takes its engine from) and put it where the docker CLI looks for plugins of this user
# ($DOCKER_CONFIG/cli-plugins, ~/.docker/cli-plugins by default, beside the Compose plugin).
# Installing the package itself would replace bookworm's docker.io CLI, so only its one binary is
# used. Elsewhere, says how to get it and goes on: only BuildKit's cells need it.
set -euo pipefail
STATE=${DOCKLAB_STATE:-.docklab}
SUITE=${DOCKLAB_ENGINE_SUITE:-trixie}
PLUGINS=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
mkdir -p "$STATE"

say() { printf 'docklab: %s\n' "$*" >&2; }

command -v docker >/dev/null 2>&1 || exit 0  # no CLI: the lessons' %docker cells say so
docker buildx version >/dev/null 2>&1 && exit 0

hint() {
  say "the docker CLI has no buildx plugin, so BuildKit's cells (cache and secret mounts) will not run."
  say "Install Docker's buildx plugin (Debian: docker-buildx; Docker Desktop has it), then retry."
}
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
  hint; exit 0
fi

source "$(dirname "${BASH_SOURCE[0]}")/debian-packages.sh"

dir=$(mktemp -d "${TMPDIR:-/tmp}/docklab-buildx.XXXXXX")
trap 'rm -rf "$dir"' EXIT
if ! private_apt "$dir" "$SUITE" ||
   ! (cd "$dir/debs" && apt-get -q "${PRIVATE_APT[@]}" download docker-buildx) >>"$STATE/apt.log" 2>&1; then
  say "could not fetch Debian $SUITE's docker-buildx (see $STATE/apt.log)."
  hint; exit 0
fi
dpkg-deb -x "$dir"/debs/docker-buildx_*.deb "$dir/root"
mkdir -p "$PLUGINS"
install -m 0755 "$dir/root/usr/libexec/docker/cli-plugins/docker-buildx" "$PLUGINS/docker-buildx"
say "installed $(docker buildx version | cut -d' ' -f1-2) (Debian $SUITE) as a docker CLI plugin in $PLUGINS."
