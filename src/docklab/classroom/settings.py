"""One classroom's settings: names, ports, limits, which images each learner's engine holds.

Read from the environment (``DOCKLAB_CLASSROOM_*``) so that the CLI, the hub's configuration file
(``classroom/jupyterhub_config.py``, read in the hub's own process) and the tests agree.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from docklab import labels as L
from docklab.classroom.engine import EngineLimits

#: The lesson label of everything a classroom creates (``docklab clean`` removes it too).
LESSON = "classroom"
#: Which classroom a resource belongs to (several may share a host: the tests run their own).
CLASSROOM = f"{L.PREFIX}.classroom"

#: Course images every learner's engine gets by default: what the lessons run.
DEFAULT_IMAGES = ("busybox", "debian:12", "python:3.11-slim", "nginx", "redis", "registry:2")


def _env(name: str, default: str) -> str:
    return os.environ.get(f"DOCKLAB_CLASSROOM_{name}") or default


@dataclass(frozen=True)
class Settings:
    """A classroom on this host. ``Settings.from_env()`` reads DOCKLAB_CLASSROOM_*."""

    #: Names its containers, network and volumes (DOCKLAB_PREFIX goes in front, as everywhere).
    name: str = "docklab-classroom"
    #: Where learners open the hub: http://IP:PORT (IP 0.0.0.0 for a room on a LAN).
    ip: str = "127.0.0.1"
    port: int = 8000
    admin: str = "instructor"
    #: Images loaded into each learner's engine.
    images: tuple[str, ...] = DEFAULT_IMAGES
    #: Per learner: the JupyterLab container's bounds, and its engine's.
    memory: str = "1g"
    cpus: float = 1.0
    pids: int = 512
    engine: EngineLimits = field(default_factory=EngineLimits)
    #: Each learner's engine: "dind" (rootful Docker-in-Docker) or "rootless" (docklab.classroom.engine).
    engine_kind: str = "dind"
    #: Where a "dind" engine listens inside the learner's network namespace.
    engine_bind: str = "127.0.0.1"
    #: Seconds without activity before the idle culler stops a learner's server.
    idle_timeout: int = 3600
    #: "shared-password" (a workshop: one password for learners) or "dummy" (tests: any password).
    authenticator: str = "shared-password"

    @classmethod
    def from_env(cls) -> Settings:
        images = _env("IMAGES", ",".join(DEFAULT_IMAGES))
        return cls(
            name=L.course_name(_env("NAME", "docklab-classroom")),
            ip=_env("IP", "127.0.0.1"), port=int(_env("PORT", "8000")),
            admin=_env("ADMIN", "instructor"),
            images=tuple(name for name in images.split(",") if name),
            memory=_env("MEMORY", "1g"), cpus=float(_env("CPUS", "1")),
            pids=int(_env("PIDS", "512")),
            engine=EngineLimits(memory=_env("ENGINE_MEMORY", "2g"),
                                cpus=float(_env("ENGINE_CPUS", "1")),
                                pids=int(_env("ENGINE_PIDS", "2048"))),
            engine_kind=_env("ENGINE", "dind"), engine_bind=_env("ENGINE_BIND", "127.0.0.1"),
            idle_timeout=int(_env("IDLE_TIMEOUT", "3600")),
            authenticator=_env("AUTH", "shared-password"))

    # -- where things are --------------------------------------------------------------------

    @property
    def network(self) -> str:
        return self.name

    @property
    def hub_port(self) -> int:
        """The hub's own API, on the classroom network's gateway (learners' servers call it)."""
        return self.port + 1

    @property
    def proxy_api_port(self) -> int:
        return self.port + 2

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.ip in ("0.0.0.0", "") else self.ip
        return f"http://{host}:{self.port}"

    @property
    def state_path(self) -> Path:
        """The hub's database, secrets, pid and log (``~/.local/state/docklab/classroom/NAME``)."""
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(base) / "docklab" / "classroom" / self.name

    def state_dir(self) -> Path:
        """:attr:`state_path`, made if missing."""
        self.state_path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.state_path

    def secret(self, what: str, length: int = 32) -> str:
        """A secret kept in the state folder (made the first time): ``api-token``, ``password``,
        ``admin-password``."""
        path = self.state_dir() / what
        if not path.exists():
            path.write_text(secrets.token_hex(length // 2 + 1)[:length] + "\n")
            path.chmod(0o600)
        return path.read_text().strip()

    def labels(self, learner: str | None = None, kind: str = "container") -> dict[str, str]:
        labels = L.labels_for(LESSON, kind=kind)
        labels[CLASSROOM] = self.name
        if learner is not None:
            labels[L.LEARNER] = learner
        return labels

    def to_json(self) -> str:
        data = asdict(self)
        data["images"] = list(self.images)
        return json.dumps(data)
