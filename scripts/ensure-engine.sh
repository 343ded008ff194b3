#!/usr/bin/env bash
# Make sure a Docker Engine answers. Uses the one DOCKER_HOST or the default socket points to, and
# an engine already installed here (whatever its version: it is started, never replaced). On a
# Debian/Ubuntu host, as root, with none installed, installs a current Debian engine (>= 26, with
# the docker CLI and buildx) and starts dockerd in the background (log: $STATE/dockerd.log; apt's
# output: $STATE/apt.log). Otherwise says what to do and fails.
#
# Where the engine comes from:
# - the host's own docker.io when apt's candidate is >= 26 (Debian 13+, recent Ubuntu);
# - on Debian 12 (its docker.io is 20.10, end of life): Debian 13 (trixie)'s docker.io 26.1,
#   docker-cli and docker-buildx 0.13 (and containerd 1.7 when none is installed), fetched from
#   the host's Debian mirror with a private apt configuration in a temporary folder (no apt source
#   is added, nothing else comes from trixie) and installed with `apt-get install ./*.deb`, so that
#   apt takes the rest, runc and libc included, from bookworm.
#   Why trixie and not sid (28.5, buildx 0.29, what Docker Desktop users have): trixie is a stable
#   release, so every fresh host gets the same engine, one Debian's security team patches, and no
#   upload will suddenly need more than bookworm has; sid's change every week, and any upload may
#   start needing a newer libc than bookworm's. Both install in about 20 s (BENCHMARKS.md). Engine
#   28 stays one command away (`docklab engines start 28`), and DOCKLAB_ENGINE_SUITE=sid takes
#   sid's packages instead.
# - elsewhere (an older Ubuntu, or when trixie's packages do not install): the release's own
#   docker.io, with a note that it is end of life.
set -euo pipefail
STATE=${DOCKLAB_STATE:-.docklab}
SOCKET=/var/run/docker.sock
#: The oldest Engine major anyone still patches (docklab.doctor.MAINTAINED_MAJOR).
MAINTAINED_MAJOR=26
SUITE=${DOCKLAB_ENGINE_SUITE:-trixie}
mkdir -p "$STATE"

say() { printf 'docklab: %s\n' "$*" >&2; }

answers() {
  if command -v docker >/dev/null 2>&1; then
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1
  elif [ -z "${DOCKER_HOST:-}" ] || [ "${DOCKER_HOST}" = "unix://$SOCKET" ]; then
    # No CLI yet: ask the socket directly with Python's standard library.
    python3 - "$SOCKET" <<'PY' >/dev/null 2>&1
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(3); s.connect(sys.argv[1])
s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n"); sys.exit(0 if b"OK" in s.recv(4096) else 1)
PY
  else
    return 1
  fi
}

if answers; then exit 0; fi

if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST}" != "unix://$SOCKET" ]; then
  say "no Docker Engine answers at DOCKER_HOST=$DOCKER_HOST."
  say "Start that engine, fix DOCKER_HOST (ssh://user@host, or tcp://host:2376 with DOCKER_TLS_VERIFY=1"
  say "and DOCKER_CERT_PATH), or unset DOCKER_HOST to use a local engine."
  exit 1
fi

if [ -S "$SOCKET" ] && [ ! -w "$SOCKET" ] && [ "$(id -u)" != 0 ]; then
  say "permission denied on $SOCKET: add yourself to the docker group"
  say "  sudo usermod -aG docker \$USER   (then log out and in again)"
  exit 1
fi

if [ "$(id -u)" != 0 ]; then
  say "no Docker Engine answers at $SOCKET."
  say "Start Docker Desktop (macOS/Windows) or the docker service (sudo systemctl start docker),"
  say "or run 'make lab' as root on Debian/Ubuntu to have docker.io installed and started."
  exit 1
fi

# -- installing an engine (only where none is installed) -------------------------------------------

# apt helpers shared with ensure-buildx.sh: candidate, installed, debian_mirror, private_apt, ...
source "$(dirname "${BASH_SOURCE[0]}")/debian-packages.sh"

