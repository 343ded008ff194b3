"""The engines of the matrix, started once per test process (see test_engine_matrix.py)."""

from __future__ import annotations

import contextlib
import os

import pytest

from docklab import engines
from docklab.engine import connect

#: The engines: name → (version, containerd image store, the notebook variants run on it, the lab
#: editions run on it). Each variant runs on the current engines once, where it tells most:
#:
#: * 26.1 is the engine `make lab` installs on a Debian host with none: the notebooks as shipped
#:   and solved, and each lab solved;
#: * 28.5 with the containerd image store (Docker Desktop's default) differs most from the host's
#:   20.10 (image ids, storage data, push replies): the notebooks solved, each lab solved and as
#:   released;
#: * 28.5 on overlay2: the notebooks solved through ``%docker`` cells (the docker CLI, whose output
#:   BuildKit changed most).
#:
#: ``make test-engines`` gives each engine a worker of its own (their runs wait on the engines
#: more than they use the two cores): ~12, ~13 and ~7 min of runs measured under load.
MATRIX = {
    "26": ("26", False, ("shipped", "solved"), ("solutions",)),
    "28-containerd": ("28", True, ("solved",), ("solutions", "labs")),
    "28": ("28", False, ("docker-cells",), ()),
}

#: Who starts the engines: their own names, so a developer's ``docklab engines start 28`` is
#: neither reused nor stopped by the tests.
OWNER = "matrix"


@contextlib.contextmanager
def _as_owner():
    saved = {key: os.environ.get(key) for key in ("DOCKLAB_PREFIX", "DOCKLAB_LEARNER")}
    os.environ.update(DOCKLAB_PREFIX=OWNER, DOCKLAB_LEARNER=OWNER)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def started_engines():
    """Starts each engine of the matrix the first time a test of this process asks for it, and
    removes them all at the end. (Not a parametrised fixture: pytest would restart it for each
    test, since every test's parameters differ.)"""
    started: dict[str, engines.Engine] = {}

    def engine(name: str) -> engines.Engine:
        if name not in started:
            version, containerd_store, *_ = MATRIX[name]
            with _as_owner():
                started[name] = engines.start(
                    connect(), version, containerd_store=containerd_store,
                    say=lambda line: print(f"{name}: {line}", flush=True))
        return started[name]

    yield engine
    with _as_owner():
        for name in started:
            version, containerd_store, *_ = MATRIX[name]
            engines.stop(connect(fresh=True), version, containerd_store=containerd_store)
