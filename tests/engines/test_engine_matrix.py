"""The course on the engines learners have: every notebook on Engine 26.1 and 28.5 (overlay2) and
on 28.5 with the containerd image store (Docker Desktop's default on new installs).

Each engine is a course engine started beside the host's (docklab.engines, Docker-in-Docker built
from Debian's packages) with the course images loaded into it; each notebook runs on it as the
notebooks tier runs it on the host engine (tests/notebooks/course.py): as shipped (every self-check
"Not yet"), and solved through the SDK or through ``%docker`` cells (every self-check "Well
done"), nothing labelled with the lesson left on that engine (:data:`MATRIX` says which runs);
and each lab's notebook, solved and as released (tests/labs/test_lab_notebooks.py). The host engine (20.10 on Debian 12)
runs the whole suite; this tier adds the notebooks on the others.

What swarms the engine it runs on (11-orchestration: tests/conftest.py, SWARMS_THE_HOST) runs here
only, never on the shared host engine; its as-shipped run on 26 is the browser's (a JupyterLab and
Chromium of its own, as tests/browser runs the other notebooks with views on the host).

``make test-engines`` runs it (``.ci/run`` runs it after ``make test``; ``make test`` leaves it out
to stay quick). One engine's runs go to one test worker, one after another (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path

import pytest

from tests.browser.jupyterlab import (
    chromium,
    run_shipped_in_browser,
    screenshot_folder,
    serve_jupyterlab,
)
from tests.conftest import SWARMS_THE_HOST
from tests.engines.conftest import MATRIX, OWNER
from tests.labs.test_lab_notebooks import LABS, RUNS
from tests.notebooks.course import (
    CLI_SOLUTIONS,
    IN_BROWSER,
    NOT_YET,
    NOTEBOOKS,
    SOLUTIONS,
    WELL_DONE,
    engine_leftovers,
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

#: Run as shipped in JupyterLab, on the first engine that runs the notebooks as shipped, instead
#: of by nbclient: the notebooks with views that swarm their engine (the host's browser tier
#: leaves them out).
IN_BROWSER_HERE = {
    next(name for name, (_, _, variants, _) in MATRIX.items() if "shipped" in variants):
    [path for path in IN_BROWSER if path.stem in SWARMS_THE_HOST],
}


def _runs() -> list:
    runs = []
    for name, (_, _, variants, _) in MATRIX.items():
        for path in NOTEBOOKS:
            for variant in variants:
                if variant == "shipped" and path in IN_BROWSER_HERE.get(name, ()):
                    continue  # test_notebook_in_browser_on_engine runs it
                if VARIANTS[variant][0](path.stem) is not None:
                    runs.append(pytest.param(name, path, variant,
                                             id=f"{name}:{path.stem}:{variant}"))
    return runs


@pytest.mark.parametrize(("name", "path", "variant"), _runs())
def test_notebook_on_engine(started_engines, name: str, path: Path, variant: str,
                            tmp_path: Path):
    engine = started_engines(name)
    solutions, expected = VARIANTS[variant]
    attempt = f"{variant} on engine {name}"
    # A folder of its own: the engines' workers run the same notebook at once, and a lesson
    # writes files beside itself (06-security's build-secret/), which another run's cleanup
    # removed mid-build.
    folder = tmp_path / "notebooks"
    shutil.copytree(path.parent, folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    nb = execute(path, solutions(path.stem), attempt, docker_host=engine.docker_host,
                 learner=f"{OWNER}-{name}", cwd=folder)
    expect_verdicts(nb, path, attempt, expected)


@pytest.mark.parametrize(("name", "path"), [
    pytest.param(name, path, id=f"{name}:{path.stem}:browser")
    for name, paths in IN_BROWSER_HERE.items() for path in paths])
def test_notebook_in_browser_on_engine(started_engines, name: str, path: Path, tmp_path_factory):
    """As tests/browser runs a notebook as shipped on the host: its views render, every cell runs,
    every self-check says "Not yet", nothing is left; with the kernels on this engine."""
    engine = started_engines(name)
    env = {"DOCKER_HOST": engine.docker_host, "DOCKLAB_LEARNER": f"{OWNER}-{name}"}
    with (serve_jupyterlab(tmp_path_factory.mktemp("jupyterlab"), [path], env) as jupyterlab,
          chromium() as browser):
        started = time.time()
        run_shipped_in_browser(browser, jupyterlab, path, screenshot_folder(tmp_path_factory))
    with contextlib.closing(engine.client()) as client:
        left = engine_leftovers(client, path.stem, since=started)
    assert not left, f"{path.name} left these behind on engine {name}: {left}"


@pytest.mark.parametrize(("name", "lab", "edition"), [
    pytest.param(name, lab, edition, id=f"{name}:lab-{lab}:{edition}")
    for name, (*_, editions) in MATRIX.items() for lab in LABS for edition in editions])
def test_lab_on_engine(started_engines, name: str, lab: str, edition: str, tmp_path: Path):
    """Each lab's notebook, solved and as released, as a learner on that engine runs it
    (tests/labs/test_lab_notebooks.py says what each run must show)."""
    engine = started_engines(name)
    RUNS[edition](lab, tmp_path, docker_host=engine.docker_host, learner=f"{OWNER}-{name}")