# Download the current engine's packages from Debian's $SUITE into $1/debs (private_apt: the
# host's apt is left as it was), and print the docker.io version fetched.
fetch_engine_debs() {
  local dir=$1
  private_apt "$dir" "$SUITE" || return 1
  local private=("${PRIVATE_APT[@]}")
  local version packages=(docker.io docker-cli docker-buildx)
  version=$(candidate docker.io "${private[@]}")
  if [ "$(major "$version")" -lt "$MAINTAINED_MAJOR" ]; then
    echo "Debian $SUITE's docker.io is '$version', not >= $MAINTAINED_MAJOR" >>"$STATE/apt.log"
    return 1
  fi
  # A containerd someone installed stays theirs (docker.io takes any >= 1.4); runc stays bookworm's.
  installed containerd || packages+=(containerd)
  # sid's docker.io wants tini-static (bookworm's tini is for trixie's).
  has_candidate tini-static "${private[@]}" && [ "$SUITE" != trixie ] && packages+=(tini-static)
  say "downloading ${packages[*]} $(major_minor "$version") from Debian $SUITE ..."
  (cd "$dir/debs" && apt-get -q "${private[@]}" download "${packages[@]}") \
    >>"$STATE/apt.log" 2>&1 || return 1
  echo "$version"
}

install_engine() {
  local extras=(iptables debootstrap ca-certificates) own
  export DEBIAN_FRONTEND=noninteractive
  say "looking for a Docker Engine package (apt-get update; log: $STATE/apt.log) ..."
  apt-get update -q >"$STATE/apt.log" 2>&1 || apt_failed
  own=$(candidate docker.io)
  if [ "$(major "$own")" -ge "$MAINTAINED_MAJOR" ]; then
    local packages=(docker.io) name
    # Debian 13 splits the CLI and buildx (BuildKit for `docker build`) out of docker.io.
    for name in docker-cli docker-buildx; do has_candidate "$name" && packages+=("$name"); done
    say "installing Engine $(major_minor "$own"), $(os_release PRETTY_NAME)'s ${packages[*]} ..."
    apt_install "${packages[@]}" "${extras[@]}" || apt_failed
    return
  fi
  if [ "$(os_release ID)" = debian ]; then
    local dir version
    dir=$(mktemp -d "${TMPDIR:-/tmp}/docklab-engine.XXXXXX")
    trap "rm -rf '$dir'" EXIT  # expanded now: $dir is local
    if version=$(fetch_engine_debs "$dir"); then
      # sid's docker.io needs systemd's sysusers: without systemd, the standalone one.
      [ "$SUITE" = trixie ] || installed systemd || extras+=(systemd-standalone-sysusers)
      say "installing Engine $(major_minor "$version") from Debian $SUITE's packages" \
        "($(du -sm "$dir/debs" | cut -f1) MB; the rest from $(os_release VERSION_CODENAME)) ..."
      if apt_install "$dir"/debs/*.deb "${extras[@]}"; then rm -rf "$dir"; return; fi
    fi
    rm -rf "$dir"
    say "Debian $SUITE's engine does not install here (see $STATE/apt.log)."
  fi
  if [ "$own" = "(none)" ] || [ -z "$own" ]; then
    say "apt knows no docker.io package here: install Docker Engine, then retry."
    exit 1
  fi
  say "installing this release's docker.io $own: Engine $(major_minor "$own") is end of life;"
  say "the README's set-up section says how to get a current one."
  apt_install docker.io "${extras[@]}" || apt_failed
}

if ! command -v dockerd >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "no Docker Engine here and this is not a Debian/Ubuntu host: install Docker, then retry."
    exit 1
  fi
  install_engine
  # On a systemd host, the package's docker.service has started the engine already.
  if answers; then say "engine is up (started by its service)."; exit 0; fi
fi

say "starting dockerd in the background (log: $STATE/dockerd.log) ..."
setsid nohup dockerd >"$STATE/dockerd.log" 2>&1 < /dev/null &
for _ in $(seq 1 60); do
  if answers; then say "engine is up."; exit 0; fi
  sleep 0.5
done
say "dockerd did not answer within 30 s; the end of $STATE/dockerd.log:"
tail -20 "$STATE/dockerd.log" >&2
exit 1
