"""The lifecycle lab on the real engine: `docklab check lifecycle` on right and wrong answers, and
the students of its nbgrader round trip (tests/labs/test_round_trips.py runs it from CASE), where
every submission is judged on a sealed engine of its own (no cell of it runs).

Wrong answers are the ways learners get this wrong: the recipe handed back unchanged with a guessed
exit code, a `tail -f /dev/null` prop that keeps a broken app's container "running", a server that
goes into the background (the container ends with exit code 0), a rewritten start.sh, the right file
name at the wrong path. Each gets a score and feedback, and nothing labelled is left behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docklab.checks import lifecycle
from docklab.checks.answer import dockerfile_from_notebook
from tests.labs.answers import answer_folder, hands_in, replaced, writefile
from tests.labs.asserts import assert_fails_exactly, check_each, first_failing
from tests.labs.harness import Cheat, LabCase

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "grader" / "source" / "lifecycle"
GOOD, _ = dockerfile_from_notebook(ROOT / "solutions" / "lifecycle" / "lifecycle.ipynb")
BROKEN = (SOURCE / "broken.Dockerfile").read_text()
RIGHT = {"exit_code": 3, "missing_file": "/app/config/greeting.txt"}
CMD = 'CMD ["sh", "/app/start.sh"]'
PROP = 'CMD ["sh", "-c", "sh /app/start.sh & exec tail -f /dev/null"]'
BACKGROUND = 'CMD ["httpd", "-p", "8080", "-h", "/app/config"]'
RUNNING = {"keeps_running", "ready_line", "serves_greeting"}


def edit(old: str, new: str, text: str = GOOD) -> str:
    return replaced(text, old, new)


# name → (Dockerfile, answers (None: no answers.json), start.sh edit, checks that fail, words
#         the feedback of the first failing check holds)
ANSWERS = {
    "good": (GOOD, RIGHT, None, set(), ""),
    "handed_back_unchanged": (
        BROKEN, {"exit_code": 1, "missing_file": "greeting.txt"}, None,
        {"exit_code_recorded", "cause_found", *RUNNING}, "different exit code"),
    "prop_keeps_a_broken_app_up": (
        edit(CMD, PROP, BROKEN), RIGHT, None, {"ready_line", "serves_greeting"},
        "ready line"),
    "server_in_the_background": (
        edit(CMD, BACKGROUND), RIGHT, None, RUNNING, "Exit code 0 means its main process"),
    "start_sh_rewritten": (
        GOOD, RIGHT, b"\n# tweaked\n", {"app_unchanged"}, "differs from the lab's start.sh"),
    "no_answers_right_name_wrong_path": (
        GOOD, {"exit_code": "3", "missing_file": "/app/greeting.txt"}, None, {"cause_found"},
        "right file name"),
    "no_answers_file": (GOOD, None, None, {"exit_code_recorded", "cause_found"},
                        "record_answers"),
}


def _folder(folder: Path, name: str) -> Path:
    """The folder `docklab check lifecycle` grades, holding the answer ``name``."""
    dockerfile, answers, script_edit, _, _ = ANSWERS[name]
    script = (SOURCE / "start.sh").read_bytes() + (script_edit or b"")
    return answer_folder(folder, "lifecycle", {
        "start.sh": script, "Dockerfile": dockerfile,
        "answers.json": None if answers is None else json.dumps(answers)},
        lab_files=("greeting.txt",))


@pytest.fixture(scope="module")
def reports(client, tmp_path_factory):
    """Every answer graded once, three side by side; nothing labelled may be left behind."""
    root = tmp_path_factory.mktemp("answers")
    folders = {name: _folder(root / name, name) for name in ANSWERS}
    graded, _ = check_each(client, "lifecycle", folders)
    return {"reports": graded, "folders": folders}


def test_the_solution_passes_every_check(reports):
    report = reports["reports"]["good"]
    assert_fails_exactly(report, set())
    assert report.score == report.max_score == 9
    assert report.details["broken"] == {"exit_code": 3,
                                        "missing_file": "/app/config/greeting.txt"}
    assert report.details["fixed"]["pid1"].startswith("httpd -f")


@pytest.mark.parametrize("name", [n for n in ANSWERS if n != "good"])
def test_wrong_answers_fail_exactly_the_checks_they_break(reports, name):
    _, _, _, expected, words = ANSWERS[name]
    report = reports["reports"][name]
    assert_fails_exactly(report, expected)
    first = first_failing(report, expected)
    assert words in first.feedback, report.table()
    assert "Lesson 02-running" in first.feedback


def test_a_fix_that_exits_as_the_broken_recipe_is_told_so_without_the_code_written_in(reports):
    # The exit code is one of the lab's answers: the feedback compares with the broken recipe's
    # run while grading, and the checks' source never names it (tests/unit/test_learner_edition).
    said = reports["reports"]["handed_back_unchanged"]["keeps_running"].feedback
    assert "exit code 3. Exit code 3 is the one the broken recipe's containers exit with" in said
    said = reports["reports"]["server_in_the_background"]["keeps_running"].feedback
    assert "broken recipe" not in said


def test_a_prop_passes_the_visible_checks_but_not_the_pid1_test(reports, tmp_path):
    folder = _folder(tmp_path / "prop", "good")
    (folder / "Dockerfile").write_text(edit(CMD, PROP))
    report = lifecycle.grade(folder)
    assert report.all_passed, report.table()
    assert report.details["fixed"]["pid1"].startswith("tail")
    with pytest.raises(AssertionError, match="not the app's httpd"):
        lifecycle.assert_app_is_pid1(folder)
    lifecycle.assert_app_is_pid1(reports["folders"]["good"])


# -- the nbgrader round trip (tests/labs/test_round_trips.py) -----------------------------------

def _submission(answers: str, dockerfile: str):
    return hands_in({"answers": answers, "dockerfile": writefile("Dockerfile", dockerfile)})


RIGHT_CELL = 'EXIT_CODE = 3\nMISSING_FILE = "/app/config/greeting.txt"\n'
# The same answers and fix in another spelling: a hex literal and a comment, a string in two
# pieces; a tagged FROM, ADD and relative paths below WORKDIR, ENTRYPOINT instead of CMD.
OTHER_CELL = ('EXIT_CODE = 0x3  # docker inspect -f {{.State.ExitCode}}\n'
              'MISSING_FILE = ("/app/config/"\n                "greeting.txt")\n')
OTHER_SPELLING = """FROM busybox:latest
WORKDIR /app
ADD start.sh ./
COPY greeting.txt config/greeting.txt
ENTRYPOINT ["/bin/sh", "start.sh"]
"""

# student → (submission, expected score out of 9)
STUDENTS = {
    "ada": (_submission(RIGHT_CELL, GOOD), 9),
    # guessed answers, the recipe handed back unchanged: only builds and app_unchanged
    "bo": (_submission('EXIT_CODE = 1\nMISSING_FILE = "greeting.txt"\n', BROKEN), 2),
    # a tail -f prop around a working app: the visible checks pass, the hidden PID 1 test
    # takes keeps_running's 2 points
    "cy": (_submission(RIGHT_CELL, edit(CMD, PROP)), 7),
    # httpd in the background: the container ends with exit code 0
    "di": (_submission(RIGHT_CELL, edit(CMD, BACKGROUND)), 4),
    "eve": (None, 0),
    "mal": (Cheat("lifecycle", "answers", before="dockerfile"), 0),
    "odo": (_submission(OTHER_CELL, OTHER_SPELLING), 9),
}

CASE = LabCase(
    "lifecycle", max_score=9, students=STUDENTS,
    right_answer=lambda folder: _folder(folder, "good"),
    not_released=("HIDDEN", "assert_app_is_pid1"),
    release_files=("start.sh", "greeting.txt", "broken.Dockerfile"),
    cells={"cy": {"test_keeps_running": 0}},
    feedback={"bo": ("different exit code",), "cy": ("not the app's httpd",),
              "di": ("Exit code 0 means",), "eve": ("placeholder",),
              "mal": ("still holds the placeholder", "no cell that sets EXIT_CODE")},
    untouched_words=("EXIT_CODE",),
)
