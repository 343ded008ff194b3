"""The security lab on the real engine: `docklab check security`, and the students of its nbgrader
round trip (tests/labs/test_round_trips.py runs it from CASE).

The right answer (the solution's Dockerfile and run.json) passes every check; wrong ones lose the
checks they break: root, a writable root filesystem with default capabilities, a read-only root
without the tmpfs the service needs, invalid or refused run options. The round trip grades on
sealed engines (SealedJudge): no cell of a submission runs, so a cheat in an answer cell or an
added cell gets nothing, and the same hardening spelled another way gets full marks. Nothing is
left behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docklab.checks import security
from tests.labs.answers import answer_folder, hands_in, solution_cell, writefile
from tests.labs.asserts import (
    assert_fails_exactly,
    assert_nothing_labelled_left,
    assert_only_the_hidden_test_fails,
)
from tests.labs.harness import Cheat, LabCase

pytestmark = pytest.mark.engine

ALL = [c.id for c in security.CRITERIA]
GOOD_SPEC = {"read_only": True, "tmpfs": {"/tmp": "size=16m"}, "cap_drop": ["ALL"],
             "cap_add": [], "security_opt": ["no-new-privileges"]}
GOOD_DOCKERFILE = solution_cell("security", "dockerfile")
ROOT_DOCKERFILE = GOOD_DOCKERFILE.replace("USER 10001:10001\n", "")


def answer(folder: Path, dockerfile: str, spec) -> Path:
    """A folder with the Dockerfile, run.json (a spec, or its text) and the lab's app.py."""
    return answer_folder(folder, "security", {
        "Dockerfile": dockerfile, "run.json": spec if isinstance(spec, str) else json.dumps(spec)},
        lab_files=("app.py",))


# name → (Dockerfile, run.json, the checks that must fail)
WRONG = {
    "runs_as_root": (ROOT_DOCKERFILE, GOOD_SPEC, {"runs_non_root"}),
    "nothing_hardened": (GOOD_DOCKERFILE, {},
                         {"read_only_root", "tmp_is_tmpfs", "caps_dropped", "no_new_privileges"}),
    "read_only_without_tmpfs": (GOOD_DOCKERFILE,
                                {k: v for k, v in GOOD_SPEC.items() if k != "tmpfs"},
                                {"tmp_is_tmpfs", "serves"}),
    "capability_added_back": (GOOD_DOCKERFILE, {**GOOD_SPEC, "cap_add": ["NET_BIND_SERVICE"]},
                              {"caps_dropped"}),
    "python_not_json": (GOOD_DOCKERFILE, '{"read_only": True}', set(ALL) - {"builds"}),
    "privileged_refused": (GOOD_DOCKERFILE, {**GOOD_SPEC, "privileged": True},
                           set(ALL) - {"builds"}),
}


def test_the_user_may_come_from_run_json_alone(tmp_path):
    # The visible check accepts it; the hidden test (the image's own USER) does not.
    folder = answer(tmp_path / "spec-user", ROOT_DOCKERFILE, {**GOOD_SPEC, "user": "10001"})
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


@pytest.mark.parametrize("name", WRONG)
def test_a_wrong_answer_fails_exactly_the_checks_it_breaks(tmp_path, name):
    dockerfile, spec, failing = WRONG[name]
    assert_fails_exactly(security.LAB.check(answer(tmp_path / name, dockerfile, spec)), failing)


def test_feedback_names_the_concept(tmp_path):
    report = security.LAB.check(answer(tmp_path / "a", *WRONG["read_only_without_tmpfs"][:2]))
    assert "Read-only file system" in report["serves"].feedback
    assert "--tmpfs /tmp" in report["tmp_is_tmpfs"].feedback
    assert "Lesson 06-security" in report["tmp_is_tmpfs"].feedback
    report = security.LAB.check(answer(tmp_path / "b", *WRONG["python_not_json"][:2]))
    assert "not valid JSON" in report["serves"].feedback


def test_a_changed_app_is_not_graded(tmp_path):
    folder = answer(tmp_path / "app", GOOD_DOCKERFILE, GOOD_SPEC)
    (folder / "app.py").write_text("print('hello from docklab: visit 2')\n")
    report = security.LAB.check(folder)
    assert report.score == 0 and "unchanged" in report["builds"].feedback


