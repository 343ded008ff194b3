"""Every course notebook runs top to bottom against the real engine and leaves nothing behind.

Each notebook is executed once per variant (see tests/notebooks/course.py):

* ``test_notebook_runs_as_shipped``: the notebooks with no visualizer, as shipped (those with one
  run as shipped in JupyterLab, tests/browser): every code cell runs without an error and every
  self-check says "Not yet".
* ``test_notebook_runs_solved``: every notebook with its "try it" exercises solved: every
  self-check says "Well done" (11-orchestration's in the engine matrix only: it swarms the engine).
* the same exercises solved through ``%docker`` cells (``CLI_SOLUTIONS``) run in the engine
  matrix, on Engine 28 (tests/engines: ``make test-engines``, which ``.ci/run`` runs): a
  ``%docker`` cell is the docker CLI, whose output BuildKit changed most, so that run is not
  repeated here on 20.10.
* ``test_notebook_self_checks_refuse_wrong_answers``: the notebooks in ``WRONG_ANSWERS`` with
  nearly right answers: the named self-checks say "Not yet", and why.

Either way, the cleanup cell must leave nothing labelled with the lesson's id on the engine.
Nothing here is skipped: without an engine or the course images, the notebooks fail, and so do
these tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SWARMS_THE_HOST
from tests.notebooks.course import (
    NOT_IN_BROWSER,
    NOT_YET,
    NOTEBOOKS,
    SOLUTIONS,
    WELL_DONE,
    WRONG_ANSWERS,
    execute,
    expect_verdicts,
    verdicts,
)

pytestmark = pytest.mark.engine


def test_require_images_names_what_is_missing():
    from docklab.errors import ImageError
    from docklab.lesson import Lesson

    lesson = Lesson("test-require-images")
    lesson.require_images("busybox")  # present: no error
    with pytest.raises(ImageError) as caught:
        lesson.require_images("busybox", "docklab-test-absent:never")
    assert "docklab-test-absent:never" in caught.value.message
    assert "busybox" not in caught.value.message
    assert "docklab images prepare" in caught.value.hint


# --- the runs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", NOT_IN_BROWSER, ids=lambda p: p.stem)
def test_notebook_runs_as_shipped(path: Path):
    expect_verdicts(execute(path, {}, "as shipped"), path, "as shipped", NOT_YET)


# 00-index has no exercise: its one run is above. 11-orchestration's solved run is the engine
# matrix's: it swarms the engine it runs on (tests/conftest.py, SWARMS_THE_HOST).
@pytest.mark.parametrize("path", [p for p in NOTEBOOKS
                                  if p.stem in SOLUTIONS and p.stem not in SWARMS_THE_HOST],
                         ids=lambda p: p.stem)
def test_notebook_runs_solved(path: Path):
    attempt = "exercises solved"
    expect_verdicts(execute(path, SOLUTIONS[path.stem], attempt), path, attempt, WELL_DONE)


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem in WRONG_ANSWERS],
                         ids=lambda p: p.stem)
def test_notebook_self_checks_refuse_wrong_answers(path: Path):
    answers, expected = WRONG_ANSWERS[path.stem]
    said = verdicts(execute(path, answers, "wrong answers"))
    for cell, words in expected.items():
        assert said[cell].startswith(NOT_YET) and words in said[cell], (cell, said[cell])
