"""The one place that connects to the Docker Engine.

``connect()`` honours DOCKER_HOST (unix://, tcp:// with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, ssh://)
exactly as the docker CLI does, negotiates the API version with the engine (never pinned), and turns
the SDK's low-level failures into errors that say what to do.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from docklab.errors import EnginePermissionDenied, EngineTooOld, EngineUnavailable

#: Oldest engine API the course is tested against (Docker 20.10, Debian bookworm's docker.io).
MIN_API_VERSION = "1.41"

_client: docker.DockerClient | None = None
_client_for: tuple = ()


_ENGINE_VARS = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")


def saved_engine_file() -> Path:
    """Where the connect panel of 00-index remembers the engine chosen for this course."""
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(os.environ.get("DOCKLAB_ENGINE_FILE") or Path(config) / "docklab" / "engine.json")


def _apply_saved_engine() -> None:
    # An engine chosen in 00-index's connect panel reaches every notebook's kernel through this
    # file; an explicit DOCKER_HOST in the environment always wins.
    path = saved_engine_file()
    if "DOCKER_HOST" in os.environ or not path.exists():
        return
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    for var in _ENGINE_VARS:
        if saved.get(var):
            os.environ[var] = saved[var]


def use_engine(docker_host: str, *, cert_path: str | None = None,
               save: bool = True) -> docker.DockerClient:
    """Connect to the engine at ``docker_host`` and use it from now on (``docker context use``).

    With ``cert_path``, TLS is verified with ca.pem/cert.pem/key.pem from that folder. On failure
    the previous settings stay and the error says why. ``save`` remembers it for other notebooks.
    """
    before = {var: os.environ.get(var) for var in _ENGINE_VARS}
    os.environ["DOCKER_HOST"] = docker_host.strip()
    for var in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        os.environ.pop(var, None)
    if cert_path:
        os.environ["DOCKER_TLS_VERIFY"] = "1"
        os.environ["DOCKER_CERT_PATH"] = str(Path(cert_path).expanduser())
    try:
        client = connect(fresh=True)
    except Exception:
        for var, value in before.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        raise
    if save:
        path = saved_engine_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({var: os.environ.get(var) for var in _ENGINE_VARS}))
    return client


def forget_saved_engine() -> None:
    saved_engine_file().unlink(missing_ok=True)


def engine_address() -> str:
    """Where the engine is looked for: DOCKER_HOST, or the default local socket."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _api_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _reason(exc: BaseException) -> str:
    """The root cause of a connection failure, in a few words."""
    text = ""
    while exc is not None:
        text += f" {exc}"
        exc = exc.__cause__ or exc.__context__
    for needle, reason in (("No such file", "the socket does not exist"),
                           ("Connection refused", "connection refused"),
                           ("timed out", "timed out"),
                           ("Name or service not known", "unknown host name"),
                           ("Temporary failure in name resolution", "unknown host name"),
                           ("certificate", "TLS certificate problem")):
        if needle in text:
            return reason
    return text.strip().splitlines()[0][:160] if text.strip() else "no answer"


def _unavailable(address: str, cause: Exception) -> EngineUnavailable:
    return EngineUnavailable(
        f"No Docker Engine answers at {address}: {_reason(cause)}.",
        "Start an engine (Docker Desktop, or `sudo dockerd` / `sudo systemctl start docker` on "
        "Linux; `make lab` starts one for you on Debian), or set DOCKER_HOST to one that runs "
        "elsewhere, e.g. DOCKER_HOST=ssh://me@host or DOCKER_HOST=tcp://host:2376 with "
        "DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH=<folder with ca.pem, cert.pem, key.pem>.",
    )


def _permission_denied(address: str) -> EnginePermissionDenied:
    return EnginePermissionDenied(
        f"Permission denied on the engine's socket {address}.",
        "Add yourself to the docker group (`sudo usermod -aG docker $USER`, then log out and in "
        "again), or point DOCKER_HOST at an engine you may use (Docker Desktop, rootless Docker).",
    )


