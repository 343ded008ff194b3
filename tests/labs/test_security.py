"""The security lab on the real engine: `docklab check security` and the nbgrader round trip.

The right answer (the solution's Dockerfile and run.json) passes every check; wrong ones lose the
checks they break: root, a writable root filesystem with default capabilities, a read-only root
without the tmpfs the service needs, invalid or refused run options. The round trip grades on
sealed engines (SealedJudge): no cell of a submission runs, so a cheat in an answer cell or an
added cell gets nothing, and the same hardening spelled another way gets full marks. Nothing is
left behind.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import nbformat
import pytest

from docklab import labels
from docklab.checks import security
from tests.conftest import run_docklab
from tests.labs.roundtrip import copy_course, feedback_html, round_trip, set_cell

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = ROOT / "solutions" / "security" / "security.ipynb"
ALL = [c.id for c in security.CRITERIA]
GOOD_SPEC = {"read_only": True, "tmpfs": {"/tmp": "size=16m"}, "cap_drop": ["ALL"],
             "cap_add": [], "security_opt": ["no-new-privileges"]}


def _solution_cell(cell_id: str) -> str:
    notebook = nbformat.read(SOLUTION, as_version=4)
    source = next(c.source for c in notebook.cells if c.get("id") == cell_id)
    return source.partition("\n")[2] + "\n"


GOOD_DOCKERFILE = _solution_cell("dockerfile")
ROOT_DOCKERFILE = GOOD_DOCKERFILE.replace("USER 10001:10001\n", "")


def answer(folder: Path, dockerfile: str, spec) -> Path:
    folder.mkdir()
    shutil.copy(ROOT / "grader" / "source" / "security" / "app.py", folder)
    (folder / "Dockerfile").write_text(dockerfile)
    (folder / "run.json").write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return folder


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


def test_the_solution_passes_every_check(tmp_path, client):
    folder = answer(tmp_path / "good", GOOD_DOCKERFILE, GOOD_SPEC)
    result = run_docklab("check", "security", str(folder), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["lab"] == "security" and report["score"] == report["max_score"] == 11
    assert [c["id"] for c in report["checks"]] == ALL


def test_the_user_may_come_from_run_json_alone(tmp_path):
    # The visible check accepts it; the hidden test (the image's own USER) does not.
    folder = answer(tmp_path / "spec-user", ROOT_DOCKERFILE, {**GOOD_SPEC, "user": "10001"})
    report = security.LAB.check(folder)
    assert report.all_passed, report.table()
    with pytest.raises(AssertionError, match="Not root in the first place"):
        security.assert_image_not_root(folder)
    # The same function, from the recorded details, is the hidden test when graded.
    hidden = security.LAB.check(folder, hidden=True)
    assert not hidden["runs_non_root"].passed and hidden.score == 9
    assert "Not root in the first place" in hidden["runs_non_root"].feedback
    assert hidden["runs_non_root"].feedback.count("(Lesson ") == 1  # the hidden test's own


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
    report = security.LAB.check(answer(tmp_path / name, dockerfile, spec))
    assert {c.id for c in report.checks if not c.passed} == failing, report.table()
    for check in report.checks:
        if not check.passed:
            assert check.feedback, check.id


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
    left = labels.find_labelled(client, lesson="grade-security")
    assert not any(left.values()), left


# -- the nbgrader round trip (sealed) ------------------------------------------------------------

def _writes(dockerfile: str | None, spec: str | None):
    def edit(notebook) -> None:
        if dockerfile is not None:
            set_cell(notebook, "dockerfile", "%%writefile Dockerfile\n" + dockerfile)
        if spec is not None:
            set_cell(notebook, "run-json", "%%writefile run.json\n" + spec)
    return edit


GOOD_JSON = json.dumps(GOOD_SPEC, indent=2)
#: The same hardening, spelled otherwise: a user by name (nobody, uid 65534 in the image's
#: /etc/passwd), capability names in lower case, tmpfs as a list, no-new-privileges:true, no
#: cap_add at all.
OTHER_DOCKERFILE = ('FROM python:3.11-slim\nCOPY app.py /srv/app.py\nUSER nobody\n'
                    'ENTRYPOINT ["python3"]\nCMD ["/srv/app.py"]\n')
OTHER_JSON = json.dumps({"cap_drop": ["all"], "security_opt": ["no-new-privileges:true"],
                         "tmpfs": ["/tmp:size=8m,mode=1777"], "read_only": True})
#: A cheat in the answer cell: an object that answers every call, would the cell run.
CHEAT = 'security = type("M", (), {"__getattr__": lambda s, n: lambda *a, **k: s})()'
#: A file an added cell would write on the grading host, would it run.
PWNED = Path(f"/tmp/docklab-pwned-security-{uuid.uuid4().hex[:8]}")


def _cheats(notebook) -> None:
    set_cell(notebook, "dockerfile", CHEAT)


def _patches(notebook) -> None:
    _writes(GOOD_DOCKERFILE, "{}")(notebook)
    notebook.cells.insert(2, nbformat.v4.new_code_cell(
        "from docklab.checks import base\n"
        "base.Report.assert_passed = lambda *a, **k: None\n"
        f"open({str(PWNED)!r}, 'w').write('x')\n"))


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
    "mal": (_cheats, 0),
    # bo's answer, and an added cell that would patch the checks and write on the host
    "pat": (_patches, 5),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = copy_course(tmp_path_factory.mktemp("course"), "security")
    learner = "roundtrip-" + tmp_path_factory.mktemp("id").name[-6:]
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)
    try:
        result = round_trip(course, "security", {s: edit for s, (edit, _) in STUDENTS.items()})
        yield {**result, "course": course, "learner": learner}
    finally:
        mp.undo()
        PWNED.unlink(missing_ok=True)


def test_round_trip_scores(graded):
    for student, result in graded["results"].items():
        assert result["success"], f"{student}: {result.get('error') or result['log'][-2000:]}"
    assert graded["scores"] == {s: float(score) for s, (_, score) in STUDENTS.items()}, \
        graded["cells"]
    assert graded["max_scores"] == {11.0}
    assert graded["cells"]["cy"]["test_runs_non_root"] == 0
    for student in ("ada", "fay"):
        assert graded["cells"][student] == {f"test_{c.id}": c.points for c in security.CRITERIA}
    print(f"security round trip ({len(STUDENTS)} submissions): {graded['seconds']:.1f} s")


def test_round_trip_runs_no_cell_of_a_submission(graded):
    assert not PWNED.exists()
    for student in ("mal", "pat"):
        assert "Judging security" in graded["results"][student]["log"]
    assert "no cell starting with %%writefile Dockerfile" in feedback_html(
        graded["course"], "security", "mal")


def test_round_trip_release_has_no_solution_or_hidden_test(graded):
    text = (graded["course"] / "release" / "security" / "security.ipynb").read_text()
    assert "assert_image_not_root" not in text and "USER 10001" not in text
    assert (graded["course"] / "release" / "security" / "app.py").is_file()


def test_round_trip_feedback(graded):
    assert graded["feedback"]["success"], graded["feedback"].get("error")
    course = graded["course"]
    assert "ReadonlyRootfs is false" in feedback_html(course, "security", "bo")
    assert "Not root in the first place" in feedback_html(course, "security", "cy")
    assert "placeholder" in feedback_html(course, "security", "eve")
    assert "uid 65534" in feedback_html(course, "security", "fay")


def test_round_trip_leaves_nothing_behind(client, graded):
    left = labels.find_labelled(client, learner=graded["learner"])
    assert not any(left.values()), left  # the sealed engines carry the learner's labels too
