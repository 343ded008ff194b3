#!/bin/sh
# Entry of the course's docker:dind image: make the cgroup hierarchies writable, then run dockerd
# on the unix socket and, without TLS, on tcp://0.0.0.0:2375.
set -e

# A container that is not --privileged sees its cgroup v1 hierarchies mounted read-only; the inner
# dockerd must create cgroups for its own containers, or they fail to start.
awk '$3 == "cgroup" { print $2 }' /proc/self/mounts | while read -r hierarchy; do
  mount -o remount,bind,rw "$hierarchy" \
    || echo "dind: could not make $hierarchy writable; inner containers may not start" >&2
done

# cgroup v2 (one unified hierarchy): make it writable, move ourselves out of the root cgroup and
# hand every controller down, so the inner dockerd can create child cgroups.
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  mount -o remount,rw /sys/fs/cgroup 2>/dev/null || true
  mkdir -p /sys/fs/cgroup/init
  xargs -rn1 < /sys/fs/cgroup/cgroup.procs > /sys/fs/cgroup/init/cgroup.procs 2>/dev/null || true
  sed -e 's/ / +/g' -e 's/^/+/' < /sys/fs/cgroup/cgroup.controllers \
    > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
fi

# Engines from 26 on write per-container sysctls under /proc/sys (IPv6 on each container's
# interface), which a container that is not --privileged sees read-only: make it writable, as
# `--security-opt systempaths=unconfined` would (the SDK's containers.run has no keyword for that).
if awk '$2 == "/proc/sys" { found = 1 } END { exit !found }' /proc/self/mounts; then
  mount -o remount,bind,rw /proc/sys \
    || echo "dind: could not make /proc/sys writable; inner containers may not start" >&2
fi

# No command, or only dockerd flags: run dockerd. `--tls=false` is needed for plain TCP: without
# it dockerd waits ~15 s on purpose before listening unencrypted.
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- dockerd --host=unix:///var/run/docker.sock --host=tcp://0.0.0.0:2375 --tls=false "$@"
fi
exec "$@"
