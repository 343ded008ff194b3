"""A fresh Debian host in a container of the host engine, to run scripts/ensure-engine.sh on as
`make lab` runs it on a new machine (shared by test_fresh_host_engine and
bench/bench_fresh_engine.py).

The container is started like the course's Docker-in-Docker engines (docklab.images'
``dind_run_options`` and ``SYSTEMPATHS_UNCONFINED``: every capability but SYS_RESOURCE, a volume on
/var/lib/docker), so that a dockerd installed in it runs; its entry point is `sleep`, so nothing
runs in it until the script does. apt in it reaches the host's Debian mirror as the course's
images do: the course's debian:12 carries the host's mirror, its extra CA certificates and apt
settings (docklab.images.build).
"""

from __future__ import annotations

import io
import re
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker

from docklab import labels as L
from docklab.images import dind_run_options, find, prepare
from docklab.images.catalogue import SYSTEMPATHS_UNCONFINED

ROOT = Path(__file__).resolve().parents[2]
#: What `make engine` runs, and the library they share: copied into the container.
SCRIPTS = ("ensure-engine.sh", "ensure-buildx.sh", "debian-packages.sh")
#: Where the scripts go in the container, and the DOCKLAB_STATE they run with there.
INNER_SCRIPTS = "/docklab/scripts"
INNER_SCRIPT = f"{INNER_SCRIPTS}/ensure-engine.sh"
INNER_STATE = "/docklab/.docklab"
LESSON = "test-fresh-host"


@dataclass(frozen=True)
class Run:
    """One run of a command in the fresh host."""

    exit_code: int
    output: str
    seconds: float


def _script_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for script in SCRIPTS:
            info = tarfile.TarInfo(f"{INNER_SCRIPTS.lstrip('/')}/{script}")
            data = (ROOT / "scripts" / script).read_bytes()
            info.size, info.mode = len(data), 0o555
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@contextmanager
def fresh_host(client: docker.DockerClient, image: str = "debian:12") -> Iterator:
    """A running container of course image ``image`` with this repository's ensure-engine.sh in
    it, removed afterwards with its volume (and whatever else this session labelled for
    :data:`LESSON`), also when something fails.

    Equivalent CLI: ``docker run -d --entrypoint sleep <dind flags> --security-opt
    systempaths=unconfined IMAGE infinity`` and ``docker cp``.
    """
    ref = find(image).ref
    prepare(client, [ref], progress=lambda line: None)
    name = L.course_name(f"docklab-fresh-host-{uuid.uuid4().hex[:8]}")
    labels = L.labels_for(LESSON, kind="container")
    try:
        volume = client.volumes.create(f"{name}-data", labels={**labels, L.KIND: "volume"})
        options = dind_run_options(volume.name, client)
        # The low-level API: systempaths=unconfined has no keyword in the SDK's containers.run.
        host_config = client.api.create_host_config(binds=options.pop("volumes"), **options)
        host_config.update(SYSTEMPATHS_UNCONFINED)
        created = client.api.create_container(ref, entrypoint=["sleep"], command=["infinity"],
                                              name=name, labels=labels, host_config=host_config)
        container = client.containers.get(created["Id"])
        container.put_archive("/", _script_archive())
        container.start()
        yield container
    finally:
        L.remove_labelled(client, lesson=LESSON, session=L.session_id())


def run(container, command: str, *, say: Callable[[str], None] | None = None,
        env: dict[str, str] | None = None, timeout: int = 900) -> Run:
    """``docker exec CONTAINER bash -c COMMAND`` (stdout and stderr together), each line passed
    to ``say`` as it comes; stopped after ``timeout`` seconds."""
    api = container.client.api
    started = time.monotonic()
    exec_id = api.exec_create(container.id, ["timeout", str(timeout), "bash", "-c", command],
                              environment=env or {})["Id"]
    chunks, pending = [], ""
    for chunk in api.exec_start(exec_id, stream=True):
        text = chunk.decode(errors="replace")
        chunks.append(text)
        if say:
            pending += text
            *lines, pending = pending.split("\n")
            for line in lines:
                say(line)
    if say and pending:
        say(pending)
    exit_code = api.exec_inspect(exec_id)["ExitCode"]
    return Run(exit_code, "".join(chunks), time.monotonic() - started)


def ensure_engine(container, *, say: Callable[[str], None] | None = None,
                  env: dict[str, str] | None = None) -> Run:
    """Run ensure-engine.sh, then ensure-buildx.sh, in the fresh host as `make engine` runs them
    (as root)."""
    return run(container, f"{INNER_SCRIPT} && {INNER_SCRIPTS}/ensure-buildx.sh", say=say,
               env={"DOCKLAB_STATE": INNER_STATE, **(env or {})})


_FETCHED = re.compile(r"^Fetched ([\d.,]+) ([kMG]?B) in", re.MULTILINE)
_UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def fetched_bytes(apt_log: str) -> list[int]:
    """What each apt command downloaded, in order, by apt's own "Fetched N kB in ..." lines."""
    return [int(float(n.replace(",", "")) * _UNITS[unit]) for n, unit in _FETCHED.findall(apt_log)]
