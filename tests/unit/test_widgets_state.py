"""get_state() of the inventory views over a fake engine: what they sync, and what they say when
the engine cannot tell (swarm without quorum, engine gone). Real engine: tests/integration."""

from __future__ import annotations

import docker.errors
import requests

from docklab.widgets.compose import ComposeView
from docklab.widgets.registry import RegistryView
from docklab.widgets.swarm import SwarmView
from docklab.widgets.volumes import VolumesView
from tests.unit._widget_fakes import (
    FakeContainer,
    FakeEngine,
    FakeNetwork,
    FakeSwarmApi,
    FakeVolume,
)


def test_volumes_view_state():
    anon = "f" * 64
    box = FakeContainer("db", attrs={
        "Mounts": [{"Type": "volume", "Name": "pgdata", "Source": "/v/pgdata",
                    "Destination": "/var/lib/postgresql", "RW": True},
                   {"Type": "volume", "Name": anon, "Source": "/v/x", "Destination": "/tmp/x",
                    "RW": True}],
        "HostConfig": {"Tmpfs": {"/run": ""}}})
    engine = FakeEngine(containers=[box], volumes=[FakeVolume("pgdata"), FakeVolume(anon)])
    view = VolumesView(engine, live=False)
    state = view.get_state()
    assert state["status"] == "snapshot"
    assert [(v["name"][:6], v["anonymous"], v["used_by"]) for v in state["volumes"]] == [
        ("ffffff", True, ["db"]), ("pgdata", False, ["db"])]
    assert {m["type"] for m in state["containers"][0]["mounts"]} == {"volume", "tmpfs"}
    assert "anonymous" in view.children[-1].value
    view.close()


