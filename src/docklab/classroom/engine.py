"""Each learner's private Docker Engine: a Docker-in-Docker sidecar in the learner's network
namespace.

The sidecar joins the learner container's network namespace (``--network container:LEARNER``)
and its dockerd listens on ``tcp://127.0.0.1:2375`` there: the learner's notebooks reach it as
``DOCKER_HOST=tcp://127.0.0.1:2375`` and nobody else can, since that 127.0.0.1 is the learner's
own loopback (another learner's container, the hub and the host each have their own). The learner
container holds no engine socket; the host's engine is out of reach.

The course images are loaded into it when it starts, from a ``docker save`` the host made once
(``docklab.grading.sealed.saved_images``) mounted read-only: never a pull, never a learner's file.

What this does not isolate: the sidecar runs a rootful dockerd with every capability (DESIGN.md,
"The engine"), so a learner who sets out to escape their engine's containers can become root on
the host. It keeps honest learners apart; use it for a class you trust with a machine of its own
(see BENCHMARKS.md and README "Classroom" for the rootless alternative's cost).

``kind="rootless"`` runs the course's rootless engine instead (``docklab/sealed-engine``, the
image grading uses): dockerd as uid 1000 in a user namespace (rootlesskit, slirp4netns), so root
in a learner's container is nobody on the host. Its API is a unix socket in a volume only the
learner's container and the sidecar mount (``DOCKER_HOST=unix:///run/docklab-engine/docker.sock``);
published ports appear in the learner's network namespace (rootlesskit's builtin port driver).
What it costs is measured in BENCHMARKS.md, "Classroom".

Equivalent CLI (Docker-in-Docker): ``docker run -d --name LEARNER-engine --network container:LEARNER --init --cap-add
ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined --security-opt apparmor=unconfined
--security-opt systempaths=unconfined --tmpfs /run -v LEARNER-engine-data:/var/lib/docker -v
IMAGES.tar:/images/course.tar:ro --memory 2g --pids-limit 2048 --cpus 1 docker:dind sh -c ...``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
from docker.types import LogConfig

from docklab import labels as L
from docklab.errors import EngineError
from docklab.images import dind_run_options
from docklab.images.catalogue import SYSTEMPATHS_UNCONFINED

#: The engine image of each kind: the course's docker:dind (Debian 13's Engine 26.1, rootful),
#: and the rootless engine grading uses (the same dockerd, run by rootlesskit as uid 1000).
ENGINE_IMAGES = {"dind": "docker:dind", "rootless": "docklab/sealed-engine"}
ENGINE_IMAGE = ENGINE_IMAGES["dind"]
#: Where the rootless engine's socket is, in the sidecar and in the learner's container.
SOCKET_DIR = "/run/docklab-engine"
#: The file whose presence says the engine answers and holds the course images.
READY = "/run/docklab-engine-ready"
#: Where the saved course images are mounted in the sidecar.
IMAGES_TAR = "/images/course.tar"

#: How either sidecar's script ends, once its dockerd is starting (``$engine``): wait until the
#: engine answers (or stop if dockerd died), load the course images, say so, then stay with dockerd.
_THEN_LOAD_IMAGES = f"""until docker info >/dev/null 2>&1; do
  kill -0 "$engine" 2>/dev/null || exit 1
  sleep 0.1
done
if [ -f {IMAGES_TAR} ]; then docker load -q -i {IMAGES_TAR} || exit 1; fi
touch {READY}
wait "$engine"
"""

#: The sidecar's command: start dockerd (the entry script makes the cgroups writable first),
#: wait until it answers, load the course images, then say so. ``$1`` is the address to listen on.
_SCRIPT = """
dockerd-entrypoint.sh dockerd --host=unix:///var/run/docker.sock --host="tcp://$1:2375" \\
  --tls=false &
engine=$!
""" + _THEN_LOAD_IMAGES


#: The rootless sidecar's command (as root of its container, which holds no capability but those
#: a user namespace needs): dockerd as the user ``grader`` (uid 1000) in rootlesskit's namespaces,
#: its socket in the shared folder, its data on the sidecar's volume; then the images are loaded.
#: --disable-host-loopback: inner containers cannot reach the learner's own loopback (where its
#: JupyterLab listens).
_ROOTLESS_SCRIPT = f"""
set -eu
mkdir -p /run/user/1000 /var/lib/sealed
chown grader:grader /run/user/1000 /var/lib/sealed
chmod 0700 /run/user/1000
chmod 0777 {SOCKET_DIR}
[ -c /dev/net/tun ] && chmod 0666 /dev/net/tun
setpriv --reuid=grader --regid=grader --init-groups --reset-env env HOME=/home/grader \
  XDG_RUNTIME_DIR=/run/user/1000 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  rootlesskit --net=slirp4netns --mtu=65520 --copy-up=/etc --copy-up=/run \
  --disable-host-loopback --port-driver=builtin --state-dir=/run/user/1000/rootlesskit \
  sh -c '(until [ -S {SOCKET_DIR}/docker.sock ]; do sleep 0.05; done
          chmod 0666 {SOCKET_DIR}/docker.sock) &
         exec dockerd --host=unix://{SOCKET_DIR}/docker.sock --data-root=/var/lib/sealed \
           --exec-root=/run/user/1000/docker --pidfile=/run/user/1000/docker.pid' &
