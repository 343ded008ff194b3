"""The mobysay lab on the real engine: `docklab check mobysay` on right and wrong answers, and the
students of its nbgrader round trip (tests/labs/test_round_trips.py runs it from CASE).

The wrong answers are the mistakes the lesson's slides warn about (shell-form ENTRYPOINT, CMD instead
of ENTRYPOINT, JSON that does not parse, ENV instead of ARG, a separate `apt-get update`, no PATH, a
base without apt), plus hostile ones (no Dockerfile, a build or a container that never ends or
prints without end, COPY from outside the context, a link pointing outside, a fork bomb). Every one
gets a score and feedback, in bounded time, and leaves nothing labelled behind.

In the round trip a wrong answer loses the points of the checks it breaks, and the hidden tests
take what the visible ones let through.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import docker.errors
import pytest

from docklab import labels
from docklab.checks import mobysay
from docklab.checks.answer import dockerfile_from_notebook
from docklab.checks.sandbox import Limits
from tests.conftest import run_docklab
from tests.labs.answers import answer_folder, hands_in, replaced, writefile
from tests.labs.asserts import assert_nothing_labelled_left, failing
from tests.labs.harness import Cheat, LabCase

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
COW = ROOT / "grader" / "source" / "mobysay" / "moby.cow"
ALL = [c.id for c in mobysay.CRITERIA]
GOOD, _ = dockerfile_from_notebook(ROOT / "solutions" / "mobysay" / "mobysay.ipynb")
EXEC_FORM = 'ENTRYPOINT ["cowsay", "-f", "moby.cow"]'
NOT_JUDGED = set(ALL)  # every check fails when the image does not build


def edit(old: str, new: str) -> str:
    return replaced(GOOD, old, new)


# A shell wrapper: passes the visible custom_message test, but the hidden test sees the shell
# expand the message (a lone * becomes file names); entrypoint_exec_form fails too.
WRAPPER = edit(EXEC_FORM, 'ENTRYPOINT ["sh", "-c", "cowsay -f moby.cow $*", "--"]')


def answer(folder: Path, dockerfile: str | None) -> Path:
    """A folder with the Dockerfile (None: none) and the lab's moby.cow."""
    return answer_folder(folder, "mobysay", {"Dockerfile": dockerfile}, lab_files=("moby.cow",))


# name → (Dockerfile, the checks that must fail, words the feedback of the first must contain)
WRONG = {
    "shell_form_entrypoint": (
        edit(EXEC_FORM, "ENTRYPOINT cowsay -f moby.cow"),
        {"default_message", "custom_message", "entrypoint_exec_form"},
        "shell-form ENTRYPOINT ignores CMD"),
    "cmd_instead_of_entrypoint": (
        edit(EXEC_FORM + '\nCMD ["Whale hello there"]',
             'CMD ["cowsay", "-f", "moby.cow", "Whale hello there"]'),
        {"custom_message", "entrypoint_exec_form"},
        "Docker tries to run the message itself"),
    "broken_json_exec_form": (
        edit(EXEC_FORM, "ENTRYPOINT [\"cowsay\", \"-f\", 'moby.cow']"),
        {"default_message", "custom_message", "entrypoint_exec_form"},
        "not valid JSON"),
    "env_instead_of_arg": (
        edit("ARG DEBIAN_FRONTEND", "ENV DEBIAN_FRONTEND"),
        {"frontend_is_arg"},
        "ARG DEBIAN_FRONTEND=noninteractive only lasts during the build"),
    "arg_after_the_run": (
        edit("ARG DEBIAN_FRONTEND=noninteractive\n", "").replace(
            "COPY moby.cow", "ARG DEBIAN_FRONTEND=noninteractive\nCOPY moby.cow"),
        {"frontend_is_arg"},
        "apt never saw it"),
    "separate_update_run": (
        edit("RUN apt-get update \\\n && apt-get install",
             "RUN apt-get update\nRUN apt-get install"),
        {"apt_chained"},
        "cached"),
    "path_missing": (
        edit("ENV PATH=$PATH:/usr/games\n", ""),
        {"path_has_games", "default_message", "custom_message"},
        "without /usr/games"),
    "path_replaced": (
        edit("ENV PATH=$PATH:/usr/games", "ENV PATH=/usr/games"),
        {"path_has_games"},
        "ENV PATH=/usr/games replaces PATH"),
    "message_inside_entrypoint": (
        edit(EXEC_FORM + '\nCMD ["Whale hello there"]',
             'ENTRYPOINT ["cowsay", "-f", "moby.cow", "Whale hello there"]'),
        {"custom_message"},
        "added to"),
    "cowfile_in_the_wrong_folder": (
        edit("COPY moby.cow /usr/share/cowsay/cows/", "COPY moby.cow /usr/share/cowsay/"),
        {"cowfile_installed", "default_message", "custom_message"},
        "is not at /usr/share/cowsay/cows/moby.cow"),
    "busybox_base": (
        edit("FROM debian:12", "FROM busybox"),
        NOT_JUDGED,
        "no apt-get"),
    "install_without_yes": (
        edit("install -y", "install"),
        NOT_JUDGED,
        "Add -y"),
    "run_floods_the_build": (
        edit("COPY moby.cow", "RUN yes\nCOPY moby.cow"),
        NOT_JUDGED,
        "printed more than"),
    "entrypoint_floods": (
        edit(EXEC_FORM, 'ENTRYPOINT ["yes"]'),
        {"default_message", "custom_message", "entrypoint_exec_form"},
        "printed more than"),
}


