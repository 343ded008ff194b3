"""Bringing a classroom up and down on this host: ``docklab classroom up/status/add/down``.

``up`` makes the learner image and the course images present, saves the course images once for
the learners' engines, creates the classroom's network, and starts JupyterHub (with
configurable-http-proxy) in the background from ``classroom/jupyterhub_config.py``. ``down`` stops
the hub, which stops every learner's server and engine, then removes whatever still carries the
classroom's label (containers, volumes, the network), and with ``purge`` the hub's state.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
import requests

from docklab import labels as L
from docklab.classroom.engine import ENGINE_IMAGES
from docklab.classroom.image import LEARNER_IMAGE, ensure_learner_image, project_root
from docklab.classroom.remote import Hub
from docklab.classroom.settings import CLASSROOM, Settings
from docklab.errors import DocklabError
from docklab.grading.sealed import saved_images
from docklab.images import prepare

Say = Callable[[str], None]

#: Where `make classroom` (scripts/ensure-proxy.sh) installs configurable-http-proxy from npm.
PROXY_DIR = ".docklab/proxy"


def proxy_command() -> str:
    """configurable-http-proxy: DOCKLAB_CLASSROOM_PROXY, the project's npm copy, or on PATH."""
    candidates = [os.environ.get("DOCKLAB_CLASSROOM_PROXY", ""),
                  str(project_root() / PROXY_DIR / "node_modules" / ".bin"
                      / "configurable-http-proxy"),
                  shutil.which("configurable-http-proxy") or ""]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    raise DocklabError("configurable-http-proxy (JupyterHub's proxy) is not installed.",
                       "Run `scripts/ensure-proxy.sh` (npm) or `apt-get install "
                       "node-configurable-http-proxy`.")


def _hub_pid(settings: Settings) -> int | None:
    path = settings.state_path / "hub.pid"
    try:
        pid = int(path.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def hub_client(settings: Settings) -> Hub:
    return Hub(settings.url, settings.secret("api-token"))


def _network(client: docker.DockerClient, settings: Settings) -> str:
    """The classroom's network (made once); returns its gateway, where the hub's API listens."""
    try:
        network = client.networks.get(settings.network)
    except docker.errors.NotFound:
        network = client.networks.create(settings.network, driver="bridge",
                                         labels=settings.labels(kind="network"))
    network.reload()
    return network.attrs["IPAM"]["Config"][0]["Gateway"]


def up(settings: Settings | None = None, *, say: Say = print) -> Hub:
    """Bring the classroom up (kept as it is where it already runs); returns the hub's client."""
    settings = settings or Settings.from_env()
    client = docker.from_env()
    try:
        if _hub_pid(settings):
            say(f"{settings.name}: the hub already runs at {settings.url}")
            return hub_client(settings)
        ensure_learner_image(client, say=say)
        prepare(client, [*settings.images, ENGINE_IMAGES[settings.engine_kind]], progress=say)
        tar, _ = saved_images(client, settings.images)
        gateway = _network(client, settings)
        state = settings.state_dir()
        env = {**os.environ, "DOCKLAB_CLASSROOM_NAME": settings.name,
               "DOCKLAB_PREFIX": "",  # the name above has the prefix already
               "DOCKLAB_CLASSROOM_GATEWAY": gateway, "DOCKLAB_CLASSROOM_IMAGES_TAR": str(tar),
               "DOCKLAB_CLASSROOM_PROXY": proxy_command()}
        for key, value in (("IP", settings.ip), ("PORT", settings.port),
                           ("IMAGES", ",".join(settings.images)), ("MEMORY", settings.memory),
                           ("CPUS", settings.cpus), ("PIDS", settings.pids),
                           ("ENGINE", settings.engine_kind),
                           ("ENGINE_BIND", settings.engine_bind),
                           ("AUTH", settings.authenticator)):
            env[f"DOCKLAB_CLASSROOM_{key}"] = str(value)
        config = project_root() / "classroom" / "jupyterhub_config.py"
        with open(state / "hub.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(config)], cwd=state, env=env,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        (state / "hub.pid").write_text(f"{process.pid}\n")
        hub = hub_client(settings)
        _wait_for_hub(hub, process, state / "hub.log")
        say(f"{settings.name}: the hub answers at {settings.url} (log: {state / 'hub.log'})")
        return hub
    finally:
        client.close()


def _wait_for_hub(hub: Hub, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(requests.RequestException):
            if hub.api("GET", "/", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    tail = log.read_text(errors="replace").splitlines()[-20:]
    raise DocklabError("The classroom's hub did not start.", "\n".join(tail))


def down(settings: Settings | None = None, *, purge: bool = False, say: Say = print) -> list[str]:
    """Stop the hub and remove everything labelled with this classroom; returns what went."""
    settings = settings or Settings.from_env()
    pid = _hub_pid(settings)
    if pid:
        os.killpg(pid, signal.SIGTERM)  # the hub stops its servers and its proxy on SIGTERM
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
        say(f"{settings.name}: the hub stopped")
    removed = remove_resources(settings)
    for name in removed:
        say(f"removed {name}")
    if purge:
        shutil.rmtree(settings.state_path, ignore_errors=True)
        say(f"{settings.name}: its state (users, secrets, log) removed")
    else:
        (settings.state_path / "hub.pid").unlink(missing_ok=True)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A child that exited but was not reaped (the hub is our child when `up` ran in-process).
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False
    return True


def classroom_filter(settings: Settings) -> dict:
    return {"label": [f"{L.MANAGED}=true", f"{CLASSROOM}={settings.name}"]}


def remove_resources(settings: Settings) -> list[str]:
    """``docker rm -f -v``, ``docker volume rm``, ``docker network rm`` of what carries the
    classroom's label (and only that)."""
    client = docker.from_env()
    removed = []
    try:
        selected = classroom_filter(settings)
        for container in client.containers.list(all=True, filters=selected, ignore_removed=True):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
                removed.append(container.name)
        for volume in client.volumes.list(filters=selected):
            with contextlib.suppress(docker.errors.NotFound):
                volume.remove(force=True)
                removed.append(volume.name)
        for network in client.networks.list(filters=selected):
            with contextlib.suppress(docker.errors.NotFound):
                network.remove()
                removed.append(network.name)
    finally:
        client.close()
    return removed


def status(settings: Settings | None = None) -> dict:
    """The hub, its learners, and each learner's containers with their memory."""
    settings = settings or Settings.from_env()
    client = docker.from_env()
    try:
        report = {"name": settings.name, "url": settings.url,
                  "hub": "running" if _hub_pid(settings) else "stopped", "learners": {}}
        if report["hub"] == "running":
            for user in hub_client(settings).users():
                server = (user.get("servers") or {}).get("")
                report["learners"][user["name"]] = {
                    "admin": user.get("admin", False),
                    "server": ("ready" if server.get("ready") else "starting") if server
                    else "stopped", "containers": {}}
        for container in client.containers.list(all=True, filters=classroom_filter(settings),
                                                ignore_removed=True):
            learner = container.labels.get(L.LEARNER, "?")
            stats = (container.stats(stream=False, one_shot=True)
                     if container.status == "running" else {})
            memory = (stats.get("memory_stats") or {}).get("usage", 0)
            entry = report["learners"].setdefault(learner, {"server": "?", "containers": {}})
            entry["containers"][container.name] = {
                "status": container.status, "memory_mib": round(memory / 2**20),
                "role": "engine" if container.name.endswith("-engine") else "jupyterlab"}
        report["image"] = LEARNER_IMAGE
        return report
    finally:
        client.close()
