"""Other Docker Engines beside the host's, to run the course on the engines learners have.

``docklab engines start 28 [--containerd-store]`` runs a course engine image (Docker-in-Docker:
``docklab/engine:20``, ``:26`` and ``:28`` are built from Debian 12's, 13's and sid's packages;
``:26`` is the course's docker:dind) as a container of the host engine, loads the course images into it,
and prints the ``DOCKER_HOST`` to export. Its API is published on 127.0.0.1 only, without TLS: reachable from
this machine and nowhere else (so it only works where the host engine runs on this machine).
Each engine keeps its /var/lib/docker in a named volume; ``stop`` removes container and volume.

Such an engine is root on the host (see docklab.images.catalogue.DIND_RUN_OPTIONS): it is for
trying the course out, never for untrusted work.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import docker
import docker.errors

from docklab import labels as L
from docklab.engine import engine_address
from docklab.errors import EngineError
from docklab.images import dind_run_options, find, prepare
from docklab.images.catalogue import SYSTEMPATHS_UNCONFINED
from docklab.images.prepare import default_names

#: The engines one can start: the version a learner says → the course image that runs it.
ENGINE_IMAGES = {
    "20": "docklab/engine:20",  # Debian 12's docker.io 20.10 (end of life), as the host has
    "26": "docklab/engine:26",  # Debian 13's docker.io 26.1: the course's docker:dind
    "28": "docklab/engine:28",  # Debian sid's docker.io 28.5, containerd 2.1
}

#: The lesson label of everything this module creates (``docklab clean`` removes it too).
LESSON = "engine-matrix"
#: Labels that tell the engines apart (under the ``org.docklab`` prefix: only docklab sets them).
ENGINE = f"{L.PREFIX}.engine"
STORE = f"{L.PREFIX}.engine-store"


#: The inner daemon.json that turns on the containerd image store (Docker Desktop's default on
#: new installs; an option from Engine 24, the default from 29).
CONTAINERD_STORE = {"features": {"containerd-snapshotter": True}}

#: Seconds the inner engine has to answer once its container started.
START_TIMEOUT = 60

Say = Callable[[str], None]


@dataclass(frozen=True)
class Engine:
    """One started engine: its container and where to reach it."""

    version: str
    store: str  # "overlay2" or "containerd"
    container: str
    volume: str
    docker_host: str

    def client(self, timeout: int = 120) -> docker.DockerClient:
        """A client of this engine (``DOCKER_HOST=… docker …``)."""
        return docker.DockerClient(base_url=self.docker_host, version="auto", timeout=timeout)

    def as_dict(self) -> dict:
        return {"version": self.version, "store": self.store, "container": self.container,
                "volume": self.volume, "docker_host": self.docker_host}


def engine_name(version: str, containerd_store: bool = False) -> str:
    """``docklab-engine-28`` or ``docklab-engine-28-containerd`` (with the learner's prefix)."""
    return L.course_name(f"docklab-engine-{version}" + ("-containerd" if containerd_store else ""))


def _image_for(version: str) -> str:
    key = version.split(".")[0]
    if key not in ENGINE_IMAGES:
        raise EngineError(f"No course engine {version!r}.",
                          f"Choose one of {', '.join(ENGINE_IMAGES)}.")
    return ENGINE_IMAGES[key]


def _daemon_json_archive(config: dict) -> bytes:
    data = json.dumps(config, indent=2).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        folder = tarfile.TarInfo("docker")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        info = tarfile.TarInfo("docker/daemon.json")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def start(client: docker.DockerClient, version: str, *, containerd_store: bool = False,
          images: Iterable[str] | None = None, say: Say = print) -> Engine:
    """Start engine ``version`` (20, 26 or 28) beside the host's and load ``images`` into it
    (by default the course images ``docklab images prepare`` makes, so that ``docklab doctor``
    finds them there too; ``()`` loads none).

    Builds its image first if needed. An engine of that name already running is kept and
    topped up with the images it lacks. Equivalent CLI (engine 28, containerd store):
    ``docker run -d --name docklab-engine-28-containerd -p 127.0.0.1::2375 --init --cap-add ALL
    --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined --security-opt apparmor=unconfined
    --security-opt systempaths=unconfined --tmpfs /run -v VOLUME:/var/lib/docker
    docklab/engine:28`` with /etc/docker/daemon.json copied in before it starts, then
    ``docker save IMAGES | DOCKER_HOST=… docker load``.
    """
    image = find(_image_for(version))
    name = engine_name(version.split(".")[0], containerd_store)
    store = "containerd" if containerd_store else "overlay2"
    if not engine_address().startswith("unix://"):
        say(f"note: the host engine is at {engine_address()}; the new engine's API is published "
            "on 127.0.0.1 of the machine that engine runs on, which this one may not reach")
    prepare(client, [image.name], progress=say)
    engine = _running(client, name)
    if engine is None:
        started = time.monotonic()
        engine = _create(client, image, version.split(".")[0], name, store, containerd_store)
        _wait_until_it_answers(client, engine)
        say(f"{name}: engine answers at {engine.docker_host} "
            f"({time.monotonic() - started:.1f} s)")
    else:
        say(f"{name}: already running at {engine.docker_host}")
    images = default_names() if images is None else list(images)
    if images:
        load_images(client, engine, images, say=say)
    return engine


def _labels(version: str, store: str) -> dict[str, str]:
    labels = L.labels_for(LESSON, kind="container")
    labels.update({ENGINE: version, STORE: store})
    return labels


def _create(client: docker.DockerClient, image, version: str, name: str, store: str,
            containerd_store: bool) -> Engine:
    labels = _labels(version, store)
    volume = client.volumes.create(f"{name}-data", labels={**labels, L.KIND: "volume"})
    options = dind_run_options(volume.name, client)
    # The low-level API: systempaths=unconfined has no keyword in the SDK's containers.run.
    host_config = client.api.create_host_config(
        binds=options.pop("volumes"), port_bindings={2375: ("127.0.0.1", None)}, **options)
    host_config.update(SYSTEMPATHS_UNCONFINED)
    try:
        created = client.api.create_container(image.ref, name=name, labels=labels, ports=[2375],
                                              host_config=host_config, detach=True)
    except docker.errors.APIError:
        volume.remove(force=True)
        raise
    container = client.containers.get(created["Id"])
    try:
        if containerd_store:
            container.put_archive("/etc", _daemon_json_archive(CONTAINERD_STORE))
        container.start()
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["2375/tcp"][0]["HostPort"]
    except Exception:
        container.remove(force=True, v=True)
        volume.remove(force=True)
        raise
    return Engine(version, store, name, volume.name, f"tcp://127.0.0.1:{port}")


def _engine_of(container) -> Engine:
    labels = container.labels
    volume = next((m["Name"] for m in container.attrs.get("Mounts", [])
                   if m.get("Destination") == "/var/lib/docker" and m.get("Name")), "")
    bindings = (container.attrs["NetworkSettings"].get("Ports") or {}).get("2375/tcp") or []
    host = f"tcp://127.0.0.1:{bindings[0]['HostPort']}" if bindings else ""
    return Engine(labels.get(ENGINE, "?"), labels.get(STORE, "?"), container.name, volume, host)


def _running(client: docker.DockerClient, name: str) -> Engine | None:
    try:
        container = client.containers.get(name)
    except docker.errors.NotFound:
        return None
    if container.status != "running" or ENGINE not in container.labels:
        raise EngineError(f"A container {name} is there but is not a running course engine.",
                          f"Remove it with `docklab engines stop {container.labels.get(ENGINE, '')}"
                          f"` (or `docker rm -f {name}`) and start again.")
    return _engine_of(container)


def _wait_until_it_answers(client: docker.DockerClient, engine: Engine) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            # version="auto" asks the engine at once: the client itself is the first ping.
            engine.client(timeout=5).close()
            return
        except (docker.errors.DockerException, OSError):  # requests' errors are OSErrors
            container = client.containers.get(engine.container)
            if container.status != "running" or time.monotonic() > deadline:
                logs = container.logs(tail=30).decode(errors="replace")
                raise EngineError(
                    f"The engine in {engine.container} did not answer within {START_TIMEOUT} s "
                    f"({container.status}). Its last lines:\n{logs}",
                    f"`docker logs {engine.container}` shows why; "
                    f"`docklab engines stop {engine.version}` removes it.") from None
            time.sleep(0.2)


def list_engines(client: docker.DockerClient) -> list[Engine]:
    """This learner's course engines beside the host's (``docker ps --filter label=…engine``)."""
    scope = L.label_filters(lesson=LESSON, learner=L.learner_name())
    containers = client.containers.list(all=True, filters={"label": [*scope, ENGINE]},
                                        ignore_removed=True)
    return [_engine_of(container) for container in containers]


def stop(client: docker.DockerClient, version: str | None = None, *,
         containerd_store: bool | None = None) -> list[str]:
    """Remove this learner's course engines (all, or ``version`` and that store) with their
    volumes.

    Returns the names removed. Equivalent CLI: ``docker rm -f -v NAME && docker volume rm
    NAME-data``.
    """
    removed = []
    for engine in list_engines(client):
        if version is not None and engine.version != version.split(".")[0]:
            continue
        if containerd_store is not None and (engine.store == "containerd") != containerd_store:
            continue
        try:
            client.containers.get(engine.container).remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        if engine.volume:
            try:
                client.volumes.get(engine.volume).remove(force=True)
            except docker.errors.NotFound:
                pass
        removed.append(engine.container)
    return removed


# -- loading the course images ------------------------------------------------------------------

def _save_stream(client: docker.DockerClient, refs: list[str]) -> Iterator[bytes]:
    """``docker save REF...`` as one stream: layers the images share go across once.

    The SDK's ``Image.save`` takes one image; the Engine API's ``GET /images/get`` takes many.
    """
    response = client.api._get(client.api._url("/images/get"), params={"names": refs},
                               stream=True)
    client.api._raise_for_status(response)
    yield from response.iter_content(chunk_size=1024 * 1024)


class _Counted:
    """Passes a byte stream on, reporting how much went through."""

    def __init__(self, chunks: Iterator[bytes], say: Say, label: str, every: int = 100 << 20):
        self.chunks, self.say, self.label, self.every = chunks, say, label, every
        self.total, self._next = 0, every

    def __iter__(self):
        for chunk in self.chunks:
            self.total += len(chunk)
            if self.total >= self._next:
                self.say(f"{self.label}: {self.total / 1e6:.0f} MB sent")
                self._next += self.every
            yield chunk


def load_images(client: docker.DockerClient, engine: Engine, images: Iterable[str], *,
                say: Say = print) -> list[str]:
    """Copy ``images`` the inner engine lacks from the host engine into it; returns those copied.

    Equivalent CLI: ``docker save IMAGE... | DOCKER_HOST=… docker load``, streamed (nothing is
    written to disk on the way).
    """
    inner = engine.client(timeout=600)
    try:
        wanted = [find(name).ref for name in images]
        missing = []
        for ref in wanted:
            try:
                host_id = client.images.get(ref).id
            except docker.errors.ImageNotFound:
                say(f"{engine.container}: {ref} is not on the host engine: skipped "
                    "(docklab images prepare makes it)")
                continue
            try:
                inner_image = inner.images.get(ref)
            except docker.errors.ImageNotFound:
                missing.append(ref)
                continue
            # Image ids differ between stores (the containerd store's id is the manifest's
            # digest), so compare the labels: a course build's carry its recipe hash.
            if (inner_image.labels or {}) != (client.images.get(host_id).labels or {}):
                missing.append(ref)
        if not missing:
            say(f"{engine.container}: course images already loaded")
            return []
        started = time.monotonic()
        say(f"{engine.container}: loading {', '.join(missing)} from the host engine")
        stream = _Counted(_save_stream(client, missing), say, engine.container)
        for line in inner.api.load_image(iter(stream)):
            if isinstance(line, dict) and line.get("error"):
                raise EngineError(f"Loading images into {engine.container} failed: "
                                  f"{line['error']}", "Check the inner engine's free disk.")
        say(f"{engine.container}: loaded {len(missing)} images ({stream.total / 1e6:.0f} MB) in "
            f"{time.monotonic() - started:.1f} s")
        return missing
    finally:
        inner.close()
