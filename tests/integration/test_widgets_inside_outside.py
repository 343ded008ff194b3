"""Inside vs outside, against the real engine: both sides come from the engine, not this /proc."""

from __future__ import annotations

import pytest

from docklab.lesson import Lesson
from docklab.storage import image_store
from docklab.widgets.inside_outside import InsideOutsideView

pytestmark = pytest.mark.engine


@pytest.fixture
def lesson(client, learner_env):
    lesson = Lesson("test-widgets", client)
    yield lesson
    lesson.cleanup()


def test_pid1_hostname_interfaces_mounts_and_limits(lesson, learner_env):
    box = lesson.run("busybox", "sleep 600", name="widget-io", mem_limit="64m",
                     nano_cpus=500_000_000, tmpfs={"/scratch": ""})
    box.reload()
    view = InsideOutsideView(lesson.client, box, lesson=lesson)
    try:
        assert view.wait(60) and view.status == "live", view.status
        state = view.get_state()
        inside, outside = state["inside"], state["outside"]
        assert inside["pid1"] == "sleep 600"
        assert outside["pid1"] == {"host_pid": box.attrs["State"]["Pid"], "command": "sleep 600"}
        assert outside["pid1"]["host_pid"] != 1 and outside["processes"] > inside["processes"]
        assert inside["hostname"] == box.id[:12] != outside["hostname"]
        ip = box.attrs["NetworkSettings"]["IPAddress"]
        assert {"name": "eth0", "address": f"{ip}/16"} in inside["interfaces"]
        gateway = box.attrs["NetworkSettings"]["Gateway"]
        assert [i["address"].split("/")[0] for i in outside["bridge"]] == [gateway]
        assert {"target": "/scratch", "type": "tmpfs", "source": "tmpfs"} in inside["mounts"]
        assert any(m["target"] == "/scratch" for m in outside["mounts"])
        assert inside["limits"]["memory"] == outside["limits"]["memory"] == "64 MiB"
        assert inside["limits"]["cpus"] == outside["limits"]["cpus"] == "0.5"
        html = view.children[-1].value
        assert "inside widget-io" in html and "gateway" in html
        # where / comes from, as the engine's image store shows it
        store = image_store(lesson.client)
        if store.kind == "containerd":  # no GraphDriver.Data: the container's own mount table
            assert outside["rootfs"] == "" and inside["upperdir"].startswith("/")
            assert store.description in html
            assert f"its changes go to <code>{inside['upperdir']}</code>" in html
        else:
            assert outside["rootfs"].endswith("/merged")
            assert f"merged at <code>{outside['rootfs']}</code>" in html
        # a stopped container has no inside: the view follows its events and says so
        box.stop(timeout=0)
        assert _eventually(lambda: view.inside.get("not_running") == "exited")
    finally:
        view.close()
    # the helpers ran with --rm and the lesson's labels: only widget-io is left
    mine = lesson.client.containers.list(
        all=True, filters={"label": f"org.docklab.learner={learner_env}"})
    assert [c.name for c in mine] == ["widget-io"]


def _eventually(predicate, timeout=20.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False
