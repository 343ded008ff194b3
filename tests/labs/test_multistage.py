"""The multi-stage lab on the real engine: `docklab check multistage` and the nbgrader round trip.

The right answer (the solution's Dockerfile) passes every check; wrong ones lose the checks they
break: one stage only, a final stage FROM debian:12 or FROM the build stage, a program linked
dynamically on scratch, a shell-form ENTRYPOINT, a shell wrapper that splits its argument.
The build stage is the lesson's, so on the host engine the gcc layer comes from the build cache.
The round trip grades on sealed engines (SealedJudge), which have no build cache: each graded build
installs gcc through the allow-list proxy. No cell of a submission runs there, so a cheat gets
nothing, and the same build spelled another way gets full marks. Nothing is left behind.
"""

from __future__ import annotations

import json
import shutil
import uuid
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
    # The same function, from the recorded details, is the hidden test when graded.
    hidden = multistage.LAB.check(folder, hidden=True)
    assert not hidden["takes_argument"].passed and hidden.score == 9
    assert "one argument" in hidden["takes_argument"].feedback
    assert hidden["takes_argument"].feedback.count("(Lesson ") == 1  # the hidden test's own


def test_build_feedback_speaks_of_this_lab(tmp_path):
    report = multistage.LAB.check(answer(tmp_path / "no-y", edit(" -y ", " ")))
    assert "apt-get install -y gcc libc6-dev" in report["builds"].feedback
    assert "cowsay" not in report["builds"].feedback and "moby" not in report["builds"].feedback


def test_a_changed_program_is_not_graded(tmp_path):
    folder = answer(tmp_path / "changed", GOOD)
    (folder / "hello.c").write_text('int main(void) { return 0; }\n')
    report = multistage.LAB.check(folder)
    assert report.score == 0 and "unchanged" in report["builds"].feedback


def test_checks_leave_nothing_labelled_behind(client):
    left = labels.find_labelled(client, lesson="grade-multistage")
    assert not any(left.values()), left


# -- the nbgrader round trip (sealed) ------------------------------------------------------------

def _dockerfile(text: str):
    return lambda notebook: set_cell(notebook, "dockerfile", "%%writefile Dockerfile\n" + text)


#: The same build spelled otherwise: another stage name, copied by number, one RUN that
#: installs and compiles, busybox as the final base, the program elsewhere.
OTHER = """FROM debian:12 AS compile
COPY hello.c /tmp/
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \\
 && gcc -static -O2 -o /opt/greet /tmp/hello.c
FROM busybox:latest
COPY --from=0 /opt/greet /bin/greet
ENTRYPOINT ["/bin/greet"]
"""
#: A cheat in the answer cell: an object that answers every call, would the cell run.
CHEAT = 'multistage = type("M", (), {"__getattr__": lambda s, n: lambda *a, **k: s})()'
#: A file an added cell would write on the grading host, would it run.
PWNED = Path(f"/tmp/docklab-pwned-multistage-{uuid.uuid4().hex[:8]}")


def _patches(notebook) -> None:
    _dockerfile(WRAPPER)(notebook)
    notebook.cells.insert(2, nbformat.v4.new_code_cell(
        "from docklab.checks import base\n"
        "base.Report.assert_passed = lambda *a, **k: None\n"
        f"open({str(PWNED)!r}, 'w').write('x')\n"))


# student → (edit, expected score out of 10). Each answer that builds installs gcc on a fresh
# sealed engine: wrong answers that need no sealed engine to tell are tested above.
STUDENTS = {
    "ada": (_dockerfile(GOOD), 10),
    # a shell wrapper: the visible checks pass, the hidden test takes takes_argument's point
    "cy": (_dockerfile(WRAPPER), 9),
    "eve": (None, 0),
    "fay": (_dockerfile(OTHER), 10),
    "mal": (lambda notebook: set_cell(notebook, "dockerfile", CHEAT), 0),
    # cy's answer, and an added cell that would patch the checks and write on the host
    "pat": (_patches, 9),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = copy_course(tmp_path_factory.mktemp("course"), "multistage")
    learner = "roundtrip-" + tmp_path_factory.mktemp("id").name[-6:]
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)
    try:
        result = round_trip(course, "multistage", {s: e for s, (e, _) in STUDENTS.items()})
        yield {**result, "course": course, "learner": learner}
    finally:
        mp.undo()
        PWNED.unlink(missing_ok=True)


def test_round_trip_scores(graded):
    for student, result in graded["results"].items():
        assert result["success"], f"{student}: {result.get('error') or result['log'][-2000:]}"
    assert graded["scores"] == {s: float(score) for s, (_, score) in STUDENTS.items()}, \
        graded["cells"]
    assert graded["max_scores"] == {10.0}
    assert graded["cells"]["cy"]["test_takes_argument"] == 0
    for student in ("ada", "fay"):
        assert graded["cells"][student] == {f"test_{c.id}": c.points
                                            for c in multistage.CRITERIA}
    print(f"multistage round trip ({len(STUDENTS)} submissions): {graded['seconds']:.1f} s")


def test_round_trip_runs_no_cell_of_a_submission(graded):
    assert not PWNED.exists()
    for student in ("mal", "pat"):
        assert "Judging multistage" in graded["results"][student]["log"]
    assert "no cell starting with %%writefile Dockerfile" in feedback_html(
        graded["course"], "multistage", "mal")


def test_round_trip_release_has_no_solution_or_hidden_test(graded):
    text = (graded["course"] / "release" / "multistage" / "multistage.ipynb").read_text()
    assert "assert_greets_as_one_argument" not in text and "COPY --from=build" not in text
    assert (graded["course"] / "release" / "multistage" / "hello.c").is_file()


def test_round_trip_feedback(graded):
    assert graded["feedback"]["success"], graded["feedback"].get("error")
    course = graded["course"]
    assert "one argument" in feedback_html(course, "multistage", "cy")
    assert "placeholder" in feedback_html(course, "multistage", "eve")
    assert "COPY --from=0" in feedback_html(course, "multistage", "fay")


def test_round_trip_leaves_nothing_behind(client, graded):
    left = labels.find_labelled(client, learner=graded["learner"])
    assert not any(left.values()), left  # the sealed engines carry the learner's labels too
