"""lesson.run_script on the real engine and the real docker CLI: a lab's run.sh, run in the
notebook one %docker command a line, labels what it creates (the lesson's cleanup removes it), runs
again over its own leftovers (named containers, then networks), and refuses before anything runs:
the placeholder, a line grading would refuse, a docker run without -d (a cell would never end)."""

import uuid

import pytest

from docklab import labels
from docklab.lesson import Lesson, ScriptRefused

pytestmark = pytest.mark.engine


@pytest.fixture
def lesson(learner_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lesson = Lesson("test-run-script")
    yield lesson
    lesson.cleanup()
    assert not any(labels.find_labelled(lesson.client, lesson=lesson.id,
                                        learner=learner_env).values())


def _names(lesson, learner: str) -> dict[str, set[str]]:
    found = labels.find_labelled(lesson.client, lesson=lesson.id, learner=learner)
    return {kind: {item.name for item in items} for kind, items in found.items()
            if kind in ("containers", "networks")}


def test_a_script_runs_labelled_and_runs_again_over_its_leftovers(lesson, learner_env, tmp_path):
    net, box = f"rs-net-{uuid.uuid4().hex[:6]}", f"rs-box-{uuid.uuid4().hex[:6]}"
    (tmp_path / "run.sh").write_text(f"# a network and a container on it\n"
                                     f"docker network create {net}\n"
                                     f"docker run -d --name {box} \\\n  --network {net} "
                                     "busybox sleep 300\n")
    lesson.run_script("run.sh")
    first = lesson.client.containers.get(box).id
    assert _names(lesson, learner_env) == {"containers": {box}, "networks": {net}}
    lesson.run_script("run.sh")  # again: the container and the network are replaced
    assert lesson.client.containers.get(box).id != first
    assert _names(lesson, learner_env) == {"containers": {box}, "networks": {net}}


@pytest.mark.parametrize(("script", "words"), [
    ("# YOUR CODE HERE\nraise NotImplementedError()\n", "placeholder"),
    ("docker network create {net}; touch {marker}\n", "`;` is shell syntax"),
    ("docker network create {net}\ntouch {marker}\n", "`touch` is not docker"),
    ("docker network create {net}\ndocker run --name {net} busybox sleep 300\n",
     "without -d"),
])
def test_a_script_is_refused_before_anything_runs(lesson, learner_env, tmp_path, script, words):
    net = f"rs-net-{uuid.uuid4().hex[:6]}"
    marker = tmp_path / "ran"
    (tmp_path / "run.sh").write_text(script.format(net=net, marker=marker))
    with pytest.raises(ScriptRefused, match=words):
        lesson.run_script("run.sh")
    assert not marker.exists()
    assert _names(lesson, learner_env) == {"containers": set(), "networks": set()}
