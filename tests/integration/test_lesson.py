"""docklab.lesson against the real engine: --rm like the CLI, and names that never clobber."""

import docker.errors
import pytest

from docklab import labels
from docklab.errors import DocklabError
from docklab.lesson import Lesson

pytestmark = pytest.mark.engine


@pytest.fixture
def lesson(client, learner_env):
    lesson = Lesson("test-lesson", client)
    yield lesson
    labels.remove_labelled(client, learner=learner_env)


def _volume_names(client) -> set[str]:
    return {v.name for v in client.volumes.list()}


def test_foreground_rm_returns_output_and_removes_anonymous_volumes(client, lesson):
    before = _volume_names(client)
    # redis's image declares VOLUME /data: every container of it gets an anonymous volume.
    out = lesson.run("redis", ["sh", "-c", "echo hello > /data/x; cat /data/x"], detach=False,
                     remove=True)
    assert out == b"hello\n"
    assert _volume_names(client) == before
    assert client.containers.list(all=True, filters={"label": f"{labels.LEARNER}="
                                                               f"{labels.learner_name()}"}) == []


def test_foreground_rm_failure_raises_with_stderr_and_still_removes(client, lesson):
    before = _volume_names(client)
    with pytest.raises(docker.errors.ContainerError) as err:
        lesson.run("redis", ["sh", "-c", "echo oops >&2; exit 3"], detach=False, remove=True)
    assert err.value.exit_status == 3 and b"oops" in err.value.stderr
    assert _volume_names(client) == before


def test_a_leftover_of_the_same_lesson_is_replaced(lesson):
    first = lesson.run("busybox", ["sleep", "60"], name="same-name")
    second = lesson.run("busybox", ["sleep", "60"], name="same-name")
    assert first.id != second.id
    with pytest.raises(docker.errors.NotFound):
        first.reload()


def test_another_lessons_container_is_never_removed_for_a_name(client, lesson):
    other = Lesson("test-lesson-other", client)
    theirs = other.run("busybox", ["sleep", "60"], name="shared-name")
    with pytest.raises(DocklabError) as err:
        lesson.run("busybox", ["sleep", "60"], name="shared-name")
    assert "test-lesson-other" in err.value.message and "clean" in err.value.hint
    theirs.reload()
    assert theirs.status == "running"
