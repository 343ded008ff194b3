"""The nbgrader round trip of one lab, for the labs' tests: generate, submit, autograde, export,
feedback, in a temporary copy of the course. (mobysay's test_nbgrader_roundtrip.py spells the same
steps out; this is them as one function for the later labs.)"""

from __future__ import annotations

import csv
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import nbformat

from docklab import grader

ROOT = Path(__file__).resolve().parents[2]


def copy_course(tmp: Path, lab: str) -> Path:
    """A course root in ``tmp`` holding only ``lab``'s source (fast: one lab to generate)."""
    course = tmp / "grader"
    (course / "source").mkdir(parents=True)
    shutil.copy(ROOT / "grader" / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "grader" / "source" / lab, course / "source" / lab)
    return course


def set_cell(notebook, cell_id: str, source: str) -> None:
    """Replace the source of the cell with id ``cell_id`` (a learner's answer)."""
    cell = next(c for c in notebook.cells if c.get("id") == cell_id)
    cell.source = source


def round_trip(course: Path, lab: str,
               submissions: dict[str, Callable[[object], None] | None]) -> dict:
    """Generate ``lab``, submit one notebook per student (``edit(notebook)`` writes the student's
    answers into the released notebook; None hands it in untouched), autograde each, export the
    grades as CSV, generate feedback. Returns scores, per-cell grades, results and timings."""
    started = time.monotonic()
    api = grader.nbgrader_api(course)
    generated = api.generate_assignment(lab)
    assert generated["success"], generated.get("error") or generated["log"]
    release = course / "release" / lab
    for student, edit in submissions.items():
        target = course / "submitted" / student / lab
        shutil.copytree(release, target)
        notebook = nbformat.read(target / f"{lab}.ipynb", as_version=4)
        if edit is not None:
            edit(notebook)
        nbformat.write(notebook, target / f"{lab}.ipynb")
    results = {student: api.autograde(lab, student) for student in submissions}
    feedback = api.generate_feedback(lab)
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    csv_path = course / "grades.csv"
    plugin = CsvExportPlugin()
    plugin.to = str(csv_path)
    with Gradebook(api.coursedir.db_url, api.course_id) as gradebook:
        plugin.export(gradebook)
        cells = {student: {grade.name: grade.score for grade in
                           gradebook.find_submission_notebook(lab, lab, student).grades}
                 for student in submissions}
    with open(csv_path, newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)
                if row["assignment"] == lab}
    return {"results": results, "feedback": feedback, "cells": cells, "csv": csv_path,
            "scores": {s: float(rows[s]["score"]) for s in submissions},
            "max_scores": {float(row["max_score"]) for row in rows.values()},
            "seconds": time.monotonic() - started}


def feedback_html(course: Path, lab: str, student: str) -> str:
    return (course / "feedback" / student / lab / f"{lab}.html").read_text()


class Cheat:
    """A hostile submission, as an ``edit`` for :func:`round_trip`.

    The answer cell rebinds the lab's checks module (under nbgrader's own Execute step every test
    cell then passed), and an added cell patches the report and writes a file on the grading
    host, :attr:`marker`, which must never exist. The added cell goes right after the answer
    cell, or before the cell ``before`` names.
    """

    def __init__(self, lab: str, answer_cell: str, *, before: str | None = None):
        self.answer_cell, self.before = answer_cell, before
        self.marker = Path(f"/tmp/docklab-pwned-{lab}-{uuid.uuid4().hex[:8]}")
        self.answer = f'{lab} = type("M", (), {{"__getattr__": lambda s, n: lambda *a, **k: s}})()\n'
        self.added = ("from docklab.checks import base\n"
                      "base.Report.assert_passed = lambda *a, **k: None\n"
                      f"open({str(self.marker)!r}, 'w').write('ran on the grading host')\n")

    def __call__(self, notebook) -> None:
        set_cell(notebook, self.answer_cell, self.answer)
        ids = [c.get("id") for c in notebook.cells]
        at = ids.index(self.before) if self.before else ids.index(self.answer_cell) + 1
        notebook.cells.insert(at, nbformat.v4.new_code_cell(self.added))

    def assert_came_to_nothing(self, graded: dict, student: str) -> None:
        """The added cell never ran: no marker on the grading host, the patched report passed
        nothing (every cell 0), and the autograde log says the sealed judge graded it."""
        assert not self.marker.exists()
        assert set(graded["cells"][student].values()) == {0}
        assert "sealed engine (no cell is executed)" in graded["results"][student]["log"]


def sealed_report(graded: dict, lab: str, student: str):
    """The sealed judge's report on a student's submission (kept by the judge: not re-judged)."""
    from docklab.grading.judge import judge_file

    return judge_file(lab, graded["course"] / "submitted" / student / lab / f"{lab}.ipynb")
