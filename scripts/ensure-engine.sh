#!/usr/bin/env bash
# Make sure a Docker Engine answers. Uses the one DOCKER_HOST or the default socket points to;
# on a Debian/Ubuntu host, as root, with none installed, installs Debian's docker.io and starts
# dockerd in the background (log: $STATE/dockerd.log). Otherwise says what to do and fails.
set -euo pipefail
STATE=${DOCKLAB_STATE:-.docklab}
SOCKET=/var/run/docker.sock
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

if ! command -v dockerd >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "no Docker Engine here and this is not a Debian/Ubuntu host: install Docker, then retry."
    exit 1
  fi
  say "installing Debian's docker.io (dockerd, containerd, runc) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >"$STATE/apt.log" 2>&1
  apt-get install -y -q --no-install-recommends docker.io iptables debootstrap ca-certificates \
    >>"$STATE/apt.log" 2>&1 || { say "apt-get failed; see $STATE/apt.log"; tail -5 "$STATE/apt.log" >&2; exit 1; }
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