def test_compose_view_state(tmp_path):
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "compose.yaml").write_text(
        "services:\n  web:\n    image: nginx\n    scale: 2\n")
    labels = {"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}
    engine = FakeEngine(containers=[FakeContainer("shop-web-1", labels=labels)],
                        networks=[FakeNetwork("shop_default",
                                              {"com.docker.compose.network": "default"})])
    view = ComposeView(engine, tmp_path / "shop", live=False)
    state = view.get_state()
    assert state["project"] == "shop"
    assert state["desired"]["services"]["web"]["replicas"] == 2
    (web,) = state["diff"]["services"]
    assert (web["desired"], web["running"], web["verdict"]) == (2, 1, "too few")
    assert state["diff"]["networks"] == [{"key": "default", "name": "shop_default",
                                          "external": False, "verdict": "ok"}]
    assert engine.containers.filters[-1] == {"label": ["com.docker.compose.project=shop"]}
    view.close()


def test_compose_view_with_a_broken_file(tmp_path):
    (tmp_path / "compose.yaml").write_text("services: [unclosed\n")
    view = ComposeView(FakeEngine(), tmp_path, live=False)
    assert "cannot read" in view.get_state()["desired"]["error"]
    assert "cannot read" in view.children[-1].value
    view.close()


NODE = {"ID": "n1" * 10, "Description": {"Hostname": "manager-1"},
        "Spec": {"Role": "manager", "Availability": "active"},
        "Status": {"State": "ready", "Addr": "10.0.0.1"},
        "ManagerStatus": {"Leader": True, "Reachability": "reachable", "Addr": "10.0.0.1:2377"}}
SERVICE = {"ID": "s1", "Spec": {"Name": "web", "Mode": {"Replicated": {"Replicas": 3}},
                                "TaskTemplate": {"ContainerSpec": {"Image": "app:v2@sha256:1"}}},
           "UpdateStatus": {"State": "updating", "Message": "update in progress"}}


def task(image, state="running"):
    return {"ServiceID": "s1", "DesiredState": "running", "Status": {"State": state},
            "Spec": {"ContainerSpec": {"Image": image}}}


def test_swarm_view_state_during_a_rolling_update():
    api = FakeSwarmApi(nodes=[NODE], services=[SERVICE],
                       tasks=[task("app:v2@sha256:1"), task("app:v1@sha256:0"),
                              task("app:v1@sha256:0")])
    view = SwarmView(FakeEngine(swarm={"LocalNodeState": "active"}, api=api), live=False)
    state = view.get_state()
    assert state["quorum"] == {"managers": 1, "reachable": 1, "quorum": 1, "tolerates": 0,
                               "has_quorum": True}
    assert state["nodes"][0]["leader"] and state["nodes"][0]["hostname"] == "manager-1"
    (web,) = state["services"]
    assert (web["replicas"], web["running"], web["updated"]) == (3, 3, 1)
    assert web["update"]["state"] == "updating" and web["image"] == "app:v2"
    view.close()


def test_swarm_view_without_quorum_says_so():
    error = docker.errors.APIError(
        "503", explanation="rpc error: code = Unknown desc = The swarm does not have a leader. "
        "It's possible that too few managers are online.")
    api = FakeSwarmApi(error=error)
    view = SwarmView(FakeEngine(swarm={"LocalNodeState": "active", "Managers": 3}, api=api),
                     live=False)
    state = view.get_state()
    assert "does not have a leader" in state["error"]
    assert state["quorum"]["managers"] == 3 and not state["quorum"]["has_quorum"]
    assert "NO QUORUM" in view.children[-1].value
    view.close()


def test_swarm_view_outside_a_swarm():
    view = SwarmView(FakeEngine(), live=False)
    assert "not in a swarm" in view.get_state()["error"]
    view.close()


def test_registry_view_state(monkeypatch):
    repos = [{"name": "app", "tags": [
        {"tag": "1", "digest": "sha256:" + "a" * 64, "media_type": "m", "size": 30,
         "layers": [{"digest": "sha256:" + "b" * 64, "size": 10},
                    {"digest": "sha256:" + "c" * 64, "size": 20}]},
        {"tag": "2", "digest": "sha256:" + "d" * 64, "media_type": "m", "size": 10,
         "layers": [{"digest": "sha256:" + "b" * 64, "size": 10}]}]}]
    monkeypatch.setattr("docklab.widgets.registry.read_registry", lambda url, fetch=None: repos)
    view = RegistryView(FakeEngine(), "localhost:5000", live=False)
    state = view.get_state()
    assert state["url"] == "http://localhost:5000" and state["repositories"] == repos
    assert "1 layer(s) shared" in view.children[-1].value
    view.close()


def test_registry_view_when_nothing_answers(monkeypatch):
    def refuse(url, fetch=None):
        raise requests.ConnectionError("refused")

    monkeypatch.setattr("docklab.widgets.registry.read_registry", refuse)
    view = RegistryView(FakeEngine(), live=False)
    assert "nothing answers" in view.get_state()["error"]
    view.close()


def test_registry_replies_fetched_by_a_helper_are_parsed():
    seen = []

    def helper(script):
        seen.append(script)
        if "_catalog" in script:
            return ('@@@REPLY\n  HTTP/1.1 200 OK\n  Content-Type: application/json\n@@@BODY\n'
                    '{"repositories":["app"]}\n\n')
        if "tags/list" in script:
            return '@@@REPLY\n  HTTP/1.1 200 OK\n@@@BODY\n{"name":"app","tags":["1"]}\n\n'
        return ('@@@REPLY\n  HTTP/1.1 200 OK\n  Docker-Content-Digest: sha256:abc\n@@@BODY\n'
                '{"mediaType":"m","config":{"size":5},"layers":[{"digest":"sha256:l1","size":7}]}'
                '\n\n')

    from docklab.widgets.registry import fetch_via_engine, read_registry

    repos = read_registry("http://localhost:5000", fetch=fetch_via_engine(helper))
    assert repos == [{"name": "app", "tags": [{
        "tag": "1", "digest": "sha256:abc", "media_type": "m", "config_size": 5,
        "layers": [{"digest": "sha256:l1", "size": 7}], "size": 7}]}]
    assert "Accept: application/vnd.docker.distribution.manifest.v2+json" in seen[-1]


def test_closing_a_debouncer_waits_for_the_refresh_in_progress():
    # A refresh may run a helper container (the registry view on a remote engine): once close()
    # returns, nothing may still be creating one, or it outlives the lesson's cleanup.
    import threading
    import time

    from docklab.widgets._base import Debouncer

    started, finished = threading.Event(), threading.Event()

    def slow_refresh():
        started.set()
        time.sleep(0.5)
        finished.set()

    debouncer = Debouncer(slow_refresh, delay=0)
    debouncer.poke()
    assert started.wait(5)
    debouncer.close()
    assert finished.is_set()
