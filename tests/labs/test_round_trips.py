"""What every lab must do, run for each lab from the ``CASE`` its test file declares.

The nbgrader round trip: the release hides the hidden tests, autograde (on sealed engines) gives
each student the expected score cell by cell, no cell of a cheat runs, the feedback says what to
fix, nothing is left behind. And `docklab check`, as a learner runs it: a right folder gets full
marks, the untouched notebook gets none and no traceback, and nothing is left behind.

The solution notebook is not checked here again: its run (tests/labs/test_lab_notebooks.py, and
the engine matrix for the orchestration lab) passes every check, and a notebook's right answers,
read as data as `docklab check` reads them, earn full marks in each round trip (the sealed judge
writes the answer cells into a notebook and checks that). The orchestration lab's right folder is
its solution's stack file.
"""

from __future__ import annotations

import importlib
import json
import re
import uuid
from contextlib import ExitStack

import pytest

from docklab import grader
from docklab.checks import get_lab
from tests.conftest import run_docklab
from tests.labs.asserts import assert_nothing_labelled_left
from tests.labs.roundtrip import ROOT

pytestmark = pytest.mark.engine

#: Every lab of the course has a test file, tests/labs/test_<lab>.py, declaring its CASE.
CASES = [importlib.import_module(f"tests.labs.test_{lab}").CASE
         for lab in grader.source_labs(ROOT / "grader")]
each_lab = pytest.mark.parametrize("case", CASES, ids=lambda case: case.lab)


@pytest.fixture
def graded(case, round_trips):
    return round_trips.of(case)


# -- the nbgrader round trip --------------------------------------------------------------------

@each_lab
def test_round_trip_release_hides_the_hidden_tests(case, graded):
    text = (graded.release / f"{case.lab}.ipynb").read_text()
    for secret in case.not_released:
        assert secret not in text
    for name in case.release_files:
        assert (graded.release / name).is_file(), name


@each_lab
def test_round_trip_autograde_succeeds_for_every_submission(graded):
    for student, result in graded.results.items():
        assert result["success"], f"{student}: {result.get('error') or result['log'][-3000:]}"


@each_lab
def test_round_trip_autogrades_to_the_expected_scores(case, graded):
    expected = {student: float(score) for student, (_, score) in case.students.items()}
    assert graded.scores == expected, graded.cells
    assert graded.max_scores == {float(case.max_score)}
    print(f"{case.lab} round trip ({len(case.students)} students): {graded.seconds:.1f} s")


@each_lab
def test_round_trip_grades_each_check_in_its_own_cell(case, graded):
    for student, (_, score) in case.students.items():
        if score == case.max_score:
            assert graded.cells[student] == case.full_cells, student
    for student, cells in case.cells.items():
        assert {cell: graded.cells[student][cell] for cell in cells} == cells, student


@each_lab
def test_round_trip_runs_no_cell_of_a_submission(case, graded):
    assert case.cheats, "each lab hands in a cheat"
    for student, cheat in case.cheats.items():
        cheat.assert_came_to_nothing(graded, student)


def _page_words(page: str) -> str:
    body = re.sub(r"(?s)<(style|script)\b.*?</\1>", " ", page)
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


@each_lab
def test_round_trip_feedback_says_what_to_fix(case, graded):
    assert graded.feedback["success"], graded.feedback.get("error")
    for student, words in case.feedback.items():
        text = graded.feedback_text(student)
        for word in words:
            # on failure, show what the page says instead (its text, without the HTML)
            assert word in text, f"{student}: {word!r} not in: {_page_words(text)[-3000:]}"


@each_lab
def test_round_trip_leaves_nothing_behind(case, graded, client):
    assert_nothing_labelled_left(client, learner=graded.learner)
    assert case.unlabelled_leftovers(client) == []


# -- docklab check ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sealed_engines(client):
    """A sealed engine per lab whose `docklab check` must not run on the host engine, started
    when first asked for and kept for this module's tests (as a learner of its own, so that the
    tests' own learners see nothing of it)."""
    from docklab.grading.sealed import SealedEngine

    engines = {}

    def engine_for(lab: str) -> SealedEngine:
        if lab not in engines:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("DOCKLAB_LEARNER", f"check-{lab}-engine")
                engines[lab] = stack.enter_context(SealedEngine(
                    client, images=get_lab(lab).images, lesson=f"grade-{lab}"))
        return engines[lab]

    with ExitStack() as stack:
        yield engine_for


@pytest.fixture
def docklab_check(case, client, learner_env, sealed_engines):
    """Runs `docklab check <lab> <answer> [--json]` as the learner would, where the case says,
    and asserts it crashed nowhere and left nothing behind."""
    def run(answer, *flags: str):
        sealed = sealed_engines(case.lab) if case.check_on_a_sealed_engine else None
        env = {"DOCKER_HOST": f"unix://{sealed.socket_path}"} if sealed else {}
        # A session of its own: what the command made carries it, the limited build parent it
        # kept for later builds (docklab.checks.build_bounds, no learner's) included.
        session = uuid.uuid4().hex[:12]
        result = run_docklab("check", case.lab, str(answer), *flags,
                             env={**env, "DOCKLAB_SESSION": session})
        assert "Traceback" not in result.stderr, result.stderr
        assert_nothing_labelled_left(client, learner=learner_env)
        assert_nothing_labelled_left(client, session=session)
        assert case.unlabelled_leftovers(client) == []
        if sealed:
            # Whatever swarm the check made in the sealed engine, it left again.
            assert sealed.client.info()["Swarm"]["LocalNodeState"] == "inactive"
            assert sealed.client.containers.list(all=True) == []
        return result
    return run


def _full_marks(case, result) -> dict:
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert (report["lab"], report["score"], report["max_score"]) == (
        case.lab, case.max_score, case.max_score)
    assert [check["id"] for check in report["checks"]] == case.check_ids
    return report


@each_lab
def test_docklab_check_json_gives_a_right_folder_full_marks(case, docklab_check, tmp_path):
    report = _full_marks(case, docklab_check(case.right_answer(tmp_path / "good"), "--json"))
    assert set(report["checks"][0]) == {"id", "passed", "points", "feedback"}


@each_lab
def test_docklab_check_gives_the_untouched_notebook_nothing(case, docklab_check):
    result = docklab_check(case.notebook("labs"))
    assert result.returncode == 1, result.stdout + result.stderr
    rows = result.stdout.splitlines()
    assert rows[0] == f"{case.lab}: 0/{case.max_score} points"
    assert [row.split()[1] for row in rows if row.startswith("  FAIL  ")] == case.check_ids
    assert "placeholder" in _feedback_under_the_first_check(rows)
    for word in case.untouched_words:
        assert word in result.stdout


def _feedback_under_the_first_check(rows: list[str]) -> str:
    """The feedback lines the report table prints under its first check (indented deeper)."""
    lines = []
    for row in rows[2:]:
        if row.startswith(("  PASS  ", "  FAIL  ")):
            break
        lines.append(row.strip())
    return "\n".join(lines)
