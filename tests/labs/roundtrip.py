"""The nbgrader round trip of one lab: generate, submit, autograde, export, feedback, in a temporary
copy of the course. The labs' tests declare theirs in :mod:`tests.labs.harness`; the sealed grading
tests (tests/grading) call these steps directly."""

from __future__ import annotations

import csv
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from docklab import grader
from docklab.grading.judge import judge_file

ROOT = Path(__file__).resolve().parents[2]

#: Submissions judged at once: two sealed engines keep both cores busy (BENCHMARKS.md).
JUDGES = 2

#: Writes a student's answers into the released notebook (a learner's edits, before handing in).
Edit = Callable[[nbformat.NotebookNode], None]


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


def submitted(course: Path, lab: str, student: str) -> Path:
    """Where nbgrader keeps a student's handed-in notebook of ``lab``."""
    return course / "submitted" / student / lab / f"{lab}.ipynb"


def _judge(course: Path, lab: str, student: str) -> None:
    """Judge one submission ahead of autograde. A judge that fails here fails again inside
    autograde, where the round trip's tests see it: nothing to report from here."""
    try:
        judge_file(lab, submitted(course, lab, student))
    except Exception:  # noqa: BLE001, S110 - autograde judges it again and reports the error
        pass


def round_trip(course: Path, lab: str, submissions: dict[str, Edit | None]) -> dict:
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
    # Judge the submissions two at a time first (each on a sealed engine of its own, so they
    # cannot meet); nbgrader's autograde then finds each report ready, as `docklab grade` does.
    with ThreadPoolExecutor(max_workers=JUDGES) as pool:
        list(pool.map(lambda student: _judge(course, lab, student), submissions))
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
