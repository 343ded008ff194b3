"""The registry lab on the real engine: `docklab check registry` and the nbgrader round trip.

The right answer (the solution's publish.py) passes every check against a registry the check starts
itself; wrong ones lose what they break: the image id recorded as the digest, no push at all, a
wrong tag, a publish() that raises or never returns, another image than busybox (the hidden test).
Grading leaves no registry, helper, tag or digest reference behind.

The round trip is `nbgrader autograde` with the sealed judge: publish.py runs in a container of
docklab/python-docker inside a sealed engine of its own. Cheats (a cell patching the checks, an
answer cell that is an object answering everything) score 0; a publish.py that tries to reach the
grading host (a file under its /tmp, its /etc/hostname, its engine's socket, directly and through
bind mounts) finds only the sealed engine's, and still scores what it published.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import docker
import nbformat
import pytest

from docklab import labels
from docklab.checks import registry
from tests.conftest import run_docklab
from tests.labs.roundtrip import copy_course, feedback_html, round_trip, sealed_report, set_cell

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
# Another course image than busybox (one a sealed engine for this lab holds).
OTHER_IMAGE = edit('client.images.get("busybox")', 'client.images.get("registry:2")')

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
    folder = answer(tmp_path / "other", OTHER_IMAGE)
    assert registry.LAB.check(folder).all_passed
    with pytest.raises(AssertionError, match="not the course's busybox"):
        registry.assert_pushed_busybox(folder)
    registry.assert_pushed_busybox(answer(tmp_path / "good", GOOD))


def test_checks_leave_nothing_behind(client):
    left = labels.find_labelled(client, lesson="grade-registry")
    assert not any(left.values()), left
    assert _leftover_refs(client) == []


# -- the nbgrader round trip (sealed) ---------------------------------------------------------

def _script(text: str):
    return lambda notebook: set_cell(notebook, "publish", "%%writefile publish.py\n" + text)


#: The same job in other words: the low-level API, a push without streaming, the digest asked of
#: the registry.
OTHER_SPELLING = """import docker


def publish(client: docker.DockerClient, registry: str) -> dict:
    name = registry + "/docklab/hello"
    client.api.tag("busybox:latest", name, tag="1.0")
    client.images.push(name, tag="1.0")
    reference = name + ":1.0"
    return dict(reference=reference, digest=client.images.get_registry_data(reference).id)
"""

MARKER = f"/tmp/docklab-escape-{uuid.uuid4().hex[:12]}"
#: Looks for the grading host from publish(), prints what it found (one line on stderr), then
#: publishes as asked.
HOSTILE = f"""import json, os, sys
import docker

MARKER = {MARKER!r}


def _try(found, key, action):
    try:
        found[key] = action()
    except Exception as exc:  # noqa
        found[key] = "failed: " + type(exc).__name__


def _in_container(client, image, command, binds):
    return client.containers.run(image, command, volumes=binds, remove=True, user="0:0",
                                 network_mode="host").decode().strip()


def publish(client, registry):
    found = {{}}
    _try(found, "write_tmp", lambda: open(MARKER, "w").write("escaped"))
    _try(found, "bind_tmp", lambda: _in_container(
        client, "busybox", ["sh", "-c", "echo escaped > /host" + MARKER + " && echo written"],
        {{"/tmp": {{"bind": "/host/tmp", "mode": "rw"}}}}))
    _try(found, "hostname", lambda: open("/etc/hostname").read().strip())
    _try(found, "bind_hostname", lambda: _in_container(
        client, "busybox", ["cat", "/host/etc/hostname"],
        {{"/etc": {{"bind": "/host/etc", "mode": "ro"}}}}))
    _try(found, "engine_id", lambda: docker.DockerClient(
        base_url="unix:///var/run/docker.sock").info()["ID"])
    probe = ("import docker; print(docker.DockerClient(base_url='unix:///s').info()['ID'])")
    _try(found, "bind_engine_id", lambda: _in_container(
        client, "docklab/python-docker", ["python", "-c", probe],
        {{"/var/run/docker.sock": {{"bind": "/s", "mode": "rw"}}}}))
    _try(found, "host_env", lambda: sorted(os.environ))
    print("FOUND " + json.dumps(found), file=sys.stderr)
    repository = f"{{registry}}/docklab/hello"
    client.images.get("busybox").tag(repository, "1.0")
    client.images.push(repository, tag="1.0")
    return {{"reference": f"{{repository}}:1.0",
            "digest": client.images.get_registry_data(f"{{repository}}:1.0").id}}
