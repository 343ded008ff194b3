#!/bin/sh
# Entry of docklab/sealed-engine, run as root of this container (which has no network): prepare
# the folders, then start dockerd as the unprivileged `grader` in a user namespace (rootlesskit).
#   /engine/docker.sock   the engine's API, in a folder the grading host mounts
#   /proxy/proxy.sock     the grading host's allow-list proxy (optional), relayed to 127.0.0.1:3128,
#                         which inner containers reach as 10.0.2.2:3128 through slirp4netns
#   /var/lib/sealed       the engine's data root: a size-capped tmpfs
#   /seed/data-root.tar   (optional, read-only) a data root to start from: the course images and
#                         the build cache of the lab's reference solution, made by the grader
#   /engine/make-seed     (made by the grader) when dockerd stops, save the data root as
#                         /engine/seed.tar for later engines to start from
set -eu
TAR_OPTIONS="--numeric-owner --xattrs --xattrs-include=* --sparse"
mkdir -p /run/user/1000 /var/lib/sealed
chown grader:grader /run/user/1000 /var/lib/sealed
chmod 0700 /run/user/1000
if [ -f /seed/data-root.tar ]; then
  # shellcheck disable=SC2086
  tar -C /var/lib/sealed $TAR_OPTIONS -xpf /seed/data-root.tar
fi
# slirp4netns opens the tun device as `grader`: the node is this container's own copy.
[ -c /dev/net/tun ] && chmod 0666 /dev/net/tun

AS_GRADER="setpriv --reuid=grader --regid=grader --init-groups --reset-env env HOME=/home/grader
  XDG_RUNTIME_DIR=/run/user/1000 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

if [ -S /proxy/proxy.sock ]; then
  $AS_GRADER socat TCP-LISTEN:3128,bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:/proxy/proxy.sock &
fi

# The host loopback stays reachable (no --disable-host-loopback): this container has nothing on
# it but socat, and slirp4netns can reach nothing else, as the container has no network.
$AS_GRADER rootlesskit --net=slirp4netns --mtu=65520 --copy-up=/etc --copy-up=/run \
  --state-dir=/run/user/1000/rootlesskit --port-driver=none \
  sh -c '(until [ -S /engine/docker.sock ]; do sleep 0.05; done; chmod 0666 /engine/docker.sock) &
    exec dockerd --host=unix:///engine/docker.sock --data-root=/var/lib/sealed \
      --exec-root=/run/user/1000/docker --pidfile=/run/user/1000/docker.pid \
      --userland-proxy=false "$@"' sh "$@" &
engine=$!
trap 'kill -TERM "$engine" 2>/dev/null' TERM INT
# `wait` returns early when a trapped signal arrives: wait again until the engine is gone.
while kill -0 "$engine" 2>/dev/null; do wait "$engine" || true; done
if [ -f /engine/make-seed ]; then
  # shellcheck disable=SC2086
  tar -C /var/lib/sealed $TAR_OPTIONS -cf /engine/seed.tar.part . && mv /engine/seed.tar.part /engine/seed.tar
fi
