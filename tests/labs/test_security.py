"""The security lab on the real engine: `docklab check security` on a Dockerfile and a run.sh (the
`docker run` line, read as data), and the students of its nbgrader round trip
(tests/labs/test_round_trips.py runs it from CASE).

The right answer (the solution's Dockerfile and run.sh) passes every check, spelled another way
too; wrong ones lose the checks they break: root, a writable root filesystem with default
capabilities, a read-only root without the tmpfs the service needs, a capability added back, a
line the docker CLI itself refuses, an option it does not know. Hostile scripts start nothing and
get the build's point only, with feedback naming the line: shell syntax (`;`, `$(...)`,
backquotes), another program, `docker -H`, another image, a command replacing the service's, and
the options that would undo the hardening or reach the host (`--privileged`, `--cap-add
SYS_ADMIN`, `-v /:/host`, `--pid host`, `--network host`, `--security-opt seccomp=unconfined`,
`--use-api-socket`). No shell ever runs a script (a marker file it would create never exists).
The round trip grades on sealed engines (SealedJudge): no cell of a submission runs, so a cheat in
an answer cell or an added cell gets nothing. Nothing is left behind.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from docklab.checks import security
from tests.labs.answers import answer_folder, hands_in, replaced, solution_cell, writefile
from tests.labs.asserts import (
    assert_fails_saying,
    assert_nothing_labelled_left,
    assert_only_the_hidden_test_fails,
    check_each,
)
from tests.labs.harness import Cheat, LabCase

pytestmark = pytest.mark.engine

ALL = [c.id for c in security.CRITERIA]
RUNTIME = set(ALL) - {"builds"}
HARDENING = "--read-only --tmpfs /tmp:size=16m --cap-drop ALL --security-opt no-new-privileges"
GOOD_RUN = solution_cell("security", "run")
GOOD_DOCKERFILE = solution_cell("security", "dockerfile")
ROOT_DOCKERFILE = replaced(GOOD_DOCKERFILE, "USER 10001:10001\n", "")
#: What a shell would create if it ran a hostile script: it must never exist.
MARKER = Path(f"/tmp/docklab-security-script-ran-{uuid.uuid4().hex[:8]}")


def run(options: str = HARDENING, image: str = "security-lab", before: str = "") -> str:
    """A script: ``before``, then ``docker run -d --name security-lab OPTIONS IMAGE``."""
    return " ".join(f"{before}docker run -d --name security-lab {options} {image}".split()) + "\n"


#: The same hardening, spelled otherwise: continuations, `docker container run`, --opt=value,
#: capability names in lower case, no-new-privileges:true, more tmpfs options, a published port
#: (grading needs none, and takes none), the tagged image.
SPELLED_OTHERWISE = """#!/bin/sh
# the service, hardened
docker container run --detach \\
  --name=security-lab -p 8080:8080 \\
  --cap-drop=all --security-opt=no-new-privileges:true \\
  --tmpfs /tmp:size=8m,mode=1777 --read-only \\
  security-lab:latest
"""


def answer(folder: Path, dockerfile: str, script: str | None) -> Path:
    """A folder with the Dockerfile, run.sh (None: none) and the lab's app.py."""
    return answer_folder(folder, "security", {"Dockerfile": dockerfile, "run.sh": script},
                         lab_files=("app.py",))


