"""Engine 28 with the containerd image store, started beside the host's engine (docklab.engines),
and the engine differences the lessons depend on, asked of both engines."""

from __future__ import annotations

import io
import uuid

import docker
import docker.errors
import pytest
from docker.types import Mount

from docklab import engines
from docklab import labels as L
from docklab.doctor import _check_engine
from docklab.engine import default_builder
from docklab.images import dind_run_options
from docklab.storage import image_store, overlay_dirs

pytestmark = pytest.mark.engine

LESSON = "test-engines"


@pytest.fixture(scope="module")
def engine28(client):
    """Engine 28 with the containerd image store, busybox loaded; removed with its volume after.

    Started as a learner of its own, so an engine someone else started is neither reused nor
    stopped."""
    learner = f"test-engines-{uuid.uuid4().hex[:6]}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DOCKLAB_LEARNER", learner)
        env.setenv("DOCKLAB_PREFIX", learner)
        lines: list[str] = []
        started = engines.start(client, "28", containerd_store=True, images=["busybox"],
                                say=lines.append)
        inner = started.client()
        try:
            yield started, inner, lines
        finally:
            inner.close()
            assert engines.stop(client, "28", containerd_store=True) == [started.container]
        assert not client.containers.list(all=True, filters={"name": started.container})
        assert not client.volumes.list(filters={"name": started.volume})


@pytest.fixture
def both(client, engine28):
    """The host's engine and Engine 28, each with its lesson's containers removed afterwards."""
    engine_clients = {"host": client, "28": engine28[1]}
    yield engine_clients
    for each in engine_clients.values():
        L.remove_labelled(each, lesson=LESSON, session=L.session_id())


def test_engine_28_answers_with_the_containerd_store_and_the_course_images(engine28):
    started, inner, lines = engine28
    assert started.docker_host.startswith("tcp://127.0.0.1:")  # published on loopback only
    assert inner.version()["Version"].startswith("28.")
    store = image_store(inner)
    assert (store.kind, store.driver) == ("containerd", "overlayfs")
    assert default_builder(inner) == "buildkit"
    assert inner.images.get("busybox").labels[L.CATALOGUE] == "busybox"
    assert any("loaded 1 images" in line for line in lines), lines
    assert engines.list_engines(docker.from_env()) == [started]  # this learner's only
    assert started.container.startswith("test-engines-")


def test_an_engine_started_again_is_kept_and_not_reloaded(client, engine28):
    started, _inner, _ = engine28
    lines: list[str] = []
    again = engines.start(client, "28", containerd_store=True, images=["busybox"],
                          say=lines.append)
    assert again == started
    assert any("already loaded" in line for line in lines), lines


def test_docker_top_runs_in_the_engine_image(engine28):
    _, inner, _ = engine28
    box = inner.containers.run("busybox", ["sleep", "30"], detach=True,
                               labels=L.labels_for(LESSON, kind="container"))
    try:
        assert any("sleep" in " ".join(row) for row in box.top()["Processes"])
    finally:
        box.remove(force=True)


@pytest.mark.parametrize("which", ["host", "28"])
def test_an_anonymous_volume_made_as_a_sourceless_mount_has_its_name(both, which):
    engine = both[which]
    box = engine.containers.run("busybox", ["true"], detach=True, mounts=[Mount("/data", None)],
                                labels=L.labels_for(LESSON, kind="container"))
    try:
        box.wait(timeout=30)
        box.reload()
        name = box.attrs["Mounts"][0]["Name"]
        assert engine.volumes.get(name).name == name
    finally:
        box.remove(v=True, force=True)


@pytest.mark.parametrize("which", ["host", "28"])
def test_overlay_dirs_name_the_upper_directory_where_the_container_writes(both, which):
    engine = both[which]
    marker = uuid.uuid4().hex
    box = engine.containers.run("busybox", ["sh", "-c", f"echo {marker} > /marker; sleep 60"],
                                detach=True, init=True,
                                labels=L.labels_for(LESSON, kind="container"))
    try:
        for _ in range(50):
            if box.exec_run(["cat", "/marker"]).exit_code == 0:
                break
        dirs = overlay_dirs(box)
        assert dirs.source == ("GraphDriver" if which == "host" else "mount")
        seen = engine.containers.run(
            "busybox", ["cat", "/upper/marker"], remove=True,
            volumes={dirs.upper: {"bind": "/upper", "mode": "ro"}},
            labels=L.labels_for(LESSON, kind="container"))
        assert seen.decode().strip() == marker
    finally:
        box.remove(force=True)