def test_a_service_that_exits_gets_feedback_not_a_traceback(tmp_path):
    folder = answer(tmp_path / "exits", GOOD_DOCKERFILE.replace(
        'CMD ["python", "/app/app.py"]', 'CMD ["python", "-c", "raise SystemExit(3)"]'),
        GOOD_SPEC)
    report = security.LAB.check(folder)
    assert report["builds"].passed and not report["serves"].passed
    assert "stopped" in report["serves"].feedback


def test_parse_run_spec_refuses_what_would_undo_the_hardening():
    assert security.parse_run_spec(json.dumps(GOOD_SPEC))[0] == {
        **GOOD_SPEC, "cap_drop": ["ALL"], "cap_add": []}
    # the source notebook's cell, nbgrader's solution lines and all (`nbgrader validate`)
    marked = f"### BEGIN SOLUTION\n{json.dumps(GOOD_SPEC)}\n### END SOLUTION\n"
    assert security.parse_run_spec(marked)[0] == security.parse_run_spec(json.dumps(GOOD_SPEC))[0]
    for spec in ({"cap_add": ["SYS_ADMIN"]}, {"security_opt": ["seccomp=unconfined"]},
                 {"tmpfs": {"../x": ""}}, {"network_mode": "host"}, [1, 2]):
        kwargs, why = security.parse_run_spec(json.dumps(spec))
        assert kwargs is None and why
    assert security.docker_run_command(GOOD_SPEC) == (
        "docker run -d --read-only --tmpfs /tmp:size=16m --cap-drop ALL "
        "--security-opt no-new-privileges security-lab")


def test_checks_leave_nothing_labelled_behind(client):
    assert_nothing_labelled_left(client, lesson="grade-security")


# -- the nbgrader round trip (sealed; tests/labs/test_round_trips.py) ---------------------------

def _writes(dockerfile: str, spec: str):
    return hands_in({"dockerfile": writefile("Dockerfile", dockerfile),
                     "run-json": writefile("run.json", spec)})


GOOD_JSON = json.dumps(GOOD_SPEC, indent=2)
#: The same hardening, spelled otherwise: a user by name (nobody, uid 65534 in the image's
#: /etc/passwd), capability names in lower case, tmpfs as a list, no-new-privileges:true, no
#: cap_add at all.
OTHER_DOCKERFILE = ('FROM python:3.11-slim\nCOPY app.py /srv/app.py\nUSER nobody\n'
                    'ENTRYPOINT ["python3"]\nCMD ["/srv/app.py"]\n')
OTHER_JSON = json.dumps({"cap_drop": ["all"], "security_opt": ["no-new-privileges:true"],
                         "tmpfs": ["/tmp:size=8m,mode=1777"], "read_only": True})
#: A rebound checks module, and an added cell patching the report and writing on the host.
CHEAT = Cheat("security", "dockerfile")

# student → (edit, expected score out of 11)
STUDENTS = {
    "ada": (_writes(GOOD_DOCKERFILE, GOOD_JSON), 11),
    # writable root, default capabilities, no no-new-privileges (only the user is right)
    "bo": (_writes(GOOD_DOCKERFILE, "{}"), 5),
    # the user only in run.json: the visible check passes, the hidden one takes its 2 points
    "cy": (_writes(ROOT_DOCKERFILE, json.dumps({**GOOD_SPEC, "user": "10001"})), 9),
    # read-only without a tmpfs: the service cannot count
    "di": (_writes(GOOD_DOCKERFILE, json.dumps({k: v for k, v in GOOD_SPEC.items()
                                                if k != "tmpfs"})), 8),
    "eve": (None, 0),
    "fay": (_writes(OTHER_DOCKERFILE, OTHER_JSON), 11),
    "mal": (CHEAT, 0),
    # bo's answer, and the cheat's added cell that would patch the checks and write on the host
    "pat": (CHEAT.beside(_writes(GOOD_DOCKERFILE, "{}")), 5),
}

CASE = LabCase(
    "security", max_score=11, students=STUDENTS,
    right_answer=lambda folder: answer(folder, GOOD_DOCKERFILE, GOOD_SPEC),
    not_released=("assert_image_not_root", "USER 10001"), release_files=("app.py",),
    cells={"cy": {"test_runs_non_root": 0}},
    feedback={"bo": ("ReadonlyRootfs is false",), "cy": ("Not root in the first place",),
              "eve": ("placeholder",), "fay": ("uid 65534",),
              "mal": ("no cell starting with %%writefile Dockerfile",)},
)