# name → (Dockerfile, run.sh, the checks that must fail, words in the first failing one's
#         feedback)
ANSWERS = {
    "good": (GOOD_DOCKERFILE, GOOD_RUN, set(), ""),
    "spelled_otherwise": (GOOD_DOCKERFILE, SPELLED_OTHERWISE, set(), ""),
    # wrong: what the lesson warns about
    "runs_as_root": (ROOT_DOCKERFILE, GOOD_RUN, {"runs_non_root"}, "uid 0"),
    # --user 0 undoes the image's USER: run options win over the image's configuration
    "user_root": (GOOD_DOCKERFILE, run(f"--user 0 {HARDENING}"), {"runs_non_root"},
                  "the user is '0', which is root"),
    "nothing_hardened": (GOOD_DOCKERFILE, run(""),
                         {"read_only_root", "tmp_is_tmpfs", "caps_dropped", "no_new_privileges"},
                         "ReadonlyRootfs is false"),
    "read_only_without_tmpfs": (GOOD_DOCKERFILE, run(replaced(HARDENING, "--tmpfs /tmp:size=16m",
                                                              "")),
                                {"tmp_is_tmpfs", "serves"}, "--tmpfs /tmp"),
    "capability_added_back": (GOOD_DOCKERFILE, run(f"{HARDENING} --cap-add NET_BIND_SERVICE"),
                              {"caps_dropped"}, "NET_BIND_SERVICE are added back"),
    "new_privileges_allowed": (GOOD_DOCKERFILE,
                               run(replaced(HARDENING, "no-new-privileges",
                                            "no-new-privileges:false")),
                               {"no_new_privileges"}, "no-new-privileges is not set"),
    # the docker CLI itself refuses the line: no container, the CLI's words
    "cli_refuses": (GOOD_DOCKERFILE, run(replaced(HARDENING, "--read-only", "--read-only=yes")),
                    RUNTIME, 'invalid argument "yes" for "--read-only'),
    "unknown_option": (GOOD_DOCKERFILE, run(replaced(HARDENING, "--read-only", "--readonly")),
                       RUNTIME, "`--readonly` is not an option"),
    "no_run_sh": (GOOD_DOCKERFILE, None, RUNTIME, "%%writefile run.sh"),
    "placeholder": (GOOD_DOCKERFILE, "raise NotImplementedError()\n", RUNTIME, "placeholder"),
    "no_docker_run": (GOOD_DOCKERFILE, "# nothing yet\n", RUNTIME, "no docker run of"),
    # hostile: refused, nothing starts
    "privileged": (GOOD_DOCKERFILE, run(f"--privileged {HARDENING}"), RUNTIME,
                   "`--privileged` gives the container every capability"),
    "sys_admin": (GOOD_DOCKERFILE, run(f"{HARDENING} --cap-add SYS_ADMIN"), RUNTIME,
                  "`--cap-add SYS_ADMIN` asks for more"),
    "host_root": (GOOD_DOCKERFILE, run(f"-v /:/host {HARDENING}"), RUNTIME,
                  "`--volume` mounts something"),
    "host_pids": (GOOD_DOCKERFILE, run(f"--pid host {HARDENING}"), RUNTIME,
                  "`--pid` shares the host's processes"),
    "host_network": (GOOD_DOCKERFILE, run(f"--network host {HARDENING}"), RUNTIME,
                     "--network host would share"),
    "seccomp_off": (GOOD_DOCKERFILE,
                    run(f"{HARDENING} --security-opt seccomp=unconfined"), RUNTIME,
                    "`--security-opt seccomp=unconfined`"),
    "api_socket": (GOOD_DOCKERFILE, run(f"--use-api-socket {HARDENING}"), RUNTIME,
                   "the engine's API socket"),
    "semicolon": (GOOD_DOCKERFILE, GOOD_RUN.rstrip() + f"; touch {MARKER}\n", RUNTIME,
                  "`;` is shell syntax"),
    "substitution": (GOOD_DOCKERFILE, run(f"{HARDENING} --user $(touch {MARKER})"), RUNTIME,
                     "`$` is shell syntax"),
    "backquotes": (GOOD_DOCKERFILE, run(f"{HARDENING} --label x=`touch {MARKER}`"), RUNTIME,
                   "shell syntax"),
    "not_docker": (GOOD_DOCKERFILE, f"touch {MARKER}\n" + GOOD_RUN, RUNTIME, "`touch` is not docker"),
    "other_engine": (GOOD_DOCKERFILE, run().replace("docker run", "docker -H tcp://127.0.0.1:2375 run"),
                     RUNTIME, "`-H` comes before the command"),
    "other_image": (GOOD_DOCKERFILE, run(image="python:3.11-slim"), RUNTIME,
                    "grading runs only the lab's image"),
    "own_command": (GOOD_DOCKERFILE, run(image="security-lab python -m http.server 8080"),
                    RUNTIME, "replaces the service's own command"),
    "second_container": (GOOD_DOCKERFILE, GOOD_RUN + run(""), RUNTIME, "a second docker run"),
}


