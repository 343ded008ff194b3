"""One disposable engine per graded submission, that cannot reach the grading host.

A :class:`SealedEngine` is a rootless Docker Engine (dockerd as an unprivileged user inside a user
namespace, via rootlesskit) in a container of the course image ``docklab/sealed-engine``, started
on the host's engine and removed afterwards, pass or fail:

- **what it can reach**: its container has no network (``--network none``). Inner containers get
  out through slirp4netns, which can only connect to that container's own loopback, where the one
  listener relays to the grading host's :class:`~docklab.grading.proxy.AllowListProxy` (only the
  hosts the lab names, e.g. Debian's mirror). No host folder is mounted but two empty ones made
  for this run: the engine's socket, and the proxy's.
- **what it is**: root inside an inner container is uid 1000 of the sandbox container, never root
  of the host (measured: such containers cannot write the host's release_agent or core_pattern,
  which a rootful Docker-in-Docker container can). The sandbox container itself needs SYS_ADMIN
  and unconfined seccomp/AppArmor/system paths to create the user namespace; its other
  capabilities are dropped.
- **bounds, as a whole**: memory (its data root is a tmpfs, counted in it), disk (the tmpfs size),
  pids, CPU, and wall-clock time (the container is killed at ``limits.wall``).
- **what it holds**: the course images the lab needs, saved from the host's engine by the grader
  (never from anything a learner touched) and loaded into it; judges refer to them by the image ID
  the host recorded (:attr:`SealedEngine.references`), never by a tag that a learner's build could
  move.

Equivalent CLI (roughly): ``docker run -d --network none --cap-drop ALL --cap-add SYS_ADMIN ...
--tmpfs /var/lib/sealed:size=2g -v RUN/engine:/engine docklab/sealed-engine``, then
``DOCKER_HOST=unix://RUN/engine/docker.sock docker load -i course-images.tar``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests.exceptions
from docker.types import LogConfig

from docklab import labels as L
from docklab.engine import exec_output
from docklab.errors import DocklabError, ImageError
from docklab.grading.proxy import AllowListProxy, build_proxy_args

MiB = 1024 * 1024
GiB = 1024 * MiB
#: The course image that runs a sealed engine (catalogue: ``docklab/sealed-engine``).
SEALED_IMAGE = "docklab/sealed-engine:latest"

#: What the sandbox container needs to create a user namespace and run rootless dockerd in it.
_CAPABILITIES = ["SYS_ADMIN", "SETUID", "SETGID", "CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL"]
_SECURITY_OPT = ["seccomp=unconfined", "apparmor=unconfined"]


class SandboxStopped(DocklabError):
    """The sealed engine was stopped at one of its bounds (time, memory) while judging."""


@dataclass(frozen=True)
class SealedLimits:
    """Bounds of one sealed engine, as a whole. DOCKLAB_SEALED_* override them."""

    memory: int = 3 * GiB          # everything in it, its tmpfs data root included
    disk: int = 2 * GiB            # size of that data root (images, layers, container files)
    pids: int = 1024
    cpus: float = 1.0
    wall: float = 600.0            # seconds from start to teardown
    start_timeout: float = 60.0      # a busy grading host may take a while

    @classmethod
    def from_env(cls, **overrides) -> SealedLimits:
        names = {"memory": int, "disk": int, "pids": int, "cpus": float, "wall": float}
        values = {}
        for name, kind in names.items():
            raw = os.environ.get(f"DOCKLAB_SEALED_{name.upper()}")
            if raw:
                values[name] = kind(raw)
        values.update(overrides)
        return cls(**values)


def image_cache_dir() -> Path:
    """Where the grader keeps saved course images (``~/.cache/docklab/sealed``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "docklab" / "sealed"


def image_ids(host: docker.DockerClient, names: Iterable[str]) -> dict[str, str]:
    """{course image name: its ID on the host's engine}: what the judges refer to."""
    references = {}
    for name in names:
        try:
            references[name] = host.images.get(name).id
        except docker.errors.ImageNotFound as exc:
            raise ImageError(f"The course image {name} is not on this engine, so grading cannot "
                             "load it into the sealed engine.",
                             "Run `docklab images prepare`.") from exc
    return references


def saved_images(host: docker.DockerClient, names: Iterable[str]) -> tuple[Path, dict[str, str]]:
    """A tar of the course images ``names`` saved from the host's engine, and {name: image id}.

    Saved once per set of image IDs and reused (``docker save`` of debian:12 takes ~1 s); a new
    build of a course image has a new ID, so it gets a new tar.
    """
    references = image_ids(host, names)
    key = hashlib.sha256("\n".join(f"{n}={i}" for n, i in sorted(references.items())).encode())
    cache = image_cache_dir()
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = cache / f"images-{key.hexdigest()[:16]}.tar"
    if not path.is_file():
        api = host.api
        response = api._get(api._url("/images/get"), params={"names": sorted(references)},
                            stream=True)
        api._raise_for_status(response)
        with tempfile.NamedTemporaryFile(dir=cache, delete=False) as handle:
            for chunk in response.iter_content(1024 * 1024):
                handle.write(chunk)
        os.replace(handle.name, path)
    return path, references


class SealedEngine:
    """A rootless engine for one submission: ``with SealedEngine(host, images=[...]) as sealed:``.

    ``sealed.client`` talks to it; ``sealed.references`` maps each loaded course image to its ID;
    ``sealed.build_args`` routes a build's HTTP through the allow-list proxy. ``close()`` removes
    the sandbox container (and with it everything inside) and this run's folder.
    """

    def __init__(self, host: docker.DockerClient, *, images: Iterable[str] = (),
                 allow_hosts: Iterable[str] = (), limits: SealedLimits | None = None,
                 lesson: str = "grade-sealed", seed: Path | None = None):
        self.host = host
        self.images = tuple(images)
        self.allow_hosts = tuple(allow_hosts)
        self.limits = limits or SealedLimits.from_env()
        self.lesson = lesson
        #: A data root to start from (see :func:`make_seed`): the images are in it already.
        self.seed = seed
        self.client: docker.DockerClient | None = None
        self.references: dict[str, str] = {}
        self.build_args: dict[str, str] = build_proxy_args() if self.allow_hosts else {}
        self.details: dict = {}
        self.stopped_why = ""
        #: The watchdog saw the sandbox's processes at the pids bound at least once.
        self._saw_pids_limit = False
        self._container = None
        self._proxy: AllowListProxy | None = None
        self._run_dir: Path | None = None
        self._watch: threading.Thread | None = None
        self._closing = threading.Event()

    def __enter__(self) -> SealedEngine:  # noqa: PYI034
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def socket_path(self) -> Path | None:
        """The sealed engine's API socket on this host (``DOCKER_HOST=unix://...``)."""
        return self._run_dir / "engine" / "docker.sock" if self._run_dir else None

    @property
    def proxy_log(self) -> list[str]:
        return list(self._proxy.log) if self._proxy else []

    def start(self) -> None:
        started = time.monotonic()
        try:
            self.host.images.get(SEALED_IMAGE)
        except docker.errors.ImageNotFound as exc:
            raise ImageError(f"The course image {SEALED_IMAGE} is not on this engine: grading "
                             "runs every submission in one.",
                             "Run `docklab images prepare`.") from exc
        if self.seed is not None:
            tar, references = None, image_ids(self.host, self.images)
        else:
            tar, references = saved_images(self.host, self.images) if self.images else (None, {})
        self._run_dir = Path(tempfile.mkdtemp(prefix="docklab-sealed-"))
        engine_dir = self._run_dir / "engine"
        proxy_dir = self._run_dir / "proxy"
        for folder in (engine_dir, proxy_dir):
            folder.mkdir()
            # The engine runs as uid 1000 inside; only this 0700 run folder leads here.
            folder.chmod(0o777)
        if self.allow_hosts:
            self._proxy = AllowListProxy(proxy_dir / "proxy.sock", self.allow_hosts)
            self._proxy.start()
        self._container = self._create_container(engine_dir, proxy_dir)
        self._container.start()
        self._watch = threading.Thread(target=self._watchdog, name="docklab-sealed-watch",
                                       daemon=True)
        self._watch.start()
        self.client = self._wait_for_engine(engine_dir / "docker.sock")
        self.details["engine_start_seconds"] = round(time.monotonic() - started, 2)
        loaded = time.monotonic()
        if tar is not None:
            with open(tar, "rb") as handle:
                self.client.images.load(handle)
        if references:
            for name, image_id in references.items():
                inner = self.client.images.get(image_id)
                if name not in inner.tags and f"{name}:latest" not in inner.tags:
                    raise ImageError(f"{name} did not load into the sealed engine.",
                                     "Remove ~/.cache/docklab/sealed and grade again.")
            self.references = references
            self.details["images_load_seconds"] = round(time.monotonic() - loaded, 2)

    def _create_container(self, engine_dir: Path, proxy_dir: Path):
        api = self.host.api
        host_config = api.create_host_config(
            network_mode="none", cap_drop=["ALL"], cap_add=_CAPABILITIES,
            security_opt=_SECURITY_OPT, devices=["/dev/net/tun:/dev/net/tun:rwm"],
            # /var/lib/docker: docker:dind's VOLUME, unused here; a tmpfs over it means no
            # anonymous volume is made for each sandbox.
            tmpfs={"/var/lib/sealed": f"size={self.limits.disk},mode=0755",
                   "/run": "size=64m", "/var/lib/docker": "size=1m"},
            binds={str(engine_dir): {"bind": "/engine", "mode": "rw"},
                   str(proxy_dir): {"bind": "/proxy", "mode": "rw"},
                   **({str(self.seed): {"bind": "/seed/data-root.tar", "mode": "ro"}}
                      if self.seed is not None else {})},
            mem_limit=self.limits.memory, memswap_limit=self.limits.memory,
            pids_limit=self.limits.pids, nano_cpus=int(self.limits.cpus * 1e9),
            log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}))
        # `--security-opt systempaths=unconfined` is, in the API, no masked or read-only /proc
        # paths (docker-py has no keyword for it): rootlesskit mounts a fresh /proc.
        host_config["MaskedPaths"] = []
        host_config["ReadonlyPaths"] = []
        created = api.create_container(
            SEALED_IMAGE, host_config=host_config, name=L.course_name(
                f"docklab-sealed-{self.lesson}-{os.urandom(4).hex()}"),
            labels=L.labels_for(self.lesson, kind="container"))
        return self.host.containers.get(created["Id"])

    def save_seed(self, path: Path) -> None:
        """Stop this engine and save its data root as ``path``, for later engines to start from.

        The engine is stopped first (SIGTERM to the sandbox: dockerd shuts down cleanly), so the
        copy is consistent; the sandbox's entry script writes it, as root, keeping owners, the
        overlay whiteouts and their extended attributes. The engine is gone afterwards.
        """
        engine_dir = self._run_dir / "engine"
        (engine_dir / "make-seed").touch()
        self._closing.set()  # the watchdog must not count a stopping engine
        self._container.kill(signal="SIGTERM")
        status = self._container.wait(timeout=self.limits.start_timeout * 2)
        made = engine_dir / "seed.tar"
        if status.get("StatusCode") != 0 or not made.is_file():
            log = self._container.logs(tail=10).decode(errors="replace")
            raise DocklabError("The sealed engine could not save its data root.", log)
        os.replace(made, path)

    def _wait_for_engine(self, socket_path: Path) -> docker.DockerClient:
        deadline = time.monotonic() + self.limits.start_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if socket_path.exists():
                client = docker.DockerClient(base_url=f"unix://{socket_path}", version="auto",
                                             timeout=120)
                try:
                    client.ping()
                    return client
                except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
                    last = exc
                    client.close()
            self._container.reload()
            if self._container.status != "running":
                break
            time.sleep(0.05)
        log = self._container.logs(tail=20).decode(errors="replace")
        raise DocklabError("The sealed grading engine did not start.",
                           f"Its last lines:\n{log or last}")

    def _watchdog(self) -> None:
        """Stop the sandbox at its wall-clock bound, or when its processes stay at the pids bound.

        A rootless engine on a cgroup v1 host cannot limit its own containers, so a fork bomb
        fills the sandbox's pids limit and then stalls everything in it, the engine included:
        three looks in a row at the limit end it at once instead of at the wall clock.
        """
        deadline = time.monotonic() + self.limits.wall
        at_limit = 0
        while not self._closing.wait(1.0):
            if time.monotonic() > deadline:
                self._stop("wall")
                return
            now = self._at_pids_limit()
            if now is None:
                continue
            self._saw_pids_limit = self._saw_pids_limit or now
            at_limit = at_limit + 1 if now else 0
            if at_limit >= 3:
                self._stop("pids")
                return

    def _stop(self, why: str) -> None:
        """Kill the sandbox at a bound: every call on ``client`` fails from here on."""
        self.stopped_why = self.stopped_why or why
        if self._container is not None:
            with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
                self._container.kill()

    def bound_hit(self) -> str:
        """Which bound stopped the engine ("wall", "memory"), or "" while it runs within them."""
        if self.stopped_why:
            return self.stopped_why
        if self._container is None:
            return ""
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            self._container.reload()
            state = self._container.attrs.get("State") or {}
            if state.get("OOMKilled"):
                return "memory"
            if not state.get("Running"):
                return "stopped"
            # Still running, but its processes reached the pids bound: a fork bomb that broke
            # the build before the watchdog's third look (BuildKit's engine drops its client,
            # then cancels the step, and the sandbox recovers). On a loaded host it can rise and
            # fall between two looks (CI: the build failed in 0.8 s), so the kernel's own count
            # of refused forks is asked too.
            if self._saw_pids_limit or self._at_pids_limit() or self._forks_refused():
                self._stop("pids")
                return "pids"
        return ""

    def _at_pids_limit(self) -> bool | None:
        """Whether the sandbox's processes are at its pids bound now (None: no answer)."""
        try:
            stats = self._container.stats(stream=False, one_shot=True)
        except (docker.errors.APIError, requests.exceptions.RequestException, AttributeError):
            return None
        current = (stats.get("pids_stats") or {}).get("current") or 0
        return current >= self.limits.pids - 8

    def _forks_refused(self) -> int:
        """How many times the kernel refused the sandbox a new process at its pids bound.

        It is the "max" row of the sandbox's ``pids.events``, read inside it (cgroup v1's pids
        hierarchy, or v2's unified one). The rootless engine cannot give its containers cgroups
        of their own on a cgroup v1 host, so a fork bomb in a build or a container forks in the
        sandbox's cgroup and is counted there. 0 when it cannot be read.
        """
        read = "cat /sys/fs/cgroup/pids/pids.events 2>/dev/null || cat /sys/fs/cgroup/pids.events"
        code, text = exec_output(self._container, ["sh", "-c", read])
        if code != 0:
            return 0
        for row in text.splitlines():
            name, _, count = row.partition(" ")
            if name == "max" and count.strip().isdigit():
                return int(count)
        return 0

    def close(self) -> None:
        self._closing.set()
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
        if self._container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self._container.remove(force=True, v=True)
            self._container = None
        if self._proxy is not None:
            self._proxy.close()
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None
