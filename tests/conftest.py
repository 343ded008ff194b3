"""Shared fixtures. Engine tests use the real engine and fail (never skip) when it is missing."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The folders under tests/, each a tier a developer can run alone: `pytest -m labs`.
TIERS = ("unit", "integration", "notebooks", "labs", "grading", "browser", "binder")


def pytest_collection_modifyitems(items):
    """Mark every test with its tier (its folder), so `-m notebooks` or `-m "not browser"` work."""
    tests = ROOT / "tests"
    for item in items:
        parts = Path(item.path).relative_to(tests).parts
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


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


class SocketForwarder:
    """Forwards a loopback TCP port to the engine's unix socket: a real engine on tcp://."""

    def __init__(self, unix_path: str = "/var/run/docker.sock"):
        import socket
        import threading

        self.unix_path = unix_path
        self.connections = 0
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def docker_host(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.unix_path)
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst) -> None:
        import socket

        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def tcp_engine():
    forwarder = SocketForwarder()
    yield forwarder
    forwarder.close()
