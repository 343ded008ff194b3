"""``nbgrader autograde`` without running the learner's notebook: the sealed judge in Execute's place.

nbgrader's autograde first sanitizes a submission (clears outputs, restores locked and grade cells
from the instructor's source), then runs its ``autograde_preprocessors``, the first of which,
``Execute``, runs every cell of the notebook in a kernel of the grading host: where one line of an
added cell rebinds the checks module and forges full marks. ``grader/nbgrader_config.py`` puts
:class:`SealedJudge` in its place. It reads the answer cells as data, judges them on a sealed
engine (:mod:`docklab.grading.judge`), and writes each grade cell's output from the verdict of the
check it names (``test_<check id>``): the feedback as text when it passed, an error carrying the
feedback when it failed. nbgrader's own SaveAutoGrades then scores the cells as usual (an error is
0 points), so formgrader, ``generate_feedback`` and ``export`` work unchanged.
"""

from __future__ import annotations

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor

from docklab.checks.base import Report

#: A grade cell's grade_id is ``test_`` + the id of the check it scores.
TEST_PREFIX = "test_"


def grade_cell_outputs(report: Report, grade_id: str) -> list:
    """The outputs a grade cell gets from the report: text when passed, an error when not."""
    check_id = grade_id.removeprefix(TEST_PREFIX)
    try:
        check = report[check_id]
    except KeyError:
        return [new_output("error", ename="NoSuchCheck",
                           evalue=f"{report.lab} has no check {check_id!r} for cell {grade_id}",
                           traceback=[f"NoSuchCheck: {report.lab} has no check {check_id!r}"])]
    if check.passed:
        text = f"PASS [{check.id}] {check.title}" + (f"\n{check.feedback}" if check.feedback
                                                     else "")
        return [new_output("stream", name="stdout", text=text + "\n")]
    lines = [f"LabCheckFailed: [{check.id}] {check.title}", *check.feedback.splitlines()]
    return [new_output("error", ename="LabCheckFailed", evalue=f"[{check.id}] {check.feedback}",
                       traceback=lines)]


class SealedJudge(NbGraderPreprocessor):
    """Judge the submission on a sealed engine and fill in the grade cells; run no cell."""

    def preprocess(self, nb, resources):
        from docklab.grading.judge import judge_notebook

        lab = resources["nbgrader"]["assignment"]
        student = resources["nbgrader"].get("student", "?")
        self.log.info("Judging %s of %s on a sealed engine (no cell is executed)", lab, student)
        report = judge_notebook(lab, nb)
        self.log.info("%s of %s: %s/%s", lab, student, report.score, report.max_score)
        count = 0
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            cell.outputs = []
            cell.execution_count = None
            grading = cell.metadata.get("nbgrader", {})
            if grading.get("grade") and not grading.get("solution"):
                count += 1
                cell.outputs = grade_cell_outputs(report, grading.get("grade_id", ""))
                cell.execution_count = count
        return nb, resources
