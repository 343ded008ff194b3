"""The multi-stage lab on the real engine: `docklab check multistage`, and the students of its
nbgrader round trip (tests/labs/test_round_trips.py runs it from CASE).

The right answer (the solution's Dockerfile) passes every check; wrong ones lose the checks they
break: one stage only, a final stage FROM debian:12 or FROM the build stage, a program linked
dynamically on scratch, a shell-form ENTRYPOINT, a shell wrapper that splits its argument.
The build stage is the lesson's, so on the host engine the gcc layer comes from the build cache.
The round trip grades on sealed engines (SealedJudge), which have no build cache: each graded build
installs gcc through the allow-list proxy. No cell of a submission runs there, so a cheat gets
nothing, and the same build spelled another way gets full marks. Nothing is left behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from docklab.checks import multistage
from tests.labs.answers import answer_folder, hands_in, replaced, solution_cell, writefile
from tests.labs.asserts import (
    assert_fails_exactly,
    assert_nothing_labelled_left,
    assert_only_the_hidden_test_fails,
)
from tests.labs.harness import Cheat, LabCase

pytestmark = pytest.mark.engine

ALL = [c.id for c in multistage.CRITERIA]
GOOD = solution_cell("multistage", "dockerfile")
FINAL = "FROM scratch\n"
ENTRY = 'ENTRYPOINT ["/usr/local/bin/hello"]'
STAGE_ONE = GOOD[: GOOD.index("\n# Stage 2")] + "\n"


def edit(old: str, new: str) -> str:
    return replaced(GOOD, old, new)


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
    """A folder with the Dockerfile and the lab's hello.c."""
    return answer_folder(folder, "multistage", {"Dockerfile": dockerfile}, lab_files=("hello.c",))


def test_the_solution_builds_from_the_cache_and_is_tiny(tmp_path):
    report = multistage.LAB.check(answer(tmp_path / "good", GOOD))
    assert report.all_passed, report.table()
    assert report.details["size"] < 2_000_000
    assert report.details["build_seconds"] < 30  # gcc's layer is not installed again
    multistage.assert_greets_as_one_argument(tmp_path / "good")


@pytest.mark.parametrize("name", WRONG)
def test_a_wrong_answer_fails_exactly_the_checks_it_breaks(tmp_path, name):
    dockerfile, failing = WRONG[name]
    assert_fails_exactly(multistage.LAB.check(answer(tmp_path / name, dockerfile)), failing)


def test_feedback_names_the_concept(tmp_path):
    report = multistage.LAB.check(answer(tmp_path / "single", SINGLE))
    assert "one stage (one FROM)" in report["multi_stage"].feedback
    assert "/usr/bin/gcc" in report["no_compiler"].feedback
    assert "Lesson 09-multi-stage" in report["small_image"].feedback
    report = multistage.LAB.check(answer(tmp_path / "dynamic", WRONG["dynamic_on_scratch"][0]))
    assert "-static" in report["runs"].feedback


def test_the_wrapper_passes_the_visible_checks_but_not_the_hidden_test(tmp_path):
    folder = answer(tmp_path / "wrapper", WRAPPER)
    assert_only_the_hidden_test_fails(multistage.LAB, folder,
                                      multistage.assert_greets_as_one_argument, "takes_argument",
                                      "one argument", score=9)


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
    assert_nothing_labelled_left(client, lesson="grade-multistage")


# -- the nbgrader round trip (sealed; tests/labs/test_round_trips.py) ---------------------------

def _dockerfile(text: str):
    return hands_in({"dockerfile": writefile("Dockerfile", text)})


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
#: A rebound checks module, and an added cell patching the report and writing on the host.
CHEAT = Cheat("multistage", "dockerfile")

# student → (edit, expected score out of 10). Each answer that builds installs gcc on a fresh
# sealed engine: wrong answers that need no sealed engine to tell are tested above.
STUDENTS = {
    "ada": (_dockerfile(GOOD), 10),
    # a shell wrapper: the visible checks pass, the hidden test takes takes_argument's point
    "cy": (_dockerfile(WRAPPER), 9),
    "eve": (None, 0),
    "fay": (_dockerfile(OTHER), 10),
    "mal": (CHEAT, 0),
    # cy's answer, and the cheat's added cell that would patch the checks and write on the host
    "pat": (CHEAT.beside(_dockerfile(WRAPPER)), 9),
}

CASE = LabCase(
    "multistage", max_score=10, students=STUDENTS,
    right_answer=lambda folder: answer(folder, GOOD),
    not_released=("assert_greets_as_one_argument", "COPY --from=build"),
    release_files=("hello.c",),
    cells={"cy": {"test_takes_argument": 0}},
    feedback={"cy": ("one argument",), "eve": ("placeholder",), "fay": ("COPY --from=0",),
              "mal": ("no cell starting with %%writefile Dockerfile",)},
)
