"""The registry lab on the real engine: `docklab check registry` and the nbgrader round trip.

The right answer (the solution's publish.py) passes every check against a registry the check starts
itself; wrong ones lose what they break: the image id recorded as the digest, no push at all, a
wrong tag, a publish() that raises or never returns, another image than busybox (the hidden test).
Grading leaves no registry, helper, tag or digest reference behind.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import docker
import nbformat
import pytest

from docklab import labels
from docklab.checks import registry
from tests.conftest import run_docklab
from tests.labs.roundtrip import copy_course, feedback_html, round_trip, set_cell

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = ROOT / "solutions" / "registry" / "registry.ipynb"
ALL = [c.id for c in registry.CRITERIA]


def _solution_script() -> str:
    notebook = nbformat.read(SOLUTION, as_version=4)
    source = next(c.source for c in notebook.cells if c.get("id") == "publish")
    return source.partition("\n")[2] + "\n"


GOOD = _solution_script()
RETURN = 'return {"reference": f"{repository}:1.0", "digest": digest}'
PUSH = 'client.images.push(repository, tag="1.0", stream=True, decode=True)'


def edit(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new)


IMAGE_ID = edit(RETURN, 'return {"reference": f"{repository}:1.0", '
                        '"digest": client.images.get("busybox").id}')
DEBIAN = edit('client.images.get("busybox")', 'client.images.get("debian:12")')

# name → (publish.py, the checks that must fail)
WRONG = {
    "image_id_as_digest": (IMAGE_ID, {"digest_matches", "pull_by_digest"}),
    "never_pushed": (edit(PUSH, "[]"), set(ALL)),
    "wrong_tag": (GOOD.replace('"1.0"', '"latest"').replace(":1.0", ":latest"), set(ALL)),
    "raises": (GOOD.replace("    repository =", "    raise ValueError('oops')\n    repository ="),
               set(ALL)),
    "not_python": ("def publish(client, registry)\n    pass\n", set(ALL)),
}


def answer(folder: Path, script: str) -> Path:
    folder.mkdir()
    (folder / "publish.py").write_text(script)
    return folder


def _leftover_refs(client: docker.DockerClient) -> list[str]:
    """References under a grading registry's address (a free port; the course's is 5000)."""
    return [ref for image in client.api.images()
            for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or [])
            if re.match(r"localhost:(?!5000/)\d+/docklab/hello", ref)]


def test_the_solution_passes_every_check(tmp_path, client):
    result = run_docklab("check", "registry", str(answer(tmp_path / "good", GOOD)), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["lab"] == "registry" and report["score"] == report["max_score"] == 7
    assert [c["id"] for c in report["checks"]] == ALL
    assert _leftover_refs(client) == []
    client.images.get("busybox")  # untagging never removes the image itself


@pytest.mark.parametrize("name", WRONG)
def test_a_wrong_answer_fails_exactly_the_checks_it_breaks(tmp_path, name):
    script, failing = WRONG[name]
    report = registry.LAB.check(answer(tmp_path / name, script))
    assert {c.id for c in report.checks if not c.passed} == failing, report.table()
    for check in report.checks:
        if not check.passed:
            assert check.feedback, check.id


def test_feedback_explains_the_digest(tmp_path):
    report = registry.LAB.check(answer(tmp_path / "id", IMAGE_ID))
    assert "digest of the image's config" in report["digest_matches"].feedback
    assert "Lesson 10-registry" in report["digest_matches"].feedback
    report = registry.LAB.check(answer(tmp_path / "raises", WRONG["raises"][0]))
    assert "ValueError: oops" in report["returns_record"].feedback


def test_another_image_passes_the_visible_checks_but_not_the_hidden_test(tmp_path):
    folder = answer(tmp_path / "debian", DEBIAN)
    assert registry.LAB.check(folder).all_passed
    with pytest.raises(AssertionError, match="not the course's busybox"):
        registry.assert_pushed_busybox(folder)
    registry.assert_pushed_busybox(answer(tmp_path / "good", GOOD))


def test_checks_leave_nothing_behind(client):
    left = labels.find_labelled(client, lesson="grade-registry")
    assert not any(left.values()), left
    assert _leftover_refs(client) == []


# -- the nbgrader round trip --------------------------------------------------------------------

def _script(text: str):
    return lambda notebook: set_cell(notebook, "publish", "%%writefile publish.py\n" + text)


# student → (edit, expected score out of 7)
STUDENTS = {
    "ada": (_script(GOOD), 7),
    # the image id recorded as the digest: digest_matches and pull_by_digest fail
    "bo": (_script(IMAGE_ID), 3),
    # debian:12 instead of busybox: the visible checks pass, the hidden test takes pull_by_digest
    "cy": (_script(DEBIAN), 5),
    "eve": (None, 0),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = copy_course(tmp_path_factory.mktemp("course"), "registry")
    learner = "roundtrip-" + tmp_path_factory.mktemp("id").name[-6:]
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)  # the kernels inherit it: their resources are ours
    result = round_trip(course, "registry", {s: e for s, (e, _) in STUDENTS.items()})
    yield {**result, "course": course, "learner": learner}
    mp.undo()


def test_round_trip_scores(graded):
    for student, result in graded["results"].items():
        assert result["success"], f"{student}: {result.get('error') or result['log'][-2000:]}"
    assert graded["scores"] == {s: float(score) for s, (_, score) in STUDENTS.items()}
    assert graded["max_scores"] == {7.0}
    assert graded["cells"]["cy"]["test_pull_by_digest"] == 0
    assert graded["cells"]["ada"] == {f"test_{c.id}": c.points for c in registry.CRITERIA}
    print(f"registry round trip: {graded['seconds']:.1f} s")


def test_round_trip_release_has_no_solution_or_hidden_test(graded):
    text = (graded["course"] / "release" / "registry" / "registry.ipynb").read_text()
    assert "assert_pushed_busybox" not in text and "def publish" not in text


def test_round_trip_feedback(graded):
    assert graded["feedback"]["success"], graded["feedback"].get("error")
    course = graded["course"]
    assert "digest of the image's config" in feedback_html(course, "registry", "bo")
    assert "not the course's busybox" in feedback_html(course, "registry", "cy")
    assert "placeholder" in feedback_html(course, "registry", "eve")


def test_round_trip_leaves_nothing_behind(client, graded):
    left = labels.find_labelled(client, learner=graded["learner"])
    assert not any(left.values()), left
    assert _leftover_refs(client) == []
