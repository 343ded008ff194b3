"""The lifecycle lab on the real engine: `docklab check lifecycle` on right and wrong answers, and
its nbgrader round trip, where every submission is judged on a sealed engine of its own (no cell
of it runs).

Wrong answers are the ways learners get this wrong: the recipe handed back unchanged with a guessed
exit code, a `tail -f /dev/null` prop that keeps a broken app's container "running", a server that
goes into the background (the container ends with exit code 0), a rewritten start.sh, the right file
name at the wrong path. Each gets a score and feedback, and nothing labelled is left behind.
"""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from docklab import labels
from docklab.checks import lifecycle
from docklab.checks.answer import dockerfile_from_notebook
from tests.conftest import run_docklab
from tests.labs.roundtrip import Cheat, copy_course, feedback_html, round_trip, set_cell

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "grader" / "source" / "lifecycle"
ALL = [c.id for c in lifecycle.CRITERIA]
GOOD, _ = dockerfile_from_notebook(ROOT / "solutions" / "lifecycle" / "lifecycle.ipynb")
BROKEN = (SOURCE / "broken.Dockerfile").read_text()
RIGHT = {"exit_code": 3, "missing_file": "/app/config/greeting.txt"}
CMD = 'CMD ["sh", "/app/start.sh"]'
PROP = 'CMD ["sh", "-c", "sh /app/start.sh & exec tail -f /dev/null"]'
BACKGROUND = 'CMD ["httpd", "-p", "8080", "-h", "/app/config"]'
RUNNING = {"keeps_running", "ready_line", "serves_greeting"}


def edit(old: str, new: str, text: str = GOOD) -> str:
    assert old in text, old
    return text.replace(old, new)


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


def _folder(root: Path, name: str) -> Path:
    dockerfile, answers, script_edit, _, _ = ANSWERS[name]
    folder = root / name
    folder.mkdir()
    shutil.copy(SOURCE / "greeting.txt", folder)
    script = (SOURCE / "start.sh").read_bytes() + (script_edit or b"")
    (folder / "start.sh").write_bytes(script)
    (folder / "Dockerfile").write_text(dockerfile)
    if answers is not None:
        (folder / "answers.json").write_text(json.dumps(answers))
    return folder


@pytest.fixture(scope="module")
def reports(client, tmp_path_factory):
    """Every answer graded once, three side by side; nothing labelled may be left behind."""
    learner = "test-lifecycle-" + tmp_path_factory.mktemp("id").name[-6:]
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)
    root = tmp_path_factory.mktemp("answers")
    folders = {name: _folder(root, name) for name in ANSWERS}
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(lifecycle.LAB.check, folder)
                   for name, folder in folders.items()}
        graded = {name: future.result() for name, future in futures.items()}
    seconds = time.monotonic() - started
    left = labels.find_labelled(client, learner=learner)
    mp.undo()
    assert not any(left.values()), f"left behind: {left}"
    return {"reports": graded, "seconds": seconds, "folders": folders}


def failing(report) -> set[str]:
    return {check.id for check in report.checks if not check.passed}


def test_the_solution_passes_every_check(reports):
    report = reports["reports"]["good"]
    assert failing(report) == set(), report.table()
    assert report.score == report.max_score == 9
    assert report.details["broken"] == {"exit_code": 3,
                                        "missing_file": "/app/config/greeting.txt"}
    assert report.details["fixed"]["pid1"].startswith("httpd -f")


@pytest.mark.parametrize("name", [n for n in ANSWERS if n != "good"])
def test_wrong_answers_fail_exactly_the_checks_they_break(reports, name):
    _, _, _, expected, words = ANSWERS[name]
    report = reports["reports"][name]
    assert failing(report) == expected, report.table()
    first = next(check for check in report.checks if check.id in expected)
    assert words in first.feedback, report.table()
    assert "Lesson 02-running" in first.feedback
    assert report.score == report.max_score - sum(report[i].points for i in expected)


def test_a_prop_passes_the_visible_checks_but_not_the_pid1_test(reports, tmp_path):
    folder = tmp_path / "prop"
    shutil.copytree(reports["folders"]["good"], folder)
    (folder / "Dockerfile").write_text(edit(CMD, PROP))
    report = lifecycle.grade(folder)
    assert report.all_passed, report.table()
    assert report.details["fixed"]["pid1"].startswith("tail")
    with pytest.raises(AssertionError, match="not the app's httpd"):
        lifecycle.assert_app_is_pid1(folder)
    lifecycle.assert_app_is_pid1(reports["folders"]["good"])


