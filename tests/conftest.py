"""Shared fixtures. Engine tests use the real engine and fail (never skip) when it is missing."""

import json
import os
import re
import subprocess
import sys
import uuid
from collections import OrderedDict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The folders under tests/, each a tier a developer can run alone: `pytest -m labs`.
TIERS = ("unit", "integration", "notebooks", "labs", "grading", "browser", "binder", "engines",
         "classroom")


#: Lessons that publish the same fixed host ports: 8080 (04 and 05), 8082 (04 and 07). (Doctor's
#: test that every course port is free runs alone, in SERIAL: 09 and 10 publish course ports too,
#: each its own.) 05 had been left out, and met 04 on 8080 once the longest groups went first.
HOST_PORTS = {"04-networking", "05-compose", "07-best-practices"}
LABS = {p.name for p in (ROOT / "grader" / "source").iterdir() if p.is_dir()}
_NODE = re.compile(r"^tests/(?P<tier>\w+)/(?P<module>\w+)\.py::[^\[]*(?:\[(?P<param>.*)\])?$")


#: Tests that compare the whole engine before and after (every container, image, volume and
#: network) and so must not share it with other tests: `make test` runs them after the rest, in
#: one process. By tier, or by module. (The labs' tests look only at what their own learner or
#: grading run made, and run beside the rest.) Doctor's tests want every course port free.
SERIAL = {"grading", "test_lesson", "test_doctor"}

#: What makes the engine it runs on a swarm and leaves it again: 11-orchestration and the
#: orchestration lab's notebook. Leaving a swarm drops the engine's DNS records of every container
#: then on a user-defined network (measured on Engine 20.10 and 26.1: a running container's
#: `ping web` says "bad address" afterwards), so on the shared host engine such a run breaks
#: whichever test resolves a name at that moment. They run in the engine matrix only, one worker
#: per engine (tests/engines): 11-orchestration as shipped in the browser on 26, both solved.
SWARMS_THE_HOST = {"11-orchestration", "orchestration"}

#: Modules of other tiers that run a course notebook on the host engine, in that notebook's group:
#: the Binder test runs 02-running, whose containers have fixed names.
NOTEBOOK_OF_MODULE = {"test_binder": "02-running"}


def pytest_collection_modifyitems(items):
    """Mark every test with its tier (its folder), so `-m notebooks` or `-m "not browser"` work,
    and the tests in :data:`SERIAL` as ``serial``."""
    tests = ROOT / "tests"
    for item in items:
        parts = Path(item.path).relative_to(tests).parts
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
            if is_serial(item.nodeid):
                item.add_marker(pytest.mark.serial)


def is_serial(nodeid: str) -> bool:
    """Whether a test runs in the serial phase: by tier or module (:data:`SERIAL`)."""
    match = _NODE.match(nodeid)
    return bool(match) and (match["tier"] in SERIAL or match["module"] in SERIAL)


def worker_group(nodeid: str) -> str | None:
    """The group a test runs in. `make test` runs the tests not marked ``serial`` on three workers
    (pytest-xdist with ``--dist loadgroup``, scheduled by :func:`pytest_xdist_make_scheduler`);
    a group's tests run on one worker, one after another:

    * both runs of a notebook (the browser's as shipped, nbclient's solved): a lesson's cleanup
      removes whatever carries its lesson label, and its ports are fixed;
    * the lessons with fixed host ports, and doctor's test that those ports are free;
    * a module that runs a notebook too (:data:`NOTEBOOK_OF_MODULE`), with that notebook's runs;
    * each lab's tests: its round trip runs once, and its tests read it;
    * each engine of the matrix (tests/engines): it is started once, and its notebook runs share
      it as they share the host engine;
    * each module of the other engine tiers: a module's fixtures are made once.

    Unit tests (None) go wherever a worker is free.
    """
    match = _NODE.match(nodeid)
    if not match or match["tier"] == "unit":
        return None
    tier, module, param = match["tier"], match["module"], match["param"] or ""
    if tier == "engines":  # ids "ENGINE:NOTEBOOK:VARIANT": one engine per worker
        return f"engine-{param.split(':')[0]}"
    if tier in ("notebooks", "browser") or module in NOTEBOOK_OF_MODULE:
        stem = NOTEBOOK_OF_MODULE.get(module) or (
            param if re.fullmatch(r"\d\d-[a-z-]+", param) else None)
        if stem is None:
            return None
        return "host-ports" if stem in HOST_PORTS else f"notebook-{stem}"
    if tier == "labs":
        lab = param if param in LABS else next((lab for lab in LABS if lab in module), None)
        return f"lab-{lab}" if lab else f"module-{module}"
    return "host-ports" if module in HOST_PORTS else f"module-{module}"


#: Seconds each group took in the last measured run (bench/bench_suite.py writes it).
GROUP_SECONDS = ROOT / "tests" / "group_seconds.json"
#: A test's seconds by tier, for a group the file does not know yet (means of a warm run).
TIER_SECONDS = {"browser": 50, "notebooks": 28, "binder": 26, "engines": 30, "classroom": 10,
                "grading": 5, "labs": 3.5, "integration": 3, "unit": 0.05}


def _measured() -> dict[str, float]:
    return json.loads(GROUP_SECONDS.read_text()) if GROUP_SECONDS.is_file() else {}


def expected_seconds(group: str, nodeids, measured: dict[str, float]) -> float:
    """How long a group's tests take: as measured, else estimated from their tier."""
    if group in measured:
        return measured[group]
    match = _NODE.match(next(iter(nodeids)))
    return TIER_SECONDS.get(match["tier"] if match else "", 1) * len(nodeids)


class LongestFirst(OrderedDict):
    """xdist's queue of groups (group → its tests), handing out the longest one left first.

    The workers take the next group as they finish one, so a long group taken last keeps one
    worker busy while the others wait (measured: about a minute of `make test`). xdist's own order
    is by number of tests, which put the notebooks' two-test groups (2-3 min each) last. Only the
    order of the groups changes: what each worker runs is still told by index into its own
    collection, which stays as it was collected."""

    def __init__(self, measured: dict[str, float] | None = None):
        super().__init__()
        self.measured = _measured() if measured is None else measured

    def popitem(self, last: bool = True):
        if last:
            return super().popitem(last=True)
        group = max(self, key=lambda g: expected_seconds(g, self[g], self.measured))
        return group, self.pop(group)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """With ``--dist loadgroup``: xdist's scope scheduling, by :func:`worker_group`, the longest
    groups first (:class:`LongestFirst`). (xdist's own loadgroup reads ``xdist_group`` marks by
    rewriting node ids, which pytest 9 no longer allows.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def __init__(self, config, log=None):
            super().__init__(config, log)
            self.workqueue = LongestFirst()

        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid) or nodeid

    return ByGroup(config, log)


def pytest_sessionfinish(session):
    """Remove the limited build parents this process kept (docklab.checks.build_bounds): an xdist
    worker ends without running atexit."""
    build_bounds = sys.modules.get("docklab.checks.build_bounds")
    if build_bounds is not None:
        build_bounds.remove_all()


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
