"""`docklab check mobysay` on the real engine: right answers pass, wrong ones fail the right checks.

The wrong answers are the mistakes the lesson's slides warn about (shell-form ENTRYPOINT, CMD instead
of ENTRYPOINT, JSON that does not parse, ENV instead of ARG, a separate `apt-get update`, no PATH, a
base without apt), plus hostile ones (no Dockerfile, a build or a container that never ends or
prints without end, COPY from outside the context, a link pointing outside, a fork bomb). Every one
gets a score and feedback, in bounded time, and leaves nothing labelled behind.
"""

from __future__ import annotations

import json
import os
import shutil
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

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
COW = ROOT / "grader" / "source" / "mobysay" / "moby.cow"
ALL = [c.id for c in mobysay.CRITERIA]
GOOD, _ = dockerfile_from_notebook(ROOT / "solutions" / "mobysay" / "mobysay.ipynb")
EXEC_FORM = 'ENTRYPOINT ["cowsay", "-f", "moby.cow"]'
NOT_JUDGED = set(ALL)  # every check fails when the image does not build


def edit(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new)


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
        "ENV PATH=$PATH:/usr/games extends"),
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
    "copy_from_outside_the_context": (
        edit("COPY moby.cow", "COPY ../moby.cow"),
        NOT_JUDGED,
        "outside"),
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
        folder = tmp_path / "answer"
        folder.mkdir(exist_ok=True)
        if dockerfile is not None:
            (folder / "Dockerfile").write_text(dockerfile)
        if setup:
            setup(folder)
        elif cow is not None:
            (folder / "moby.cow").write_bytes(cow)
        else:
            shutil.copy(COW, folder / "moby.cow")
        started = time.monotonic()
        report = mobysay.LAB.check(folder, limits=limits or Limits(run_timeout=10))
        report.details["seconds"] = time.monotonic() - started
        left = labels.find_labelled(client, lesson="grade-mobysay", learner=learner_env)
        assert not any(left.values()), f"left behind: {left}"
        for short_id in report.details.get("build_containers", []):
            with pytest.raises(docker.errors.NotFound):
                client.containers.get(short_id)
        return report

    return _grade


def failing(report) -> set[str]:
    return {check.id for check in report.checks if not check.passed}


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


def test_a_build_that_never_ends_is_stopped_and_removed(grade, client):
    marker = f"sleep 1000 # {uuid.uuid4().hex}"
    report = grade(edit("COPY moby.cow", f"RUN {marker}\nCOPY moby.cow"),
                   limits=Limits(build_timeout=8))
    assert failing(report) == NOT_JUDGED
    assert "did not finish within 8 s" in report["builds"].feedback
    assert report.details["seconds"] < 60
    assert report.details["build_containers"], "the step's container was seen"
    still = [c for c in client.containers.list(all=True)
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


def test_docklab_check_cli_json_on_a_folder(tmp_path, learner_env):
    for name, text in (("good", GOOD), ("shell", WRONG["shell_form_entrypoint"][0])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text(text)
        shutil.copy(COW, tmp_path / name)
    good = run_docklab("check", "mobysay", str(tmp_path / "good"), "--json")
    assert good.returncode == 0, good.stderr
    data = json.loads(good.stdout)
    assert (data["lab"], data["score"], data["max_score"]) == ("mobysay", 10, 10)
    assert [c["id"] for c in data["checks"]] == ALL
    assert set(data["checks"][0]) == {"id", "passed", "points", "feedback"}
    shell = run_docklab("check", "mobysay", str(tmp_path / "shell"))
    assert shell.returncode == 1
    assert "FAIL  entrypoint_exec_form" in shell.stdout and "Traceback" not in shell.stderr


def test_docklab_check_cli_on_notebooks(learner_env):
    solved = run_docklab("check", "mobysay", str(ROOT / "solutions/mobysay/mobysay.ipynb"),
                         "--json")
    assert solved.returncode == 0, solved.stdout + solved.stderr
    assert json.loads(solved.stdout)["score"] == 10
    untouched = run_docklab("check", "mobysay", str(ROOT / "labs/mobysay/mobysay.ipynb"),
                            "--json")
    assert untouched.returncode == 1
    report = json.loads(untouched.stdout)
    assert report["score"] == 0
    assert "placeholder" in report["checks"][0]["feedback"]
