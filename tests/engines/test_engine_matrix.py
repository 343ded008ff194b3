"""The course on the engines learners have: every notebook on Engine 26.1 and 28.5 (overlay2) and
on 28.5 with the containerd image store (Docker Desktop's default on new installs).

Each engine is a course engine started beside the host's (docklab.engines, Docker-in-Docker built
from Debian's packages) with the course images loaded into it; each notebook runs on it as the
notebooks tier runs it on the host engine (tests/notebooks/course.py): as shipped (every self-check
"Not yet"), and solved through the SDK or through ``%docker`` cells (every self-check "Well
done"), nothing labelled with the lesson left on that engine (:data:`MATRIX` says which runs). The host engine (20.10 on Debian 12)
runs the whole suite; this tier adds the notebooks on the others.

``make test-engines`` runs it (``.ci/run`` runs it after ``make test``; ``make test`` leaves it out
to stay quick). One engine's runs go to one test worker, one after another (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from docklab import engines
from docklab.engine import connect
from tests.notebooks.course import (
    CLI_SOLUTIONS,
    NOT_YET,
    NOTEBOOKS,
    SOLUTIONS,
    WELL_DONE,
    execute,
    expect_verdicts,
)

pytestmark = pytest.mark.engine

#: The runs of a notebook: name → (its answers, or None where it has none; the verdict every
#: self-check must give).
VARIANTS = {
    "shipped": (lambda stem: {}, NOT_YET),
    "solved": (lambda stem: SOLUTIONS.get(stem), WELL_DONE),
    "docker-cells": (lambda stem: CLI_SOLUTIONS.get(stem), WELL_DONE),
}

#: The engines: name → (version, containerd image store, the variants run on it). The containerd
#: store differs most from the host's engine (image ids, storage data), so it gets every variant;
#: the others get one solved run each. The order balances the two workers: xdist hands each worker
#: one engine, then the first worker the third (~45 runs against ~33).
MATRIX = {
    "26": ("26", False, ("shipped", "solved")),
    "28-containerd": ("28", True, ("shipped", "solved", "docker-cells")),
    "28": ("28", False, ("shipped", "docker-cells")),
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


def _runs() -> list:
    runs = []
    for name, (_, _, variants) in MATRIX.items():
        for path in NOTEBOOKS:
            for variant in variants:
                if VARIANTS[variant][0](path.stem) is not None:
                    runs.append(pytest.param(name, path, variant,
                                             id=f"{name}:{path.stem}:{variant}"))
    return runs


@pytest.mark.parametrize(("name", "path", "variant"), _runs())
def test_notebook_on_engine(started_engines, name: str, path: Path, variant: str):
    engine = started_engines(name)
    solutions, expected = VARIANTS[variant]
    attempt = f"{variant} on engine {name}"
    nb = execute(path, solutions(path.stem), attempt, docker_host=engine.docker_host,
                 learner=f"{OWNER}-{name}")
    expect_verdicts(nb, path, attempt, expected)