def _folder(root: Path, name: str) -> Path:
    dockerfile, script, _, _ = ANSWERS[name]
    return answer(root / name, dockerfile, script)


@pytest.fixture(scope="module")
def reports(client, tmp_path_factory):
    """Every answer graded once, three side by side; nothing labelled may be left behind."""
    root = tmp_path_factory.mktemp("answers")
    folders = {name: _folder(root, name) for name in ANSWERS}
    graded, _ = check_each(client, "security", folders)
    return {"reports": graded, "folders": folders}


@pytest.mark.parametrize("name", ["good", "spelled_otherwise"])
def test_right_answers_pass_every_check(reports, name):
    report = reports["reports"][name]
    assert report.all_passed, report.table()
    assert report.score == report.max_score == 11
    assert report.details["command"]["status"] == 0
    assert [a.split(":")[-1].strip() for a in report.details["answers"]] == ["visit 1", "visit 2"]


@pytest.mark.parametrize("name", [n for n, (_, _, bad, _) in ANSWERS.items() if bad])
def test_wrong_answers_fail_exactly_the_checks_they_break(reports, name):
    _, _, expected, words = ANSWERS[name]
    assert_fails_saying(reports["reports"][name], expected, words, "06-security")


REFUSED = [name for name, (_, _, bad, words) in ANSWERS.items()
           if bad == RUNTIME and name not in ("cli_refuses", "no_run_sh", "placeholder")]


def test_refused_scripts_start_nothing_and_no_shell_ever_runs_one(reports):
    assert not MARKER.exists()
    for name in REFUSED:
        report = reports["reports"][name]
        assert report["builds"].passed and report.score == 1, name
        assert "was not run, none of it" in report["serves"].feedback, name
        assert "command" not in report.details and "answers" not in report.details, name


def test_the_cli_runs_the_line_and_its_refusal_is_the_feedback(reports):
    report = reports["reports"]["cli_refuses"]
    assert report.details["command"]["status"] != 0
    assert "the container did not start: the docker CLI said:" in report["serves"].feedback
    assert "Usage:" not in report["serves"].feedback
    # grading's names never reach the learner: their image and container names do
    assert "docklab-grade-" not in report["serves"].feedback
    assert "sha256:" not in report["serves"].feedback


def test_grading_adds_no_hardening_of_its_own(reports):
    # the script hardens nothing: grading's usual --cap-drop ALL and no-new-privileges must not
    # make it pass
    report = reports["reports"]["nothing_hardened"]
    assert "drops nothing instead of ALL" in report["caps_dropped"].feedback
    assert report["serves"].passed and report["runs_non_root"].passed


def test_the_user_may_come_from_run_sh_alone(tmp_path):
    # The visible check accepts it; the hidden test (the image's own USER) does not.
    folder = answer(tmp_path / "script-user", ROOT_DOCKERFILE, run(f"--user 10001 {HARDENING}"))
    assert_only_the_hidden_test_fails(security.LAB, folder, security.assert_image_not_root,
                                      "runs_non_root", "Not root in the first place", score=9)


def test_the_hidden_test_knows_users_by_name():
    assert security.image_not_root({"image_user": "nobody", "image_uid": 65534}).passed
    assert not security.image_not_root({"image_user": "toor", "image_uid": 0}).passed
    assert not security.image_not_root({"image_user": "", "image_uid": 0}).passed
    assert "does not know" in security.image_not_root(
        {"image_user": "ghost", "image_uid": None}).feedback
    assert security.image_not_root({}).feedback.startswith("Not judged")
    assert not security.image_not_root({}).judged