@pytest.fixture(scope="module", autouse=True)
def course_images(client):
    for name in ("debian:12", "busybox"):
        try:
            client.images.get(name)
        except docker.errors.ImageNotFound:
            pytest.fail(f"the course image {name} is missing: run `docklab images prepare`")


@pytest.fixture
def grade(client, learner_env, tmp_path):
    """Grade a Dockerfile (in a folder with the lab's moby.cow); check nothing is left behind."""
    def _grade(dockerfile: str | None, *, limits: Limits | None = None, cow: bytes | None = None,
               setup=None):
        if setup or cow is not None:
            folder = answer_folder(tmp_path / "answer", "mobysay",
                                   {"Dockerfile": dockerfile, "moby.cow": cow})
        else:
            folder = answer(tmp_path / "answer", dockerfile)
        if setup:
            setup(folder)
        started = time.monotonic()
        report = mobysay.LAB.check(folder, limits=limits or Limits(run_timeout=10))
        report.details["seconds"] = time.monotonic() - started
        assert_nothing_labelled_left(client, lesson="grade-mobysay", learner=learner_env)
        for short_id in report.details.get("build_containers", []):
            with pytest.raises(docker.errors.NotFound):
                client.containers.get(short_id)
        return report

    return _grade


def test_the_solution_passes_every_check(grade):
    report = grade(GOOD)
    assert failing(report) == set(), report.table()
    assert report.score == report.max_score == 10


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answers_fail_exactly_the_checks_they_break(grade, name):
    dockerfile, expected, words = WRONG[name]
    report = grade(dockerfile)
    assert failing(report) == expected, report.table()
    first = next(check for check in report.checks if check.id in expected and check.judged)
    assert not first.feedback.startswith("Not judged"), report.table()
    assert words in first.feedback, report.table()
    assert report.score == report.max_score - sum(report[i].points for i in expected)


def test_a_changed_cowfile_is_noticed(grade):
    report = grade(GOOD, cow=COW.read_bytes().replace(b"[==][==][==]", b"[==][==][##]"))
    assert failing(report) == {"cowfile_installed", "default_message", "custom_message"}
    assert "not the lab's moby.cow" in report["cowfile_installed"].feedback


def test_a_wrong_base_that_builds_fails_base_debian(grade, client, learner_env):
    tag = f"docklab-test-notdebian:{uuid.uuid4().hex[:8]}"
    client.images.build(fileobj=__import__("io").BytesIO(b"FROM debian:12\nLABEL x=y\n"),
                        tag=tag, rm=True, forcerm=True,
                        labels=labels.labels_for("test-labs", kind="image"))
    try:
        report = grade(edit("FROM debian:12", f"FROM {tag}"))
    finally:
        labels.remove_labelled(client, lesson="test-labs", learner=learner_env)
    assert failing(report) == {"base_debian"}, report.table()
    assert tag in report["base_debian"].feedback


def test_no_dockerfile_gets_a_score_and_feedback(grade):
    report = grade(None)
    assert failing(report) == NOT_JUDGED and report.score == 0
    assert "no Dockerfile" in report["builds"].feedback
    assert report["custom_message"].feedback.startswith("Not judged")
    assert not report["custom_message"].judged


def test_a_link_pointing_outside_the_context_brings_nothing_in(grade):
    report = grade(GOOD, setup=lambda folder: os.symlink("/etc/passwd", folder / "moby.cow"))
    assert failing(report) == NOT_JUDGED
    assert "build context" in report["builds"].feedback


def test_copy_from_outside_the_context_grades_as_the_builder_builds_it(grade):
    report = grade(edit("COPY moby.cow", "COPY ../moby.cow"))
    if report.details["builder"] == "buildkit":
        # BuildKit reads ../moby.cow inside the context, as the learner's `docker build` does.
        assert failing(report) == set(), report.table()
    else:
        assert failing(report) == NOT_JUDGED
        assert "outside" in report["builds"].feedback


