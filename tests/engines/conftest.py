"""The engines of the matrix, started once per test process (see test_engine_matrix.py)."""

from __future__ import annotations

import contextlib
import os

import pytest

from docklab import engines
from docklab.engine import connect

#: The engines: name → (version, containerd image store, the notebook variants run on it). The
#: containerd store differs most from the host's engine (image ids, storage data), so it gets every
#: variant; each other engine gets the one variant that checks it where it differs from the host:
#: 26 the SDK answers (its API), 28 the ``%docker`` answers (its CLI-facing output: BuildKit,
#: compose). "Shipped" runs once, on the containerd store: a notebook as shipped makes the same calls
#: as solved up to each exercise. Runs each, with the labs: 28-containerd 51, 26 20, 28 19; xdist
#: gives each worker the largest group left, so one worker has 28-containerd, the other 26 then 28.
MATRIX = {
    "28-containerd": ("28", True, ("shipped", "solved", "docker-cells")),
    "26": ("26", False, ("solved",)),
    "28": ("28", False, ("docker-cells",)),
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
            version, containerd_store, _ = MATRIX[name]
            with _as_owner():
                started[name] = engines.start(
                    connect(), version, containerd_store=containerd_store,
                    say=lambda line: print(f"{name}: {line}", flush=True))
        return started[name]

    yield engine
    with _as_owner():
        for name in started:
            version, containerd_store, _ = MATRIX[name]
            engines.stop(connect(fresh=True), version, containerd_store=containerd_store)