def test_docklab_check_cli_on_a_folder_and_notebooks(reports, learner_env, client):
    good = run_docklab("check", "lifecycle", str(reports["folders"]["good"]), "--json")
    assert good.returncode == 0, good.stdout + good.stderr
    data = json.loads(good.stdout)
    assert (data["lab"], data["score"], data["max_score"]) == ("lifecycle", 9, 9)
    assert [c["id"] for c in data["checks"]] == ALL
    solved = run_docklab("check", "lifecycle",
                         str(ROOT / "solutions" / "lifecycle" / "lifecycle.ipynb"), "--json")
    assert solved.returncode == 0, solved.stdout + solved.stderr
    assert json.loads(solved.stdout)["score"] == 9
    untouched = run_docklab("check", "lifecycle",
                            str(ROOT / "labs" / "lifecycle" / "lifecycle.ipynb"))
    assert untouched.returncode == 1 and "Traceback" not in untouched.stderr
    assert "lifecycle: 0/9 points" in untouched.stdout
    assert "placeholder" in untouched.stdout and "EXIT_CODE" in untouched.stdout
    left = labels.find_labelled(client, learner=learner_env)
    assert not any(left.values()), left


# -- the nbgrader round trip ------------------------------------------------------------------

def _submission(answers: str | None, dockerfile: str | None):
    def write(notebook) -> None:
        if answers is not None:
            set_cell(notebook, "answers", answers)
        if dockerfile is not None:
            set_cell(notebook, "dockerfile", "%%writefile Dockerfile\n" + dockerfile)
    return write


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
# A cheat: a rebound checks module, and an added cell patching the report and writing on the host.
CHEAT = Cheat("lifecycle", "answers", before="dockerfile")


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
    "mal": (CHEAT, 0),
    "odo": (_submission(OTHER_CELL, OTHER_SPELLING), 9),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    learner = "roundtrip-lc-" + tmp_path_factory.mktemp("id").name[-6:]
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)  # the sealed engines carry it: their resources are ours
    course = copy_course(tmp_path_factory.mktemp("course"), "lifecycle")
    result = round_trip(course, "lifecycle", {s: edit for s, (edit, _) in STUDENTS.items()})
    mp.undo()
    result.update(course=course, learner=learner)
    return result


def test_round_trip_release_hides_the_hidden_tests(graded):
    text = (graded["course"] / "release" / "lifecycle" / "lifecycle.ipynb").read_text()
    assert "HIDDEN" not in text and "assert_app_is_pid1" not in text
    for name in ("start.sh", "greeting.txt", "broken.Dockerfile"):
        assert (graded["course"] / "release" / "lifecycle" / name).is_file()


def test_round_trip_autogrades_to_the_expected_scores(graded):
    for student, result in graded["results"].items():
        assert result["success"], f"{student}: {result.get('error') or result['log'][-2000:]}"
    assert graded["scores"] == {s: float(score) for s, (_, score) in STUDENTS.items()}
    assert graded["max_scores"] == {9.0}
    assert graded["cells"]["ada"] == {f"test_{c.id}": c.points for c in lifecycle.CRITERIA}
    assert graded["cells"]["cy"]["test_keeps_running"] == 0
    assert graded["cells"]["odo"] == graded["cells"]["ada"]


def test_round_trip_runs_no_cell_of_a_submission(graded):
    CHEAT.assert_came_to_nothing(graded, "mal")


def test_round_trip_feedback_says_what_to_fix(graded):
    assert graded["feedback"]["success"], graded["feedback"].get("error")
    html = {s: feedback_html(graded["course"], "lifecycle", s) for s in STUDENTS}
    assert "different exit code" in html["bo"]
    assert "not the app&#x27;s httpd" in html["cy"] or "not the app's httpd" in html["cy"]
    assert "Exit code 0 means" in html["di"]
    assert "placeholder" in html["eve"]
    assert "still holds the placeholder" in html["mal"]
    assert "no cell that sets EXIT_CODE" in html["mal"]


def test_round_trip_leaves_nothing_labelled_behind(client, graded):
    left = labels.find_labelled(client, learner=graded["learner"])
    assert not any(left.values()), left
