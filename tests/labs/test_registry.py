"""The registry lab on the real engine: `docklab check registry`, and the students of its nbgrader
round trip (tests/labs/test_round_trips.py runs it from CASE).

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
import pytest

from docklab.checks import registry
from tests.labs.answers import answer_folder, hands_in, replaced, solution_cell, writefile
from tests.labs.asserts import assert_fails_exactly, assert_nothing_labelled_left
from tests.labs.harness import Cheat, LabCase

pytestmark = pytest.mark.engine

ALL = [c.id for c in registry.CRITERIA]
GOOD = solution_cell("registry", "publish")
RETURN = 'return {"reference": f"{repository}:1.0", "digest": digest}'
PUSH = 'client.images.push(repository, tag="1.0", stream=True, decode=True)'


def edit(old: str, new: str) -> str:
    return replaced(GOOD, old, new)


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
    return answer_folder(folder, "registry", {"publish.py": script})


def _leftover_refs(client: docker.DockerClient) -> list[str]:
    """References under a grading registry's address (a free port; the course's is 5000)."""
    return [ref for image in client.api.images()
            for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or [])
            if re.match(r"localhost:(?!5000/)\d+/docklab/hello", ref)]


@pytest.mark.parametrize("name", WRONG)
def test_a_wrong_answer_fails_exactly_the_checks_it_breaks(tmp_path, name):
    script, failing = WRONG[name]
    assert_fails_exactly(registry.LAB.check(answer(tmp_path / name, script)), failing)


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
    assert_nothing_labelled_left(client, lesson="grade-registry")
    assert _leftover_refs(client) == []
    client.images.get("busybox")  # untagging never removes the image itself


# -- the nbgrader round trip (sealed; tests/labs/test_round_trips.py) ---------------------------

def _script(text: str):
    return hands_in({"publish": writefile("publish.py", text)})


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

#: A rebound checks module, and an added cell patching the report and writing on the host.
CHEAT = Cheat("registry", "publish")


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
    # cheats: both at once; only the added cell, beside the placeholder
    "hal": (CHEAT, 0),
    "ivy": (CHEAT.beside(None), 0),
}

CASE = LabCase(
    "registry", max_score=7, students=STUDENTS,
    right_answer=lambda folder: answer(folder, GOOD),
    not_released=("assert_pushed_busybox", "def publish"),
    cells={"cy": {"test_pull_by_digest": 0}},
    feedback={"bo": ("digest of the image's config",), "cy": ("not the course's busybox",),
              "eve": ("placeholder",)},
    unlabelled_leftovers=_leftover_refs,
)


def test_round_trip_judged_in_a_sealed_engine(graded):
    report = graded.sealed_report("ada")
    assert report.details["sealed"]["engine_start_seconds"] > 0
    assert report.details["pulled_id"] == report.details["source_id"]


def test_round_trip_publish_finds_nothing_of_the_grading_host(graded, client):
    assert not Path(MARKER).exists()
    output = graded.sealed_report("gus").details["publish_output"]
    line = next(row for row in output.splitlines() if row.startswith("FOUND "))
    found = json.loads(line.removeprefix("FOUND "))
    host_name = Path("/etc/hostname").read_text().strip()
    host_engine = client.info()["ID"]
    assert found["hostname"] not in (host_name, "") and found["bind_hostname"] != host_name
    # The only engine publish() can talk to is the sealed one, whatever socket it opens.
    assert found["engine_id"] not in (host_engine, "") and found["bind_engine_id"] != host_engine
    assert not found["engine_id"].startswith("failed")
    assert "DOCKER_HOST" not in found["host_env"] and "DOCKLAB_LEARNER" not in found["host_env"]
