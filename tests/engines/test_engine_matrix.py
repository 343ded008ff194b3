"""The course on the engines learners have: every notebook on Engine 26.1 and 28.5 (overlay2) and
on 28.5 with the containerd image store (Docker Desktop's default on new installs).

Each engine is a course engine started beside the host's (docklab.engines, Docker-in-Docker built
from Debian's packages) with the course images loaded into it; each notebook runs on it as the
notebooks tier runs it on the host engine (tests/notebooks/course.py): as shipped (every self-check
"Not yet"), and solved through the SDK or through ``%docker`` cells (every self-check "Well
done"), nothing labelled with the lesson left on that engine (:data:`MATRIX` says which runs);
and each lab's notebook, solved and as released (tests/labs/test_lab_notebooks.py). The host engine (20.10 on Debian 12)
runs the whole suite; this tier adds the notebooks on the others.

``make test-engines`` runs it (``.ci/run`` runs it after ``make test``; ``make test`` leaves it out
to stay quick). One engine's runs go to one test worker, one after another (tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engines.conftest import MATRIX, OWNER
from tests.labs.test_lab_notebooks import LABS, RUNS
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

def _runs() -> list:
    runs = []
    for name, (_, _, variants, _) in MATRIX.items():
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


@pytest.mark.parametrize(("name", "lab", "edition"), [
    pytest.param(name, lab, edition, id=f"{name}:lab-{lab}:{edition}")
    for name, (*_, editions) in MATRIX.items() for lab in LABS for edition in editions])
def test_lab_on_engine(started_engines, name: str, lab: str, edition: str, tmp_path: Path):
    """Each lab's notebook, solved and as released, as a learner on that engine runs it
    (tests/labs/test_lab_notebooks.py says what each run must show)."""
    engine = started_engines(name)
    RUNS[edition](lab, tmp_path, docker_host=engine.docker_host, learner=f"{OWNER}-{name}")
