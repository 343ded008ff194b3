"""Tools that run inside the engine that judges: a container holding that engine's own socket.

Some labs need a program that drives the engine: the registry lab calls the learner's
``publish(client, registry)``, the compose lab runs ``docker compose``. Neither runs in the grading
process: each runs in a container of a course image (``docklab/python-docker``,
``docklab/compose``) on the engine being judged, with that engine's API socket mounted at
``/var/run/docker.sock``. On a sealed engine (:mod:`docklab.grading.sealed`) the host's
environment, files and engine socket are simply not there; what the tool can reach is that engine
and what it runs.

The container: the course image by the ID the judge recorded (``sandbox.reference``), the
sandbox's memory, pids and CPU limits, no capabilities, ``no-new-privileges``, a read-only root
filesystem with a small tmpfs on /tmp, the run's labels (removed with it), and an environment of
the judge's choosing only. On a sealed engine it runs as uid 1000 (the engine's socket there is
mode 0666); on a learner's own engine as root of the container (the owner of that engine's socket),
which is the learner's own access to their engine.

Equivalent CLI: ``docker run --rm --read-only --tmpfs /tmp --cap-drop ALL --security-opt
no-new-privileges -v <engine socket>:/var/run/docker.sock docklab/compose ...``.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

#: Where a sealed engine's API socket is, in that engine's own mount namespace (its inner
#: containers can bind-mount it): see docklab.grading.sealed.
SEALED_SOCKET = "/engine/docker.sock"
#: Where an engine's socket usually is on the engine's host (Linux, Docker Desktop's VM).
DEFAULT_SOCKET = "/var/run/docker.sock"
#: Where a tool finds the engine: the SDK's and the CLI's default.
TOOL_SOCKET = "/var/run/docker.sock"


def is_sealed(sandbox) -> bool:
    """Whether the sandbox judges on a sealed engine (it then refers to course images by ID)."""
    return bool(sandbox.references)


def engine_socket(sandbox) -> str:
    """The path of the judged engine's API socket, as the engine itself sees it."""
    if is_sealed(sandbox):
        return SEALED_SOCKET
    adapter_path = None
    try:
        adapter = sandbox.client.api.get_adapter(sandbox.client.api.base_url)
        adapter_path = getattr(adapter, "socket_path", None)
    except Exception:  # noqa: BLE001 - any client: fall back to the usual path
        adapter_path = None
    if adapter_path:
        return adapter_path
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return urlparse(host).path or DEFAULT_SOCKET
    return DEFAULT_SOCKET


def tool_options(sandbox, *, environment: dict[str, str] | None = None,
                 network_mode: str | None = None, tmp_size: str = "64m") -> dict:
    """Keyword arguments of ``client.containers.create`` for a tool container (see above)."""
    options = {
        **sandbox.container_limits(),
        "labels": sandbox.labels("container"),
        "user": "1000:1000" if is_sealed(sandbox) else "0:0",
        "read_only": True,
        "tmpfs": {"/tmp": f"size={tmp_size},mode=1777"},
        "volumes": {engine_socket(sandbox): {"bind": TOOL_SOCKET, "mode": "rw"}},
        "environment": {"HOME": "/tmp", **(environment or {})},
        "working_dir": "/tmp",
        "stdin_open": False,
        "tty": False,
    }
    if network_mode:
        options["network_mode"] = network_mode
    else:
        options["network_disabled"] = True
    return options