engine=$!
export DOCKER_HOST=unix://{SOCKET_DIR}/docker.sock
""" + _THEN_LOAD_IMAGES
#: What the rootless sidecar needs to make a user namespace (as docklab.grading.sealed).
_ROOTLESS_CAPABILITIES = ["SYS_ADMIN", "SETUID", "SETGID", "CHOWN", "DAC_OVERRIDE", "FOWNER",
                          "KILL"]


@dataclass(frozen=True)
class EngineLimits:
    """Bounds of one learner's engine (everything the learner runs runs in it)."""

    memory: str = "2g"
    cpus: float = 1.0
    pids: int = 2048


def engine_names(learner_container: str) -> tuple[str, str]:
    """The sidecar's and its data volume's names, from the learner container's."""
    return f"{learner_container}-engine", f"{learner_container}-engine-data"


def socket_volume(learner_container: str) -> str:
    """The volume holding a rootless engine's socket (mounted by the learner's container too)."""
    return f"{learner_container}-engine-socket"


def docker_host(kind: str) -> str:
    """The learner's DOCKER_HOST for an engine of ``kind``."""
    return f"unix://{SOCKET_DIR}/docker.sock" if kind == "rootless" else "tcp://127.0.0.1:2375"


def create_socket_volume(client: docker.DockerClient, learner_container: str,
                         labels: dict[str, str]) -> str:
    """Make (labelled) the volume a rootless engine's socket goes in, before the learner's
    container that mounts it."""
    name = socket_volume(learner_container)
    try:
        client.volumes.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass
    client.volumes.create(name, labels={**labels, L.KIND: "volume"})
    return name


def start_private_engine(client: docker.DockerClient, learner_container: str, *,
                         labels: dict[str, str], images_tar: Path | None,
                         limits: EngineLimits = EngineLimits(), bind: str = "127.0.0.1",
                         kind: str = "dind"):
    """Start a learner's engine in the network namespace of ``learner_container``, labelled
    ``labels`` (its data volume too).

    ``bind`` is the address dockerd listens on inside it: 127.0.0.1 keeps it the learner's own
    (``0.0.0.0`` would let every container on the classroom's network drive it: the isolation
    test shows that failing). Returns the sidecar container; :func:`wait_until_ready` waits.
    """
    name, volume_name = engine_names(learner_container)
    # A leftover of an earlier server (the socket's volume is the learner container's now).
    remove_private_engine(client, learner_container, socket=False)
    volume = client.volumes.create(volume_name, labels={**labels, L.KIND: "volume"})
    if kind == "rootless":
        binds = {volume.name: {"bind": "/var/lib/sealed", "mode": "rw"},
                 socket_volume(learner_container): {"bind": SOCKET_DIR, "mode": "rw"}}
        options = {"cap_drop": ["ALL"], "cap_add": _ROOTLESS_CAPABILITIES, "init": True,
                   "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
                   "devices": ["/dev/net/tun:/dev/net/tun:rwm"],
                   # docker:dind's VOLUME, unused here: no anonymous volume for it.
                   "tmpfs": {"/run": "size=64m", "/var/lib/docker": "size=1m"}}
        command = ["sh", "-c", _ROOTLESS_SCRIPT]
    else:
        options = dind_run_options(volume.name, client)
        binds = options.pop("volumes")
        command = ["sh", "-c", _SCRIPT, "sh", bind]
    if images_tar is not None:
        binds[str(images_tar)] = {"bind": IMAGES_TAR, "mode": "ro"}
    host_config = client.api.create_host_config(
        binds=binds, network_mode=f"container:{learner_container}",
        mem_limit=limits.memory, memswap_limit=limits.memory, pids_limit=limits.pids,
        nano_cpus=int(limits.cpus * 1e9),
        log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
        **options)
    host_config.update(SYSTEMPATHS_UNCONFINED)
    try:
        created = client.api.create_container(
            ENGINE_IMAGES[kind], name=name, labels=labels, host_config=host_config,
            detach=True, entrypoint=command)
        container = client.containers.get(created["Id"])
        container.start()
    except Exception:
        remove_private_engine(client, learner_container, socket=False)
        raise
    return container


def wait_until_ready(container, timeout: float = 120) -> float:
    """Wait until the engine answers with the course images loaded; returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        container.reload()
        if container.status != "running":
            break
        if container.exec_run(["test", "-f", READY]).exit_code == 0:
            return time.monotonic() - started
        time.sleep(0.25)
    logs = container.logs(tail=20).decode(errors="replace")
    raise EngineError(f"The private engine {container.name} did not get ready "
                      f"({container.status}). Its last lines:\n{logs}",
                      f"`docker logs {container.name}` shows why.")


def remove_private_engine(client: docker.DockerClient, learner_container: str, *,
                          socket: bool = True) -> list[str]:
    """Remove the learner's engine and its data (``docker rm -f -v NAME-engine && docker volume
    rm NAME-engine-data``), and with ``socket`` the rootless engine's socket volume (once the
    learner's container, which mounts it too, is gone); returns what was removed."""
    removed = []
    name, volume_name = engine_names(learner_container)
    try:
        client.containers.get(name).remove(force=True, v=True)
        removed.append(name)
    except docker.errors.NotFound:
        pass
    for volume in (volume_name, socket_volume(learner_container)) if socket else (volume_name,):
        try:
            client.volumes.get(volume).remove(force=True)
            removed.append(volume)
        except docker.errors.NotFound:
            pass
    return removed
