#!/usr/bin/env bash
# Make sure `docker build` has a current BuildKit client: the buildx CLI plugin, which the lessons
# build with (secret and cache mounts; `--check` and `--progress=rawjson` need buildx >= 0.15). A
# CLI that lacks it (Debian 12's 20.10, a docker CLI installed on its own) or has an older one
# (Debian 13's docker-buildx is 0.13) gets the plugin's binary out of Debian's docker-buildx package,
# put where the docker CLI looks first for this user's plugins ($DOCKER_CONFIG/cli-plugins,
# ~/.docker/cli-plugins by default, beside the Compose plugin). Installing the package itself would
# replace bookworm's docker.io CLI, so only its one binary is used.
#
# From sid first (0.29, what Docker Desktop's users have): buildx is only a client, a newer one
# drives an older engine's BuildKit (checked with Engine 20.10), and it needs only libc >= 2.34.
# Should a sid upload stop running here, trixie's 0.13 is taken instead (no --check then).
# DOCKLAB_BUILDX_SUITES overrides the order. Elsewhere, says how to get it and goes on: only
# BuildKit's cells need it.
set -euo pipefail
STATE=${DOCKLAB_STATE:-.docklab}
SUITES=${DOCKLAB_BUILDX_SUITES:-sid trixie}
PLUGINS=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
#: The oldest buildx with `docker build --check` and `--progress=rawjson`.
WANTED_MINOR=15
mkdir -p "$STATE"

say() { printf 'docklab: %s\n' "$*" >&2; }

command -v docker >/dev/null 2>&1 || exit 0  # no CLI: the lessons' %docker cells say so
# "github.com/docker/buildx 0.29.1+ds1 …" or "… v0.13.1 …" -> 13 (0 when there is none)
buildx_minor() {
  { "$@" version 2>/dev/null || true; } |
    awk '{ v = $2; sub(/^v/, "", v); split(v, p, "."); print p[2] + 0; exit } END { if (!NR) print 0 }'
}
have=$(buildx_minor docker buildx)
[ "${have:-0}" -ge "$WANTED_MINOR" ] && exit 0

hint() {
  say "the docker CLI has no buildx >= 0.$WANTED_MINOR, so BuildKit's cells (secret and cache mounts,"
  say "--check) may not run. Install Docker's buildx plugin (Debian: docker-buildx; Docker Desktop"
  say "has it), then retry."
}
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
  hint; exit 0
fi

source "$(dirname "${BASH_SOURCE[0]}")/debian-packages.sh"

dir=$(mktemp -d "${TMPDIR:-/tmp}/docklab-buildx.XXXXXX")
trap 'rm -rf "$dir"' EXIT
for suite in $SUITES; do
  rm -rf "${dir:?}"/*
  if ! private_apt "$dir" "$suite" ||
     ! (cd "$dir/debs" && apt-get -q "${PRIVATE_APT[@]}" download docker-buildx) >>"$STATE/apt.log" 2>&1; then
    say "could not fetch Debian $suite's docker-buildx (see $STATE/apt.log)."
    continue
  fi
  dpkg-deb -x "$dir"/debs/docker-buildx_*.deb "$dir/root"
  plugin=$dir/root/usr/libexec/docker/cli-plugins/docker-buildx
  if [ "$(buildx_minor "$plugin")" -le "${have:-0}" ]; then
    say "Debian $suite's buildx does not run here or is no newer than this CLI's."
    continue
  fi
  mkdir -p "$PLUGINS"
  install -m 0755 "$plugin" "$PLUGINS/docker-buildx"
  say "installed $(docker buildx version | cut -d' ' -f1-2) (Debian $suite) as a docker CLI plugin in $PLUGINS."
  exit 0
done
hint
