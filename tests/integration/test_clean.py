"""`docklab clean` removes exactly the labelled resources and never anything else."""

import io
import json
import tarfile
import uuid

import docker.errors
import pytest

from docklab import labels
from docklab.lesson import Lesson
from tests.conftest import run_docklab

pytestmark = pytest.mark.engine


def _tiny_context(text: bytes = b"hi\n") -> io.BytesIO:
    # FROM scratch + a file: builds in a second, no base image needed.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM scratch\nCOPY hello /hello\n"),
                           ("hello", text)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_clean_removes_labelled_resources_and_leaves_an_unlabelled_container(client,
                                                                             learner_env):
    lesson = Lesson("test-clean", client)
    tag = f"docklab-test-clean:{uuid.uuid4().hex[:8]}"
    image, _ = lesson.build(fileobj=_tiny_context(), custom_context=True, tag=tag)
    volume = lesson.volume(f"data-{learner_env}")
    network = lesson.network(f"net-{learner_env}")
    labelled = lesson.create(tag, "/hello", name=f"test-clean-{learner_env}",
                             volumes={volume.name: {"bind": "/data"}}, network=network.name)
    # An image and a container made without docklab: nothing of the course's on them.
    plain, _ = client.images.build(fileobj=_tiny_context(b"plain\n"), custom_context=True,
                                    tag=f"{tag}-plain")
    bystander = client.containers.create(plain.id, "/hello", name=f"bystander-{learner_env}")
    # Run from a course-built image but not by the course: it inherits the image's labels.
    inheritor = client.containers.create(tag, "/hello", name=f"inheritor-{learner_env}")
    try:
        result = run_docklab("clean", "--yes", "--json", "--learner", learner_env)
        assert result.returncode == 0, result.stderr
        removed = json.loads(result.stdout)
        assert removed["containers"] == [labelled.name]
        assert removed["volumes"] == [volume.name]
        assert removed["networks"] == [network.name]
        assert removed["images"] == [tag]
        assert removed["errors"] == []

        assert labels.find_labelled(client, learner=learner_env) == {
            "containers": [], "services": [], "networks": [], "volumes": [], "images": []}
        bystander.reload()  # still there: raises NotFound otherwise
        client.images.get(plain.id)
        assert bystander.labels.get(labels.MANAGED) is None
        inheritor.reload()
        assert inheritor.labels.get(labels.KIND) == "image"
    finally:
        labels.remove_labelled(client, learner=learner_env)
        bystander.remove(force=True)
        inheritor.remove(force=True)
        client.images.remove(plain.id, force=True)
        for leftover in client.images.list(name=tag.split(":")[0]):
            client.images.remove(leftover.id, force=True)


def test_clean_with_nothing_to_do_says_so(learner_env):
    result = run_docklab("clean", "--yes", "--learner", learner_env)
    assert result.returncode == 0
    assert "Nothing to clean" in result.stdout


def test_clean_without_yes_and_no_answer_removes_nothing(client, learner_env):
    lesson = Lesson("test-clean", client)
    volume = lesson.volume(f"kept-{learner_env}")
    try:
        result = run_docklab("clean", "--learner", learner_env)  # stdin is /dev/null: no "yes"
        assert result.returncode != 0
        assert volume.name in result.stdout
        client.volumes.get(volume.name)  # not removed
    finally:
        volume.remove(force=True)


def test_clean_removes_a_labelled_image_and_the_labelled_image_built_from_it(client, learner_env):
    lesson = Lesson("test-clean", client)
    tag = f"docklab-test-child:{uuid.uuid4().hex[:8]}"
    # An untagged parent (like the steps of a lesson's multi-stage build): the engine refuses to
    # remove it, even with force, while an image built FROM it exists.
    parent, _ = lesson.build(fileobj=_tiny_context(uuid.uuid4().hex.encode()), custom_context=True)
    child_context = io.BytesIO()
    with tarfile.open(fileobj=child_context, mode="w") as tar:
        data = f"FROM {parent.id}\nCOPY hello /child\n".encode()
        for name, body in (("Dockerfile", data), ("hello", b"child\n")):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    child_context.seek(0)
    child, _ = lesson.build(fileobj=child_context, custom_context=True, tag=tag)
    # Ask for the parent first: the engine refuses it while the child exists.
    removed = labels.Removed()
    labels._remove_images(client, [client.images.get(parent.id), client.images.get(child.id)],
                          removed)
    assert removed.errors == []
    assert tag in removed.images  # the parent goes with it, or on the second pass
    assert client.images.list(name=tag.split(":")[0]) == []
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(parent.id)
