"""The lifecycle model folds container events into states and transitions; the view syncs them."""

from __future__ import annotations

import time

from docklab.widgets._base import parse_engine_time
from docklab.widgets.lifecycle import LifecycleModel, LifecycleView, explain_exit, signal_name
from tests.unit._widget_fakes import FakeClient
from tests.unit._widget_fakes import container_event as ev


def run(model, *events, **kwargs):
    return [model.apply(e, **kwargs) for e in events]


def test_stop_is_sigterm_then_sigkill_after_the_grace_period():
    model = LifecycleModel()
    run(model, ev("create", t=1), ev("start", t=2), ev("kill", t=3, signal="15"),
        ev("kill", t=13, signal="9"), ev("die", t=14, exitCode="137"), ev("stop", t=15))
    (box,) = model.snapshot()
    assert box["state"] == "exited" and box["exit_code"] == 137
    assert [(tr["from"], tr["to"]) for tr in box["transitions"]] == [
        ("", "created"), ("created", "running"), ("running", "exited")]
    died = box["transitions"][-1]
    assert died["action"] == "stop" and died["signals"] == ["SIGTERM", "SIGKILL"]
    assert "SIGTERM, then SIGKILL after the grace period" in died["detail"]
    assert "exit 137 (128 + 9: SIGKILL)" in died["detail"]


def test_kill_is_sigkill_and_exit_code_comes_from_die():
    model = LifecycleModel()
    run(model, ev("create"), ev("start"), ev("kill", signal="9"), ev("die", exitCode="137"))
    died = model.snapshot()[0]["transitions"][-1]
    assert died["action"] == "kill" and died["signals"] == ["SIGKILL"] and died["exit_code"] == 137


def test_a_process_that_exits_by_itself():
    model = LifecycleModel()
    run(model, ev("create"), ev("start"), ev("die", exitCode="0"))
    died = model.snapshot()[0]["transitions"][-1]
    assert died["action"] == "exit" and died["detail"] == "exit 0 (success)"


def test_pause_unpause_restart_policy_and_remove():
    model = LifecycleModel()
    run(model, ev("create"), ev("start"), ev("pause"), ev("unpause"))
    model.apply(ev("die", exitCode="3"), restarting=True)
    run(model, ev("start"), ev("die", exitCode="3"), ev("destroy"))
    states = [tr["to"] for tr in model.snapshot()[0]["transitions"]]
    assert states == ["created", "running", "paused", "running", "restarting", "running",
                      "exited", "removed"]
    assert model.snapshot()[0]["transitions"][5]["action"] == "restart policy"


def test_restart_event_names_the_start_it_caused():
    model = LifecycleModel()
    run(model, ev("create"), ev("start"), ev("kill", signal="15"), ev("die", exitCode="143"),
        ev("stop"), ev("start"), ev("restart"))
    actions = [tr["action"] for tr in model.snapshot()[0]["transitions"]]
    assert actions == ["create", "start", "stop", "restart"]


def test_only_followed_containers_are_tracked():
    model = LifecycleModel(follow_all=False, names={"wanted"})
    run(model, ev("create", cid="a" * 64, name="other"), ev("create", cid="b" * 64, name="wanted"),
        ev("start", cid="a" * 64, name="other"))
    assert [box["name"] for box in model.snapshot()] == ["wanted"]


def test_events_that_change_nothing_are_ignored():
    model = LifecycleModel()
    assert run(model, ev("create"), ev("exec_start: sh -c true"), ev("attach"),
               ev("health_status: healthy"))[1:] == [None, None, None]
    assert model.apply({"Type": "network", "Action": "connect"}) is None
    assert len(model.snapshot()[0]["transitions"]) == 1


def test_exit_codes_and_signals_explained():
    assert explain_exit(143) == "exit 143 (128 + 15: SIGTERM)"
    assert explain_exit(127) == "exit 127 (command not found)"
    assert explain_exit(42) == "exit 42"
    assert signal_name("15") == "SIGTERM" and signal_name("SIGUSR1") == "SIGUSR1"


def test_engine_time_parsing_keeps_nanoseconds():
    assert parse_engine_time("2026-01-01T00:00:00.123456789Z") % 10**9 == 123456789
    assert parse_engine_time("2026-01-01T01:00:00+01:00") == parse_engine_time(
        "2026-01-01T00:00:00Z")


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_view_state_follows_the_stream_and_close_stops_it():
    client = FakeClient([ev("create"), ev("start"), ev("kill", signal="9"),
                         ev("die", exitCode="137")])
    view = LifecycleView(client)
    assert wait_for(lambda: view.get_state()["containers"] and
                    view.get_state()["containers"][0]["state"] == "exited")
    state = view.get_state()
    assert state["status"] == "live"
    assert state["last_transition"]["to"] == "exited" and state["last_transition"]["name"] == "web"
    html = view.children[-1].value
    assert "Container lifecycle" in html and "docklab-lifecycle-diagram" in html
    assert "exit 137 (128 + 9: SIGKILL)" in html
    # the window starts on the engine's clock and the filter asks for container events only
    assert client.event_calls[0]["filters"] == {"type": "container"}
    assert client.event_calls[0]["since"].startswith(str(parse_engine_time(
        "2026-01-01T00:00:00.123456789Z") // 10**9))
    listener = view._listeners[0]
    view.close()
    assert not listener.running
    assert client.streams[-1].closed.is_set()
    assert view.status == "stopped"


def test_view_says_so_when_the_engine_is_gone():
    view = LifecycleView(FakeClient(down=True))
    assert wait_for(lambda: view.status.startswith("engine unreachable"))
    assert "connection refused" in view.status
    assert "not answering" in view.children[-1].value
    view.close()
    assert repr(view) == "<LifecycleView>"