def test_a_build_that_never_ends_is_stopped_and_removed(grade, client):
    marker = f"sleep 1000 # {uuid.uuid4().hex}"
    report = grade(edit("COPY moby.cow", f"RUN {marker}\nCOPY moby.cow"),
                   limits=Limits(build_timeout=8))
    assert failing(report) == NOT_JUDGED
    assert "did not finish within 8 s" in report["builds"].feedback
    assert report.details["seconds"] < 60
    if report.details["builder"] == "legacy":
        assert report.details["build_containers"], "the step's container was seen"
    # (BuildKit's steps are no engine containers; tests/integration/test_sandbox_builders.py
    # looks for the step's process on the engine's host.)
    still = [c for c in client.containers.list(all=True, ignore_removed=True)
             if marker in " ".join(c.attrs["Config"].get("Cmd") or [])]
    assert still == []


def test_a_container_that_never_ends_is_killed(grade):
    report = grade(edit(EXEC_FORM, 'ENTRYPOINT ["sh", "-c", "sleep 1000", "--"]'),
                   limits=Limits(run_timeout=4))
    assert failing(report) == {"default_message", "custom_message", "entrypoint_exec_form"}
    assert "still running after 4 s" in report["default_message"].feedback
    assert report.details["seconds"] < 60


def test_a_fork_bomb_in_a_build_is_bounded(grade):
    bomb = "RUN i=0; while [ $i -lt 2000 ]; do sleep 60 & i=$((i+1)); done; wait"
    report = grade(edit("COPY moby.cow", f"{bomb}\nCOPY moby.cow"),
                   limits=Limits(build_timeout=20, pids=128))
    assert failing(report) == NOT_JUDGED
    if report.details.get("build_pids_bounded"):
        # cgroup v1 + cgroupfs: the build's pids budget stops it at once.
        assert "Cannot fork" in report["builds"].feedback or "fork" in report["builds"].feedback
        assert report.details["seconds"] < 20
    else:
        assert "did not finish" in report["builds"].feedback


def test_docklab_check_names_the_failing_check(tmp_path, learner_env):
    shell = run_docklab("check", "mobysay", str(answer(
        tmp_path / "shell", WRONG["shell_form_entrypoint"][0])))
    assert shell.returncode == 1
    assert "FAIL  entrypoint_exec_form" in shell.stdout and "Traceback" not in shell.stderr


def test_the_visible_checks_alone_would_pass_the_wrapper(tmp_path):
    report = mobysay.LAB.check(answer(tmp_path / "wrapper", WRAPPER))
    assert report["custom_message"].passed and not report["entrypoint_exec_form"].passed
    assert report.score == 9  # the hidden test makes the difference in nbgrader (7)


# -- the nbgrader round trip (tests/labs/test_round_trips.py) -----------------------------------

def _dockerfile(text: str):
    return hands_in({"dockerfile": writefile("Dockerfile", text)})


# student → (submission, expected score out of 10)
STUDENTS = {
    "ada": (_dockerfile(GOOD), 10),
    # shell form: default_message, custom_message (2), entrypoint_exec_form fail
    "bo": (_dockerfile(WRONG["shell_form_entrypoint"][0]), 6),
    # ENV instead of ARG, and apt-get update in its own RUN
    "cy": (_dockerfile(replaced(WRONG["env_instead_of_arg"][0],
                                "RUN apt-get update \\\n && apt-get install",
                                "RUN apt-get update\nRUN apt-get install")), 8),
    "di": (_dockerfile(WRAPPER), 7),
    "eve": (None, 0),
    "mal": (Cheat("mobysay", "dockerfile"), 0),
}

CASE = LabCase(
    "mobysay", max_score=10, students=STUDENTS,
    right_answer=lambda folder: answer(folder, GOOD),
    not_released=("HIDDEN", "assert_says"), release_files=("moby.cow",),
    cells={
        # each check is one graded cell, worth its points
        "ada": {"test_builds": 1, "test_base_debian": 1, "test_frontend_is_arg": 1,
                "test_apt_chained": 1, "test_cowfile_installed": 1, "test_path_has_games": 1,
                "test_default_message": 1, "test_custom_message": 2,
                "test_entrypoint_exec_form": 1},
        "cy": {"test_frontend_is_arg": 0, "test_apt_chained": 0},
        # the hidden test, not the visible one, takes di's custom_message points
        "di": {"test_custom_message": 0},
    },
    feedback={"bo": ("shell-form ENTRYPOINT ignores CMD",),
              "cy": ("only lasts during the build", "cached"),
              "eve": ("placeholder",)},
)