def test_feedback_names_the_concept(reports):
    report = reports["reports"]["read_only_without_tmpfs"]
    assert "Read-only file system" in report["serves"].feedback
    assert "--tmpfs /tmp" in report["tmp_is_tmpfs"].feedback
    assert "Lesson 06-security" in report["tmp_is_tmpfs"].feedback
    assert "line 1 (" in reports["reports"]["privileged"]["serves"].feedback


def test_a_changed_app_is_not_graded(tmp_path):
    folder = answer(tmp_path / "app", GOOD_DOCKERFILE, GOOD_RUN)
    (folder / "app.py").write_text("print('hello from docklab: visit 2')\n")
    report = security.LAB.check(folder)
    assert report.score == 0 and "unchanged" in report["builds"].feedback


def test_a_service_that_exits_gets_feedback_not_a_traceback(tmp_path):
    folder = answer(tmp_path / "exits", replaced(
        GOOD_DOCKERFILE, 'CMD ["python", "/app/app.py"]',
        'CMD ["python", "-c", "raise SystemExit(3)"]'), GOOD_RUN)
    report = security.LAB.check(folder)
    assert report["builds"].passed and not report["serves"].passed
    assert "stopped" in report["serves"].feedback


def test_checks_leave_nothing_labelled_behind(client):
    assert_nothing_labelled_left(client, lesson="grade-security")


# -- the nbgrader round trip (sealed; tests/labs/test_round_trips.py) ---------------------------

def _writes(dockerfile: str, script: str):
    return hands_in({"dockerfile": writefile("Dockerfile", dockerfile),
                     "run": writefile("run.sh", script)})


#: The same hardening, spelled otherwise: a user by name (nobody, uid 65534 in the image's
#: /etc/passwd), the service's path and ENTRYPOINT changed, the run line as above.
OTHER_DOCKERFILE = ('FROM python:3.11-slim\nCOPY app.py /srv/app.py\nUSER nobody\n'
                    'ENTRYPOINT ["python3"]\nCMD ["/srv/app.py"]\n')
#: A rebound checks module, and an added cell patching the report and writing on the host.
CHEAT = Cheat("security", "dockerfile")

# student → (edit, expected score out of 11)
STUDENTS = {
    "ada": (_writes(GOOD_DOCKERFILE, GOOD_RUN), 11),
    # writable root, default capabilities, no no-new-privileges (only the user is right)
    "bo": (_writes(GOOD_DOCKERFILE, run("")), 5),
    # the user only in run.sh: the visible check passes, the hidden one takes its 2 points
    "cy": (_writes(ROOT_DOCKERFILE, run(f"--user 10001 {HARDENING}")), 9),
    # read-only without a tmpfs: the service cannot count
    "di": (_writes(GOOD_DOCKERFILE, run(replaced(HARDENING, "--tmpfs /tmp:size=16m", ""))), 8),
    "eve": (None, 0),
    "fay": (_writes(OTHER_DOCKERFILE, SPELLED_OTHERWISE), 11),
    "mal": (CHEAT, 0),
    # bo's answer, and the cheat's added cell that would patch the checks and write on the host
    "pat": (CHEAT.beside(_writes(GOOD_DOCKERFILE, run(""))), 5),
    # the host's root and SYS_ADMIN: nothing starts, the build's point only
    "sam": (_writes(GOOD_DOCKERFILE, run(f"-v /:/host --cap-add SYS_ADMIN {HARDENING}")), 1),
}

CASE = LabCase(
    "security", max_score=11, students=STUDENTS,
    right_answer=lambda folder: answer(folder, GOOD_DOCKERFILE, GOOD_RUN),
    not_released=("assert_image_not_root", "USER 10001",
                  "--security-opt no-new-privileges security-lab"),
    release_files=("app.py",),
    cells={"cy": {"test_runs_non_root": 0}, "sam": {"test_builds": 1}},
    feedback={"bo": ("ReadonlyRootfs is false",), "cy": ("Not root in the first place",),
              "eve": ("placeholder",), "fay": ("uid 65534",),
              "mal": ("no cell starting with %%writefile Dockerfile",),
              "sam": ("`--volume` mounts something", "SYS_ADMIN")},
)