def _is_permission_error(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, PermissionError):
            return True
        if "Permission denied" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def connect(*, timeout: int = 60, fresh: bool = False) -> docker.DockerClient:
    """Return a client for the engine, checked to answer.

    Equivalent CLI: ``docker version``. The client is cached for the process while DOCKER_HOST
    and its TLS settings stay the same; ``fresh=True`` builds a new one regardless.
    """
    global _client, _client_for
    _apply_saved_engine()
    settings = tuple(os.environ.get(var) for var in _ENGINE_VARS)
    if _client is not None and not fresh and settings == _client_for:
        return _client
    address = engine_address()
    try:
        # version="auto" asks the engine for its API version: never pin above what it offers.
        client = docker.from_env(version="auto", timeout=timeout)
        api_version = client.api.api_version
    except docker.errors.DockerException as exc:
        if _is_permission_error(exc):
            raise _permission_denied(address) from exc
        raise _unavailable(address, exc) from exc
    except (requests.exceptions.RequestException, OSError) as exc:
        if _is_permission_error(exc):
            raise _permission_denied(address) from exc
        raise _unavailable(address, exc) from exc
    if _api_tuple(api_version) < _api_tuple(MIN_API_VERSION):
        client.close()
        raise EngineTooOld(
            f"The engine at {address} speaks API {api_version}; the course needs "
            f"{MIN_API_VERSION} or newer (Docker Engine 20.10+).",
            "Upgrade Docker (Docker Desktop: check for updates; Debian/Ubuntu: install a newer "
            "docker.io or docker-ce).",
        )
    _client, _client_for = client, settings
    return client


def engine_summary(client: docker.DockerClient) -> dict:
    """Versions and facts about the engine, as ``docker version`` / ``docker info`` show them."""
    version = client.version()
    info = client.info()
    return {
        "address": engine_address(),
        "version": version.get("Version"),
        "api_version": client.api.api_version,
        "os": info.get("OperatingSystem"),
        "arch": version.get("Arch"),
        "storage_driver": info.get("Driver"),
        "cgroup_version": info.get("CgroupVersion"),
        "root_dir": info.get("DockerRootDir"),
        "swarm": info.get("Swarm", {}).get("LocalNodeState"),
    }


def default_builder(client: docker.DockerClient) -> str:
    """The builder the engine uses for ``docker build``: "buildkit" or "legacy".

    Read from the ``Builder-Version`` header of ``GET /_ping`` ("2" = BuildKit, the default since
    Engine 23 on Linux; absent or "1" = the legacy builder). The SDK's ``images.build`` always uses
    the legacy builder, whatever this says.
    """
    try:
        response = client.api.get(client.api.base_url + "/_ping", timeout=10)
    except (requests.exceptions.RequestException, OSError):
        return "legacy"
    return "buildkit" if response.headers.get("Builder-Version") == "2" else "legacy"


def exec_output(container, command: list[str], *, user: str = "", tries: int = 3
                ) -> tuple[int | None, str]:
    """``docker exec CONTAINER COMMAND`` → (exit code, stdout and stderr together), for a command
    that always prints something; (None, why) when it could not be run, or said nothing each time.

    Tried up to ``tries`` times while it fails or says nothing: on a loaded host Engine 20.10
    returned an exec's exit code with no output at all (it attaches the output in a race; seen in
    the security and networking round trips), and once failed to read /proc in a service that
    had just answered. A failed exec is not the learner's doing."""
    code, text = None, "docker exec gave no output"
    for attempt in range(tries):
        if attempt:
            time.sleep(0.5)
        try:
            code, output = container.exec_run(command, stdout=True, stderr=True, demux=False,
                                              user=user)
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            code, text = None, str(getattr(exc, "explanation", None) or exc)
            continue
        text = (output or b"")[:64 * 1024].decode("utf-8", "replace")
        if code == 0 and text.strip():
            break
    if code == 0 and not text.strip():
        return None, "docker exec gave no output"
    return code, text
