"""The multi-stage lab on the real engine: `docklab check multistage` and the nbgrader round trip.

The right answer (the solution's Dockerfile) passes every check; wrong ones lose the checks they
break: one stage only, a final stage FROM debian:12 or FROM the build stage, a program linked
dynamically on scratch, a shell-form ENTRYPOINT, a shell wrapper that splits its argument.
The build stage is the lesson's, so the gcc layer comes from the build cache. Nothing is left behind.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from docklab import labels
from docklab.checks import multistage
from tests.conftest import run_docklab
from tests.labs.roundtrip import copy_course, feedback_html, round_trip, set_cell

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = ROOT / "solutions" / "multistage" / "multistage.ipynb"
ALL = [c.id for c in multistage.CRITERIA]


def _solution_dockerfile() -> str:
    notebook = nbformat.read(SOLUTION, as_version=4)
    source = next(c.source for c in notebook.cells if c.get("id") == "dockerfile")
    return source.partition("\n")[2] + "\n"


GOOD = _solution_dockerfile()
FINAL = "FROM scratch\n"
ENTRY = 'ENTRYPOINT ["/usr/local/bin/hello"]'
STAGE_ONE = GOOD[: GOOD.index("\n# Stage 2")] + "\n"


def edit(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new)


SINGLE = STAGE_ONE.replace("FROM debian:12 AS build", "FROM debian:12") + ENTRY + "\n"
WRAPPER = edit(FINAL, "FROM busybox\n").replace(
    ENTRY, 'ENTRYPOINT ["sh", "-c", "/usr/local/bin/hello $1", "--"]')

# name → (Dockerfile, the checks that must fail)
WRONG = {
    "single_stage": (SINGLE, {"multi_stage", "small_image", "no_compiler"}),
    "final_from_debian": (edit(FINAL, "FROM debian:12\n"), {"small_image"}),
    "final_from_build_stage": (edit(FINAL, "FROM build\n"), {"small_image", "no_compiler"}),
    "dynamic_on_scratch": (edit(" -static", ""), {"runs", "takes_argument"}),
    "shell_form_on_busybox": (edit(FINAL, "FROM busybox\n").replace(
        ENTRY, "ENTRYPOINT /usr/local/bin/hello"), {"takes_argument"}),
    "does_not_build": (edit("gcc -Wall", "gcc --no-such-flag -Wall"),
                       set(ALL)),
}


def answer(folder: Path, dockerfile: str) -> Path:
    folder.mkdir()
    shutil.copy(ROOT / "grader" / "source" / "multistage" / "hello.c", folder)
    (folder / "Dockerfile").write_text(dockerfile)
    return folder


def test_the_solution_passes_every_check(tmp_path):
    result = run_docklab("check", "multistage", str(answer(tmp_path / "good", GOOD)), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["lab"] == "multistage" and report["score"] == report["max_score"] == 10
    assert [c["id"] for c in report["checks"]] == ALL


def test_the_solution_builds_from_the_cache_and_is_tiny(tmp_path):
    report = multistage.LAB.check(answer(tmp_path / "good", GOOD))
    assert report.all_passed, report.table()
    assert report.details["size"] < 2_000_000
    assert report.details["build_seconds"] < 30  # gcc's layer is not installed again
    multistage.assert_greets_as_one_argument(tmp_path / "good")


@pytest.mark.parametrize("name", WRONG)
def test_a_wrong_answer_fails_exactly_the_checks_it_breaks(tmp_path, name):
    dockerfile, failing = WRONG[name]
    report = multistage.LAB.check(answer(tmp_path / name, dockerfile))
    assert {c.id for c in report.checks if not c.passed} == failing, report.table()
    for check in report.checks:
        if not check.passed:
            assert check.feedback, check.id


def test_feedback_names_the_concept(tmp_path):
    report = multistage.LAB.check(answer(tmp_path / "single", SINGLE))
    assert "one stage (one FROM)" in report["multi_stage"].feedback
    assert "/usr/bin/gcc" in report["no_compiler"].feedback
    assert "Lesson 09-multi-stage" in report["small_image"].feedback
    report = multistage.LAB.check(answer(tmp_path / "dynamic", WRONG["dynamic_on_scratch"][0]))
    assert "-static" in report["runs"].feedback


def test_the_wrapper_passes_the_visible_checks_but_not_the_hidden_test(tmp_path):
    folder = answer(tmp_path / "wrapper", WRAPPER)
    report = multistage.LAB.check(folder)
    assert report.all_passed, report.table()
    with pytest.raises(AssertionError, match="one argument"):
        multistage.assert_greets_as_one_argument(folder)


def test_a_changed_program_is_not_graded(tmp_path):
    folder = answer(tmp_path / "changed", GOOD)
    (folder / "hello.c").write_text('int main(void) { return 0; }\n')
    report = multistage.LAB.check(folder)
    assert report.score == 0 and "unchanged" in report["builds"].feedback


def test_checks_leave_nothing_labelled_behind(client):
    left = labels.find_labelled(client, lesson="grade-multistage")
    assert not any(left.values()), left


# -- the nbgrader round trip --------------------------------------------------------------------

def _dockerfile(text: str):
    return lambda notebook: set_cell(notebook, "dockerfile", "%%writefile Dockerfile\n" + text)


# student → (edit, expected score out of 10)
STUDENTS = {
    "ada": (_dockerfile(GOOD), 10),
    # the single-stage Dockerfile handed in as it was: multi_stage, small_image, no_compiler fail
    "bo": (_dockerfile(SINGLE), 4),
    # a shell wrapper: the visible checks pass, the hidden test takes takes_argument's point
    "cy": (_dockerfile(WRAPPER), 9),
    # the final stage FROM debian:12: too big
    "di": (_dockerfile(WRONG["final_from_debian"][0]), 8),
    "eve": (None, 0),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = copy_course(tmp_path_factory.mktemp("course"), "multistage")
    learner = "roundtrip-" + tmp_path_factory.mktemp("id").name[-6:]
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)  # the kernels inherit it: their resources are ours
    result = round_trip(course, "multistage", {s: e for s, (e, _) in STUDENTS.items()})
    yield {**result, "course": course, "learner": learner}
    mp.undo()


def test_round_trip_scores(graded):
    for student, result in graded["results"].items():
        assert result["success"], f"{student}: {result.get('error') or result['log'][-2000:]}"
    assert graded["scores"] == {s: float(score) for s, (_, score) in STUDENTS.items()}
    assert graded["max_scores"] == {10.0}
    assert graded["cells"]["cy"]["test_takes_argument"] == 0
    assert graded["cells"]["ada"] == {f"test_{c.id}": c.points for c in multistage.CRITERIA}
    print(f"multistage round trip: {graded['seconds']:.1f} s")


def test_round_trip_release_has_no_solution_or_hidden_test(graded):
    text = (graded["course"] / "release" / "multistage" / "multistage.ipynb").read_text()
    assert "assert_greets_as_one_argument" not in text and "COPY --from=build" not in text
    assert (graded["course"] / "release" / "multistage" / "hello.c").is_file()


def test_round_trip_feedback(graded):
    assert graded["feedback"]["success"], graded["feedback"].get("error")
    course = graded["course"]
    assert "one stage (one FROM)" in feedback_html(course, "multistage", "bo")
    assert "one argument" in feedback_html(course, "multistage", "cy")
    assert "placeholder" in feedback_html(course, "multistage", "eve")


def test_round_trip_leaves_nothing_behind(client, graded):
    left = labels.find_labelled(client, learner=graded["learner"])
    assert not any(left.values()), left
