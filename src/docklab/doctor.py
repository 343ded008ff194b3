"""``docklab doctor``: is this machine ready for the course? Each failed check says how to fix it.

The same checks back the engine check in notebooks/00-index.ipynb.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import docker
import docker.errors

from docklab.engine import connect, default_builder, engine_address, engine_summary
from docklab.errors import DocklabError
from docklab.ports import COURSE_PORTS

#: Below this much free space on the engine's disk, image builds start failing.
MIN_FREE_BYTES = 5 * 1024**3

#: The oldest engine someone still patches: Docker itself patches only its newest major (29 in late
#: 2026), and Debian 13 ships Engine 26.1 with security updates for its lifetime (to 2028). Older
#: engines get no fixes: 20.10 (Debian 12's) had its last upstream release in 2023. The course
#: still runs on 20.10 (API 1.41) so that those hosts work, but says so. scripts/ensure-engine.sh
#: (its MAINTAINED_MAJOR) installs an older one only where no newer one installs, and says so.
MAINTAINED_MAJOR = 26


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    #: Works, but should change (e.g. an end-of-life engine): shown, without failing the check.
    warning: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def run_checks() -> list[Check]:
    """Run every check; never raises for an unready machine, only reports."""
    try:
        client = connect(fresh=True)
    except DocklabError as exc:
        needs = "needs a reachable engine"
        return [
            Check("engine", False, exc.message, exc.hint),
            Check("compose", *_check_compose_cli()),
            Check("images", False, needs, "Fix the engine first."),
            Check("disk", False, needs, "Fix the engine first."),
            Check("ports", False, needs, "Fix the engine first."),
        ]
    return [
        _check_engine(client),
        Check("compose", *_check_compose_cli()),
        _check_images(client),
        _check_disk(client),
        _check_ports(client),
    ]


def _check_engine(client: docker.DockerClient) -> Check:
    from docklab.storage import image_store

    s = engine_summary(client)
    info = client.info()
    builder = ("BuildKit (the engine's default)" if default_builder(client) == "buildkit"
               else "legacy builder by default (BuildKit only on request)")
    detail = (f"Docker Engine {s['version']} (API {s['api_version']}) at {s['address']}, {s['os']}, "
              f"{image_store(client, info).description}, builder: {builder}, "
              f"buildx CLI: {buildx_version() or 'none'}, cgroup v{s['cgroup_version']}")
    return Check("engine", True, detail, warning=end_of_life_warning(s["version"] or ""))


def end_of_life_warning(version: str) -> str:
    """What to say about engine ``version`` when nobody patches it any more ("" when maintained)."""
    try:
        major = int(version.split(".")[0])
    except ValueError:
        return ""
    if major >= MAINTAINED_MAJOR:
        return ""
    return (f"Docker Engine {version} is end of life: it gets no security fixes. The course works "
            f"on it, but learners meet Engine {MAINTAINED_MAJOR}+ with BuildKit elsewhere: update "
            "Docker Desktop; on Debian/Ubuntu, `make lab` installs a current engine where none is "
            "installed (Debian 12 gets Debian 13's 26.1) and keeps one that is: the README's "
            "\"The two commands\" says how to replace this one. `docklab engines start 28` runs "
            "Engine 28 beside it to try the course there.")


def buildx_version() -> str:
    """``docker buildx version`` of this machine's CLI ("" without one): what `docker build` needs
    to use BuildKit."""
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        return ""
    try:
        out = subprocess.run([docker_cli, "buildx", "version"], capture_output=True, text=True,
                             timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    words = out.stdout.split()
    return words[1] if out.returncode == 0 and len(words) > 1 else ""


def _check_compose_cli() -> tuple[bool, str, str]:
    fix = "Run `make lab`, or `docklab setup compose-plugin` to link the Compose v2 plugin."
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        from docklab.compose import compose_version  # the binary works without the docker CLI

        try:
            return True, f"Compose {compose_version()} (binary; no docker CLI on PATH)", ""
        except (DocklabError, OSError, subprocess.SubprocessError) as exc:
            return False, f"no docker CLI and no Compose binary: {exc}", fix
    try:
        out = subprocess.run([docker_cli, "compose", "version", "--short"], capture_output=True,
                             text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"`docker compose version` failed: {exc}", fix
    if out.returncode != 0:
        return False, f"`docker compose` is not available: {out.stderr.strip()[:200]}", fix
    return True, f"docker compose {out.stdout.strip()}", ""


def _check_images(client: docker.DockerClient) -> Check:
    from docklab.images import image_status

    # The engine images (docklab engines start) are built when asked for: not missing.
    status = [s for s in image_status(client) if not s["on_demand"]]
    missing = [s["name"] for s in status if not s["present"]]
    stale = [s["name"] for s in status if s["present"] and not s.get("current", True)]
    if missing or stale:
        parts = []
        if missing:
            parts.append("missing: " + ", ".join(missing))
        if stale:
            parts.append("recipe changed: " + ", ".join(stale))
        return Check("images", False, "; ".join(parts),
                     "Run `docklab images prepare` (or `make lab`); it builds them from Debian "
                     "packages when Docker Hub cannot be reached.")
    return Check("images", True, f"all {len(status)} course images present")


def _engine_is_local(client: docker.DockerClient) -> bool:
    return engine_address().startswith("unix://")


def free_bytes_on_engine(client: docker.DockerClient) -> int | None:
    """Free bytes where the engine keeps images, seen from this machine or from a container."""
    root = client.info().get("DockerRootDir", "/var/lib/docker")
    if _engine_is_local(client) and Path(root).exists():
        try:
            return shutil.disk_usage(root).free
        except OSError:
            pass
    # Remote engine or Docker Desktop: ask a container, whose root sits on the engine's disk.
    from docklab.lesson import Lesson

    try:
        out = Lesson("doctor").run("busybox", ["df", "-Pk", "/"], detach=False, remove=True)
    except docker.errors.DockerException:
        return None
    fields = out.decode().splitlines()[-1].split()
    return int(fields[3]) * 1024


def _check_disk(client: docker.DockerClient) -> Check:
    free = free_bytes_on_engine(client)
    if free is None:
        return Check("disk", False, "could not measure the engine's free disk",
                     "Check `docker system df` and the free space of the engine's disk.")
    gib = free / 1024**3
    if free < MIN_FREE_BYTES:
        return Check("disk", False, f"{gib:.1f} GiB free on the engine's disk",
                     f"Free at least {MIN_FREE_BYTES // 1024**3} GiB: `docklab clean`, "
                     "`docker system prune`, or delete large files.")
    return Check("disk", True, f"{gib:.1f} GiB free on the engine's disk")


def _ports_published_by_containers(client: docker.DockerClient) -> dict[int, str]:
    used: dict[int, str] = {}
    for container in client.containers.list(ignore_removed=True):
        for bindings in (container.attrs["NetworkSettings"].get("Ports") or {}).values():
            for binding in bindings or []:
                if binding.get("HostPort", "").isdigit():
                    used[int(binding["HostPort"])] = f"container {container.name}"
    return used


def _port_taken_locally(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def _check_ports(client: docker.DockerClient) -> Check:
    used = _ports_published_by_containers(client)
    local = _engine_is_local(client)
    taken = []
    for port in sorted(COURSE_PORTS):
        if port in used:
            taken.append(f"{port} (by {used[port]})")
        elif local and _port_taken_locally(port):
            taken.append(f"{port} (by a program on this machine)")
    if taken:
        return Check("ports", False, "in use: " + ", ".join(taken),
                     "Stop what uses them (`docker ps` shows containers; `docklab clean` removes "
                     "the course's own), or the lessons that publish them will fail.")
    return Check("ports", True, "free: " + ", ".join(str(p) for p in sorted(COURSE_PORTS)))