@pytest.mark.parametrize("which", ["host", "28"])
def test_cap_add_all_runs_with_the_options_fitted_to_the_engine(both, which):
    engine = both[which]
    options = dind_run_options("unused", engine)
    # 20.10 needs it; 26 and later refuse it here (the host's engine is either: set-up installs 26
    # where none is installed).
    assert ("cap_drop" in options) is engine.version()["Version"].startswith("20.")
    out = engine.containers.run("busybox", ["grep", "CapBnd", "/proc/self/status"], remove=True,
                                cap_add=options["cap_add"], cap_drop=options.get("cap_drop"),
                                labels=L.labels_for(LESSON, kind="container"))
    assert out.startswith(b"CapBnd:")


def test_the_doctor_reports_store_builder_and_no_end_of_life(client, engine28):
    inner = engine28[1]
    check = _check_engine(inner)
    assert check.ok and not check.warning
    assert "containerd image store" in check.detail and "BuildKit" in check.detail
    host = _check_engine(client)
    if host.detail.startswith("Docker Engine 20."):
        assert "end of life" in host.warning and "legacy builder" in host.detail


@pytest.mark.parametrize("which", ["host", "28"])
def test_a_lessons_cleanup_leaves_none_of_its_builds_step_images(both, which):
    # The containerd image store keeps each legacy-builder step as an image of its own, which
    # removing the built image leaves behind; the classic store removes them with it.
    from docklab.lesson import Lesson

    engine = both[which]
    before = set(engine.api.images(all=True, quiet=True))
    lesson = Lesson(LESSON, engine)
    marker = uuid.uuid4().hex
    for name, last in (("steps-a", "ENV X=1"), ("steps-b", "RUN echo b > /b")):
        dockerfile = f"FROM busybox\nRUN echo {marker} > /a\n{last}\n".encode()
        lesson.build(fileobj=io.BytesIO(dockerfile), tag=lesson.name(name))
    # Only this build's images: other tests build on the shared host engine meanwhile.
    made = {image for image in set(engine.api.images(all=True, quiet=True)) - before
            if _built_from(engine, image, marker)}
    assert made
    removed = lesson.cleanup()
    assert not removed.errors
    assert not made & set(engine.api.images(all=True, quiet=True))


def _built_from(engine, image: str, marker: str) -> bool:
    """Whether ``image``'s history has the step that wrote ``marker`` (so it is that step or a
    later one of the same build)."""
    try:
        return any(marker in (step.get("CreatedBy") or "") for step in engine.api.history(image))
    except docker.errors.NotFound:  # another test's image, removed since
        return False


@pytest.mark.parametrize("which", ["host", "28"])
def test_the_volumes_view_names_an_anonymous_volume_made_by_a_one_part_bind(both, which):
    from docklab.widgets.volumes import container_mounts

    engine = both[which]
    box = engine.containers.run("busybox", ["true"], detach=True, volumes=["/data"],
                                labels=L.labels_for(LESSON, kind="container"))
    try:
        box.wait(timeout=30)
        box.reload()
        name = container_mounts(box.attrs)[0]["name"]
        assert engine.volumes.get(name).name == name
    finally:
        box.remove(v=True, force=True)


def test_engine_20_stays_the_end_of_life_engine_beside_docker_dind_on_26(client):
    """`docklab engines start 20` still runs Debian 12's 20.10 (its own recipe), while docker:dind
    and docklab/engine:26, one image under two names, run 26.1."""
    from docklab.images import prepare

    prepare(client, ["docklab/engine:26"], progress=False)
    dind, engine26 = client.images.get("docker:dind"), client.images.get("docklab/engine:26")
    assert engine26.attrs["RootFS"]["Layers"] == dind.attrs["RootFS"]["Layers"]
    learner = f"test-engines-{uuid.uuid4().hex[:6]}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DOCKLAB_LEARNER", learner)
        env.setenv("DOCKLAB_PREFIX", learner)
        started = engines.start(client, "20", images=["busybox"], say=lambda line: None)
        inner = started.client()
        try:
            assert inner.version()["Version"].startswith("20.10."), inner.version()
            box = inner.containers.run("busybox", ["sleep", "30"], detach=True, init=True,
                                       labels=L.labels_for(LESSON, kind="container"))
            assert any("sleep" in " ".join(row) for row in box.top()["Processes"])  # procps
        finally:
            inner.close()
            assert engines.stop(client, "20") == [started.container]
    assert not client.volumes.list(filters={"name": started.volume})
