"""The whole nbgrader round trip for mobysay, in a temporary copy of the course.

generate_assignment → five submissions in submitted/<student>/mobysay/ (the solution, three wrong
Dockerfiles, the untouched student version) → autograde (Python API: `nbgrader validate` exits 0
even when tests fail) → grades exported to CSV → feedback. The scores must be exactly the ones the
checks and the hidden tests give: a wrong answer loses the points of the checks it breaks.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nbformat
import pytest

from docklab import grader, labels
from docklab.checks.answer import dockerfile_from_notebook

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
GOOD, _ = dockerfile_from_notebook(ROOT / "solutions" / "mobysay" / "mobysay.ipynb")
EXEC_FORM = 'ENTRYPOINT ["cowsay", "-f", "moby.cow"]'

# student → (Dockerfile, or None for the untouched student version; expected score out of 10)
STUDENTS = {
    "ada": (GOOD, 10),
    # shell form: default_message, custom_message (2), entrypoint_exec_form fail
    "bo": (GOOD.replace(EXEC_FORM, "ENTRYPOINT cowsay -f moby.cow"), 6),
    # ENV instead of ARG, and apt-get update in its own RUN
    "cy": (GOOD.replace("ARG DEBIAN_FRONTEND", "ENV DEBIAN_FRONTEND").replace(
        "RUN apt-get update \\\n && apt-get install", "RUN apt-get update\nRUN apt-get install"),
        8),
    # a shell wrapper: passes the visible custom_message test, but the hidden test sees the
    # shell expand the message (a lone * becomes file names); entrypoint_exec_form fails too
    "di": (GOOD.replace(EXEC_FORM, 'ENTRYPOINT ["sh", "-c", "cowsay -f moby.cow $*", "--"]'), 7),
    "eve": (None, 0),
}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course") / "grader"
    root.mkdir()
    shutil.copy(ROOT / "grader" / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "grader" / "source", root / "source")
    return root


@pytest.fixture(scope="module")
def graded(course, tmp_path_factory):
    """Generate, submit, autograde and give feedback once; the tests read the results."""
    learner = "roundtrip-" + tmp_path_factory.mktemp("id").name[-6:]
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)  # the kernels inherit it: their resources are ours
    api = grader.nbgrader_api(course)
    generated = api.generate_assignment("mobysay")
    assert generated["success"], generated.get("error") or generated["log"]
    release = course / "release" / "mobysay"
    for student, (dockerfile, _) in STUDENTS.items():
        target = course / "submitted" / student / "mobysay"
        target.mkdir(parents=True)
        shutil.copy(release / "moby.cow", target)
        notebook = nbformat.read(release / "mobysay.ipynb", as_version=4)
        if dockerfile is not None:
            cell = next(c for c in notebook.cells if c.get("id") == "dockerfile")
            cell.source = "%%writefile Dockerfile\n" + dockerfile
        nbformat.write(notebook, target / "mobysay.ipynb")
    results = {student: api.autograde("mobysay", student) for student in STUDENTS}
    feedback = api.generate_feedback("mobysay")
    csv_path = course / "grades.csv"
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    plugin = CsvExportPlugin()
    plugin.to = str(csv_path)
    with Gradebook(api.coursedir.db_url, api.course_id) as gradebook:
        plugin.export(gradebook)
        cells = {student: {grade.name: grade.score for grade in
                           gradebook.find_submission_notebook("mobysay", "mobysay", student).grades}
                 for student in STUDENTS}
    yield {"api": api, "results": results, "feedback": feedback, "csv": csv_path,
           "cells": cells, "learner": learner}
    mp.undo()


def test_generate_assignment_keeps_hidden_tests_out_of_the_release(course, graded):
    text = (course / "release" / "mobysay" / "mobysay.ipynb").read_text()
    assert "HIDDEN" not in text and "assert_says" not in text
    assert (course / "release" / "mobysay" / "moby.cow").is_file()


def test_autograde_succeeds_for_every_submission(graded):
    for student, result in graded["results"].items():
        assert result["success"], f"{student}: {result.get('error') or result['log'][-2000:]}"


def test_exported_grades_are_the_expected_scores(graded):
    with open(graded["csv"], newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)
                if row["assignment"] == "mobysay"}
    scores = {student: float(rows[student]["score"]) for student in STUDENTS}
    assert scores == {student: float(score) for student, (_, score) in STUDENTS.items()}
    assert {float(row["max_score"]) for row in rows.values()} == {10.0}


def test_each_check_is_one_graded_cell(graded):
    assert graded["cells"]["ada"] == {
        "test_builds": 1, "test_base_debian": 1, "test_frontend_is_arg": 1,
        "test_apt_chained": 1, "test_cowfile_installed": 1, "test_path_has_games": 1,
        "test_default_message": 1, "test_custom_message": 2, "test_entrypoint_exec_form": 1}
    cy = graded["cells"]["cy"]
    assert cy["test_frontend_is_arg"] == 0 and cy["test_apt_chained"] == 0
    # The hidden test, not the visible one, takes di's custom_message points.
    assert graded["cells"]["di"]["test_custom_message"] == 0


def test_the_visible_checks_alone_would_pass_the_wrapper(tmp_path):
    from docklab.checks import mobysay

    (tmp_path / "Dockerfile").write_text(STUDENTS["di"][0])
    shutil.copy(ROOT / "grader" / "source" / "mobysay" / "moby.cow", tmp_path)
    report = mobysay.LAB.check(tmp_path)
    assert report["custom_message"].passed and not report["entrypoint_exec_form"].passed
    assert report.score == 9  # the hidden test makes the difference in nbgrader (7)


def test_feedback_tells_each_student_what_to_fix(course, graded):
    assert graded["feedback"]["success"], graded["feedback"].get("error")
    html = {student: (course / "feedback" / student / "mobysay" / "mobysay.html").read_text()
            for student in STUDENTS}
    assert "shell-form ENTRYPOINT ignores CMD" in html["bo"]
    assert "only lasts during the build" in html["cy"]
    assert "cached" in html["cy"]
    assert "placeholder" in html["eve"]


def test_grading_leaves_nothing_labelled_behind(client, graded):
    left = labels.find_labelled(client, learner=graded["learner"])
    assert not any(left.values()), left
