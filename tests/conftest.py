"""Shared fixtures. Engine tests use the real engine and fail (never skip) when it is missing."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def client():
    from docklab.engine import connect

    return connect()


@pytest.fixture
def learner_env(monkeypatch):
    """A unique learner name, so a test's cleanup touches only what the test made."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DOCKLAB_LEARNER", name)
    return name


def run_docklab(*args: str, env: dict | None = None, timeout: int = 300,
                prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run the real `docklab` command as a learner would."""
    cmd = (prefix or []) + [sys.executable, "-m", "docklab.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
