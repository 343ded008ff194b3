"""The visualizers render in a real JupyterLab, in headless Chromium, with no error output.

A JupyterLab server (this venv's) serves a temporary copy of notebooks/. Playwright drives Debian's
Chromium (never a downloaded browser): it opens each notebook that uses a visualizer, runs all
cells from the Run menu, waits until every cell has run, and checks that each visualizer's view
rendered (its HTML inside a widget output) and that no cell printed a traceback. Every visualizer
must appear in some lesson (test_every_visualizer_is_used_in_a_lesson).

This is also the suite's one "as shipped" run of these notebooks (tests/notebooks/course.py):
every code cell must run, every self-check must say "Not yet", and the cleanup cell must leave
nothing behind (a last cell, added to the copy, asks the kernel; then the engine is asked too).

11-orchestration runs in the browser on Engine 26 instead (tests/engines/test_engine_matrix.py):
it swarms the engine it runs on, and leaving a swarm breaks name lookups of the other tests on the
shared host engine (tests/conftest.py, SWARMS_THE_HOST). The driver is tests/browser/jupyterlab.py.

Each view is saved as a screenshot: into DOCKLAB_SCREENSHOTS if set (e.g. docs/screenshots, to
refresh the README's pictures), shot every few seconds while the notebook runs, so that the picture
is of the view at work, not emptied by the cleanup cell; else once, at the end, into pytest's
temporary folder (shooting while the cells run costs the two cores time the run needs).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from docklab.engine import connect
from tests.browser.jupyterlab import (
    chromium,
    run_shipped_in_browser,
    screenshot_folder,
    serve_jupyterlab,
)
from tests.conftest import SWARMS_THE_HOST
from tests.notebooks.course import IN_BROWSER, engine_leftovers, visualizers_in

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
#: Here, on the host engine: all but what swarms it (the engine matrix runs that in the browser).
NOTEBOOKS = [path for path in IN_BROWSER if path.stem not in SWARMS_THE_HOST]


def test_every_visualizer_is_used_in_a_lesson():
    # Also guards the parametrised tests (here and in the matrix) against passing on nothing.
    used = {module for path in IN_BROWSER for module in visualizers_in(path).values()}
    modules = {p.stem for p in (ROOT / "src" / "docklab" / "widgets").glob("[a-z]*.py")}
    assert modules - {"connect", "__init__"} <= used, f"not in any lesson: {modules - used}"


@pytest.fixture(scope="module")
def learner() -> str:
    return f"browser-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory, learner):
    """A JupyterLab server on a free port, serving a copy of notebooks/."""
    with serve_jupyterlab(tmp_path_factory.mktemp("jupyterlab"), NOTEBOOKS,
                          {"DOCKLAB_LEARNER": learner}) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    return screenshot_folder(tmp_path_factory)


def test_the_course_opens_with_no_news_or_update_prompt(jupyterlab):
    """The settings `docklab setup lab-settings` ships in the venv, as JupyterLab serves them."""
    import json
    import urllib.request

    url = (f"{jupyterlab['url']}/lab/api/settings/@jupyterlab/apputils-extension:notification"
           f"?token={jupyterlab['token']}")
    with urllib.request.urlopen(url, timeout=30) as response:
        # overrides.json changes the defaults (JupyterLab's own: "none", ask the learner).
        defaults = json.load(response)["schema"]["properties"]
    assert defaults["fetchNews"]["default"] == "false"
    assert defaults["checkForUpdates"]["default"] is False


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_notebook_renders_its_visualizers(path: Path, jupyterlab, browser, screenshots):
    started = time.time()
    run_shipped_in_browser(browser, jupyterlab, path, screenshots)
    left = engine_leftovers(connect(), path.stem, since=started)
    assert not left, f"{path.name} left these behind: {left}"