"""

CHEAT_OBJECT = 'registry = type("M", (), {"__getattr__": lambda s, n: lambda *a, **k: s})()'


def _patch_the_checks(notebook) -> None:
    """Hands in the placeholder, plus a cell that makes every graded test pass when executed."""
    notebook.cells.insert(4, nbformat.v4.new_code_cell(
        "from docklab.checks import base\n"
        "base.Report.assert_passed = lambda *a, **k: None\n"
        f"open({MARKER + '-patch'!r}, 'w').write('x')\n"))


# student → (edit, expected score out of 7)
STUDENTS = {
    "ada": (_script(GOOD), 7),
    # the image id recorded as the digest: digest_matches and pull_by_digest fail
    "bo": (_script(IMAGE_ID), 3),
    # registry:2 instead of busybox: the visible checks pass, the hidden test takes pull_by_digest
    "cy": (_script(OTHER_IMAGE), 5),
    "eve": (None, 0),
    # the same job, spelled otherwise
    "flo": (_script(OTHER_SPELLING), 7),
    # looks for the grading host, then publishes as asked: finds nothing of the host
    "gus": (_script(HOSTILE), 7),
    # cheats: an answer cell that answers everything; a cell that patches the checks
    "hal": (lambda notebook: set_cell(notebook, "publish", CHEAT_OBJECT), 0),
    "ivy": (_patch_the_checks, 0),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = copy_course(tmp_path_factory.mktemp("course"), "registry")
    learner = f"roundtrip-reg-{uuid.uuid4().hex[:8]}"
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)  # the kernels inherit it: their resources are ours
    result = round_trip(course, "registry", {s: e for s, (e, _) in STUDENTS.items()})
    yield {**result, "course": course, "learner": learner}
    mp.undo()


def test_round_trip_scores(graded):
    for student, result in graded["results"].items():
        assert result["success"], f"{student}: {result['log'][-3000:]}"
    assert graded["scores"] == {s: float(score) for s, (_, score) in STUDENTS.items()}
    assert graded["max_scores"] == {7.0}
    assert graded["cells"]["cy"]["test_pull_by_digest"] == 0
    assert graded["cells"]["ada"] == {f"test_{c.id}": c.points for c in registry.CRITERIA}
    print(f"registry round trip ({len(STUDENTS)} students): {graded['seconds']:.1f} s")


def _report(graded, student: str):
    return sealed_report(graded, "registry", student)


def test_round_trip_judged_in_a_sealed_engine(graded):
    report = _report(graded, "ada")
    assert report.details["sealed"]["engine_start_seconds"] > 0
    assert report.details["pulled_id"] == report.details["source_id"]


def test_round_trip_publish_finds_nothing_of_the_grading_host(graded, client):
    assert not Path(MARKER).exists()
    assert not Path(MARKER + "-patch").exists()
    output = _report(graded, "gus").details["publish_output"]
    line = next(row for row in output.splitlines() if row.startswith("FOUND "))
    found = json.loads(line.removeprefix("FOUND "))
    host_name = Path("/etc/hostname").read_text().strip()
    host_engine = client.info()["ID"]
    assert found["hostname"] not in (host_name, "") and found["bind_hostname"] != host_name
    # The only engine publish() can talk to is the sealed one, whatever socket it opens.
    assert found["engine_id"] not in (host_engine, "") and found["bind_engine_id"] != host_engine
    assert not found["engine_id"].startswith("failed")
    assert "DOCKER_HOST" not in found["host_env"] and "DOCKLAB_LEARNER" not in found["host_env"]


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
