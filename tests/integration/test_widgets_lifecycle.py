"""The lifecycle view follows real containers through the real engine's event stream."""

from __future__ import annotations

import socket
import time

import docker
import pytest

from docklab.lesson import Lesson
from docklab.widgets.lifecycle import LifecycleView
from tests.conftest import SocketForwarder

pytestmark = pytest.mark.engine


@pytest.fixture
def lesson(client, learner_env):
    lesson = Lesson("test-widgets", client)
    yield lesson
    lesson.cleanup()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def transitions(view, name):
    for box in view.get_state()["containers"]:
        if box["name"] == name:
            return box["transitions"]
    return []


def test_create_start_stop_remove(lesson):
    view = LifecycleView(lesson.client, lesson=lesson)
    try:
        assert view.wait_live(10), view.status
        box = lesson.create("busybox", "sleep 600", name="widget-life")
        box.start()
        box.stop(timeout=1)  # sleep as PID 1 ignores SIGTERM: SIGKILL after 1 s
        box.remove()
        assert wait_for(lambda: view.state_of("widget-life") == "removed"), view.containers
        steps = transitions(view, "widget-life")
        assert [(s["from"], s["to"]) for s in steps] == [
            ("", "created"), ("created", "running"), ("running", "exited"), ("exited", "removed")]
        stop = steps[2]
        assert wait_for(lambda: transitions(view, "widget-life")[2]["action"] == "stop")
        assert stop["signals"] == ["SIGTERM", "SIGKILL"] and stop["exit_code"] == 137
        html = view.children[-1].value
        assert "widget-life" in html and "SIGTERM, then SIGKILL after the grace period" in html
    finally:
        view.close()


def test_an_existing_container_kill_and_restart_policy(lesson):
    runner = lesson.run("busybox", "sleep 600", name="widget-existing", init=True)
    # Long enough that the view is following it before it first dies, even on a loaded machine.
    lesson.run("busybox", ["sh", "-c", "sleep 2; exit 3"], name="widget-flaky",
               restart_policy={"Name": "on-failure", "MaximumRetryCount": 1})
    view = LifecycleView(lesson.client, [runner, "widget-flaky"])
    try:
        assert view.state_of("widget-existing") == "running"
        assert view.wait_live(10)
        runner.kill(signal="SIGTERM")  # docker-init passes it on; sleep dies of it: 143
        assert wait_for(lambda: view.state_of("widget-existing") == "exited"), view.containers
        died = transitions(view, "widget-existing")[-1]
        assert died["signals"] == ["SIGTERM"] and died["exit_code"] == 143
        assert wait_for(lambda: any(s["to"] == "restarting"
                                    for s in transitions(view, "widget-flaky")), 15)
        assert wait_for(lambda: view.state_of("widget-flaky") == "exited", 15)
    finally:
        view.close()


def test_close_stops_the_listener_at_once(lesson):
    view = LifecycleView(lesson.client, lesson=lesson)
    assert view.wait_live(10)
    listener = view._listeners[0]
    started = time.monotonic()
    view.close()
    assert time.monotonic() - started < 2 and not listener.running
    assert view.status == "stopped"


def test_no_engine_is_shown_not_raised():
    client = docker.DockerClient(base_url="unix:///nonexistent/docker.sock", version="1.41")
    view = LifecycleView(client)
    try:
        assert wait_for(lambda: view.status.startswith("engine unreachable"))
        assert "not answering" in view.children[-1].value
    finally:
        view.close()


class CuttableForwarder(SocketForwarder):
    """A tcp:// engine whose connections can all be cut at once: the engine "goes away"."""

    def __init__(self):
        self.sockets = []
        super().__init__()

    def _pump(self, src, dst):
        self.sockets += [src, dst]
        super()._pump(src, dst)

    def cut(self):
        # close() alone leaves a thread blocked in accept() still accepting: shut it down first
        for sock in [self.server, *self.sockets]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.close()


def test_engine_going_away_is_shown_in_the_view():
    forwarder = CuttableForwarder()
    client = docker.DockerClient(base_url=forwarder.docker_host, version="1.41", timeout=5)
    view = LifecycleView(client)
    try:
        assert view.wait_live(10) and view.status == "live"
        forwarder.cut()
        assert wait_for(lambda: view.status.startswith("engine unreachable"), 15), view.status
        assert "not answering" in view.children[-1].value
    finally:
        view.close()
        forwarder.cut()
