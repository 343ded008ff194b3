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
import subprocess
import time
from urllib.parse import urlparse

import docker.errors
import requests.exceptions

#: Where a sealed engine's API socket is, in that engine's own mount namespace (its inner
#: containers can bind-mount it): see docklab.grading.sealed.
SEALED_SOCKET = "/engine/docker.sock"
#: A sealed engine's data root (docklab/sealed-engine's entry script: dockerd --data-root).
SEALED_DATA_ROOT = "/var/lib/sealed"
#: Where an engine's socket usually is on the engine's host (Linux, Docker Desktop's VM).
DEFAULT_SOCKET = "/var/run/docker.sock"
#: Where a tool finds the engine: the SDK's and the CLI's default.
TOOL_SOCKET = "/var/run/docker.sock"


def is_sealed(sandbox) -> bool:
    """Whether the sandbox judges on a sealed engine: one the grader loaded (it then refers to
    course images by ID), or one reached through its socket on the grading host (``DOCKER_HOST``,
    as a test points ``docklab check`` at one), known by its data root. Either way its own socket
    is :data:`SEALED_SOCKET`, not the path the grading host reaches it by."""
    if sandbox.references:
        return True
    try:
        return sandbox.client.info().get("DockerRootDir") == SEALED_DATA_ROOT
    except Exception:  # noqa: BLE001 - an engine that cannot say is judged as a plain one
        return False


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


class ToolContainer:
    """A container of a course tool image on the judged engine (see above); programs run in it
    with ``docker exec``, each under a time bound.

        with ToolContainer(sandbox, "docklab/docker-cli") as tool:
            tool.run(["docker", "volume", "ls"], timeout=30)

    Its environment is the container's own (HOME=/tmp, PATH, HOSTNAME), never the grading host's;
    files a program needs are written to /tmp first (:meth:`write`).
    """

    def __init__(self, sandbox, image: str):
        self.sandbox = sandbox
        self.image = image
        self.container = None

    def __enter__(self) -> ToolContainer:  # noqa: PYI034
        client = self.sandbox.client
        image = self.sandbox.reference(self.image).id
        self.container = client.containers.create(
            image, ["3600"], entrypoint=["sleep"], **tool_options(self.sandbox))
        self.container.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.container is not None:
            self.sandbox.remove_container(self.container.id)
            self.container = None

    def write(self, name: str, text: str) -> bool:
        """Write ``text`` to /tmp/``name`` in the container (the root filesystem is read-only)."""
        result = self.container.exec_run(
            ["sh", "-c", 'printf "%s" "$DOCKLAB_FILE" > "$1"', "sh", f"/tmp/{name}"],
            environment={"DOCKLAB_FILE": text})
        return result.exit_code == 0

    def run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
        """``argv`` (no shell) in /tmp, killed after ``timeout`` seconds → its exit status and
        output (124 or 143 and "timed out" when it was killed)."""
        command = ["timeout", str(int(timeout)), *argv]
        started = time.monotonic()
        try:
            result = self.container.exec_run(command, workdir="/tmp", demux=True)
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            return subprocess.CompletedProcess(argv, 125, "", f"{argv[0]} did not run: {exc}")
        out, err = (part.decode("utf-8", "replace") if part else "" for part in result.output)
        code = result.exit_code
        if code in (124, 143) and time.monotonic() - started >= timeout - 1:
            err = f"{err}\ntimed out after {timeout:.0f} s".lstrip()
        return subprocess.CompletedProcess(argv, code, out, err)
