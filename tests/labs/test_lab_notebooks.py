"""Each lab's notebook as a learner works it: run top to bottom in a copy of its folder, on the
host engine (tests/engines/test_engine_matrix.py runs them on the engines learners have, and
alone runs the orchestration lab's, which swarms its engine).

- Solved (``solutions/<lab>``): every cell runs without an error — set-up, the learner's own
  runs, the self-check (every row PASS) and each graded cell — and nothing labelled with the lab
  is left on the engine.
- As released (``labs/<lab>``, its answers still placeholders): every cell runs; every graded
  cell fails with the check's feedback (LabCheckFailed), and nothing else fails but the answer
  cells' placeholder and the given cells that use an answer not yet written (a NameError, or a
  ``%docker build`` of the placeholder Dockerfile) — no crash; the self-check shows every row FAIL; and nothing is left behind either.

The other lab tests read a notebook's answers (``docklab check``, nbgrader's round trip); only
here do its set-up, "try it" and self-check cells run.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest

from docklab import grader
from docklab.checks import get_lab
from tests.conftest import SWARMS_THE_HOST
from tests.notebooks.course import ROOT, execute

pytestmark = pytest.mark.engine

#: The orchestration lab's notebook swarms the engine it runs on: the engine matrix runs it, not
#: the shared host engine (tests/conftest.py, SWARMS_THE_HOST).
LABS = [lab for lab in grader.source_labs(ROOT / "grader") if lab not in SWARMS_THE_HOST]


def run_lab(lab: str, edition: str, tmp_path: Path, **where):
    """Runs ``<edition>/<lab>/<lab>.ipynb`` in a copy of its folder; returns the executed notebook."""
    folder = tmp_path / lab
    shutil.copytree(ROOT / edition / lab, folder)
    return execute(folder / f"{lab}.ipynb", {}, f"{lab} lab, {edition}", cwd=folder,
                   allow_errors=edition == "labs", **where)


def cells_by_role(lab: str) -> dict[str, str]:
    """The lab's code cells (nbgrader's metadata, kept in the released notebook): id → "graded",
    "answer" (the learner writes it) or "given"."""
    nb = nbformat.read(ROOT / "labs" / lab / f"{lab}.ipynb", as_version=4)
    roles = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code":
            roles[cell.id] = ("graded" if meta.get("grade") else
                              "answer" if meta.get("solution") else "given")
    return roles


#: What may fail in an untouched lab, by the cell's role: an answer cell raises nbgrader's
#: placeholder; a given cell that uses the answer finds no name, or its `docker` command fails
#: (`docker build` of a placeholder Dockerfile), or `lesson.run_script` refuses a run.sh that
#: still holds the placeholder (ScriptRefused, one line naming it); a graded cell fails its
#: check. Anything else (an AttributeError, a KeyError, ...) is a crash a learner would meet.
UNTOUCHED_ERRORS = {"answer": {"NotImplementedError"},
                    "given": {"NameError", "DockerCommandFailed", "ScriptRefused"},
                    "graded": {"LabCheckFailed"}}


def errors(nb) -> dict[str, str]:
    """cell id → the name of the exception it raised."""
    return {cell.id: out["ename"] for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "error"}


_ROW = re.compile(r"<td>(✅|❌)</td><td><code>([^<]+)</code>")


def self_check_rows(nb, lab: str) -> dict[str, str]:
    """The report the self-check cell shows (its HTML table): check id → PASS or FAIL."""
    cell = next(cell for cell in nb.cells if cell.id == "self-check")
    shown = "".join(out.get("data", {}).get("text/html", "") for out in cell.get("outputs", []))
    rows = {check: "PASS" if mark == "✅" else "FAIL" for mark, check in _ROW.findall(shown)}
    assert rows, f"{lab}: the self-check showed no report: {cell.get('outputs')}"[:3000]
    return rows


def assert_solved_lab_passes(lab: str, tmp_path: Path, **where) -> None:
    nb = run_lab(lab, "solutions", tmp_path, **where)  # raises on any cell's error
    assert self_check_rows(nb, lab) == dict.fromkeys(get_lab(lab).check_ids, "PASS")


def assert_released_lab_fails_without_crashing(lab: str, tmp_path: Path, **where) -> None:
    nb = run_lab(lab, "labs", tmp_path, **where)
    roles, raised = cells_by_role(lab), errors(nb)
    crashes = {cell: ename for cell, ename in raised.items()
               if ename not in UNTOUCHED_ERRORS[roles[cell]]}
    assert not crashes, f"{lab}: cells that crashed: {crashes}"
    assert {cell for cell, role in roles.items() if role == "graded"} <= set(raised), raised
    assert set(self_check_rows(nb, lab).values()) == {"FAIL"}


#: (test_engine_matrix.py runs both on each engine of the matrix.)
RUNS = {"solutions": assert_solved_lab_passes, "labs": assert_released_lab_fails_without_crashing}


@pytest.mark.parametrize("lab", LABS)
def test_solved_lab_notebook_runs_and_passes_every_check(lab, tmp_path):
    assert_solved_lab_passes(lab, tmp_path)


@pytest.mark.parametrize("lab", LABS)
def test_released_lab_notebook_fails_its_checks_without_crashing(lab, tmp_path):
    assert_released_lab_fails_without_crashing(lab, tmp_path)
