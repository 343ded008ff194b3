"""Grade a whole class: ``docklab grade LAB [--parallel N]``.

Every submission in ``submitted/<student>/<lab>/`` is judged on a sealed engine of its own,
``parallel`` at a time, with a progress bar; as each report is ready, nbgrader's own
``autograde`` runs for that student, as the instructor would run it, and finds the report ready (:mod:`docklab.grading.judge` keeps them per answer),
so the gradebook, formgrader, feedback and export are nbgrader's as usual.
"""

from __future__ import annotations

import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from docklab.errors import DocklabError


@dataclass
class Graded:
    """One student's result: nbgrader's score, and the failed checks' ids."""

    student: str
    score: float | None = None
    max_score: float | None = None
    failed: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


def submissions(course: Path, lab: str) -> list[str]:
    """The students who handed in ``lab`` (``submitted/<student>/<lab>/<lab>.ipynb``)."""
    root = course / "submitted"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / lab / f"{lab}.ipynb").is_file())


def grade_class(course: Path, lab: str, *, parallel: int = 2, students: list[str] | None = None,
                progress: bool = True) -> list[Graded]:
    """Judge every submission of ``lab`` sealed, ``parallel`` at a time, autograding each."""
    from docklab.engine import connect
    from docklab.grader import nbgrader_api
    from docklab.grading.judge import judge_file

    students = students or submissions(course, lab)
    if not students:
        raise DocklabError(f"No submissions of {lab} in {course / 'submitted'}.",
                           f"Collect them first: nbgrader collect {lab}, or copy each notebook "
                           f"to submitted/<student>/{lab}/{lab}.ipynb.")
    host = connect()
    results = {student: Graded(student) for student in students}
    bar = tqdm(total=len(students) * 2, desc=f"grading {lab}", unit="step", file=sys.stderr,
               disable=not progress)

    def judge(student: str) -> None:
        started = time.monotonic()
        judge_file(lab, course / "submitted" / student / lab / f"{lab}.ipynb", host=host)
        results[student].seconds = time.monotonic() - started

    api = nbgrader_api(course)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        futures = {pool.submit(judge, student): student for student in students}
        # Each student is autograded as soon as their report is ready, here in this one thread
        # (the gradebook is nbgrader's SQLite file), while the other sandboxes keep building.
        for future in as_completed(futures):
            student = futures[future]
            try:
                future.result()
            except DocklabError as exc:
                results[student].error = exc.message
            except Exception as exc:  # noqa: BLE001 - one submission must not stop the class
                results[student].error = f"{exc.__class__.__name__}: {exc}"
            bar.set_postfix_str(student)
            bar.update(1)
            if not results[student].error:
                _autograde(api, lab, results[student])
            bar.update(1)
    bar.close()
    _read_scores(api, lab, results)
    return [results[student] for student in students]


def _autograde(api, lab: str, result: Graded) -> None:
    with warnings.catch_warnings():
        # nbgrader 0.9's gradebook warns of its own session use at every autograde.
        warnings.filterwarnings("ignore", message=".*not in session.*")
        outcome = api.autograde(lab, result.student)
    if not outcome.get("success"):
        result.error = (outcome.get("error") or outcome.get("log") or "autograde failed"
                        ).strip()[-500:]


def _read_scores(api, lab: str, results: dict[str, Graded]) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(api.coursedir.db_url, api.course_id) as gradebook:
        for student, result in results.items():
            try:
                submission = gradebook.find_submission(lab, student)
            except MissingEntry:
                continue
            result.score, result.max_score = submission.score, submission.max_score
            for notebook in submission.notebooks:
                result.failed += [g.name.removeprefix("test_") for g in notebook.grades
                                  if g.max_score and (g.score or 0) < g.max_score]


def summary_table(lab: str, results: list[Graded]) -> str:
    """The class's results as text: one row per student."""
    width = max([len(r.student) for r in results] + [7])
    lines = [f"{lab}: {len(results)} submission(s)",
             f"  {'student':<{width}}  score     seconds  not passed"]
    for r in results:
        score = f"{r.score:g}/{r.max_score:g}" if r.score is not None else "-"
        note = r.error or ", ".join(r.failed) or "-"
        lines.append(f"  {r.student:<{width}}  {score:<8}  {r.seconds:7.1f}  {note}")
    return "\n".join(lines)
