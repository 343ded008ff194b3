"""The swarm view against a real single-node swarm in a Docker-in-Docker engine.

The swarm runs inside a docker:dind container (the course's recipe), never on the host engine
that other lessons and tests share.
"""

from __future__ import annotations

import time

import docker
import pytest

from docklab.images import dind_run_options
from docklab.widgets.swarm import SwarmView
from tests.integration._widgets import lesson, wait_for  # noqa: F401 - fixture

pytestmark = pytest.mark.engine


@pytest.fixture
def inner(lesson):  # noqa: F811
    volume = lesson.volume("widget-swarm-data")
    node = lesson.run("docker:dind", name="widget-swarm",
                      ports={"2375/tcp": ("127.0.0.1", None)},
                      **dind_run_options(volume.name, lesson.client))
    node.reload()
    port = node.attrs["NetworkSettings"]["Ports"]["2375/tcp"][0]["HostPort"]
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{port}", version="1.41", timeout=30)
    _wait_for_engine(client)
    image = lesson.client.images.get("busybox")
    (loaded,) = client.images.load(b"".join(image.save()))
    loaded.tag("busybox", "latest")
    yield client
    client.close()


def test_quorum_replicas_and_a_rolling_update(inner):
    view = SwarmView(inner, interval=0.5)
    try:
        assert "not in a swarm" in view.get_state()["error"]
        inner.swarm.init(advertise_addr="eth0")
        assert wait_for(lambda: view.get_state()["quorum"].get("managers") == 1, 20), \
            view.get_state()
        state = view.get_state()
        assert state["quorum"] == {"managers": 1, "reachable": 1, "quorum": 1, "tolerates": 0,
                                   "has_quorum": True}
        (node,) = state["nodes"]
        assert node["leader"] and node["role"] == "manager" and node["state"] == "ready"

        inner.images.get("busybox").tag("busybox", "v2")
        service = inner.services.create(
            "busybox:latest", ["sleep", "600"], name="web",
            mode=docker.types.ServiceMode("replicated", replicas=2),
            update_config=docker.types.UpdateConfig(parallelism=1, delay=1_000_000_000))

        def web():
            return next((s for s in view.get_state()["services"] if s["name"] == "web"), {})

        assert wait_for(lambda: web().get("running") == 2, 60), view.get_state()
        assert web()["updated"] == 2 and web()["replicas"] == 2
        service.reload()
        inner.api.update_service(
            service.id, service.version, fetch_current_spec=True,
            task_template=docker.types.TaskTemplate(
                docker.types.ContainerSpec("busybox:v2", ["sleep", "600"])))
        seen = set()
        assert wait_for(lambda: (seen.add((web()["updated"], web()["update"]["state"])) or
                                 (web()["updated"] == 2 and web()["image"] == "busybox:v2" and
                                  web()["update"]["state"] == "completed")), 90), seen
        # it went through a state with only some replicas on the new image
        assert any(updated < 2 for updated, _ in seen) or ("updating" in {s for _, s in seen})
        assert "rolling update" in view.children[-1].value
    finally:
        view.close()


def _dind(lesson, name: str, network: str):  # noqa: F811
    volume = lesson.volume(f"{name}-data")
    node = lesson.run("docker:dind", name=name, network=network,
                      ports={"2375/tcp": ("127.0.0.1", None)},
                      **dind_run_options(volume.name, lesson.client))
    node.reload()
    port = node.attrs["NetworkSettings"]["Ports"]["2375/tcp"][0]["HostPort"]
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{port}", version="1.41", timeout=30)
    _wait_for_engine(client)
    return node, client


def _wait_for_engine(client, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except Exception:  # noqa: BLE001 - dockerd is still starting
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_three_managers_keep_quorum_with_one_down_and_lose_it_with_two(lesson):  # noqa: F811
    net = lesson.network("widget-swarm-net")
    nodes = [_dind(lesson, f"widget-manager-{i}", net.name) for i in (1, 2, 3)]
    (first, leader), others = nodes[0], nodes[1:]
    leader.swarm.init(advertise_addr="eth0")
    token = leader.swarm.attrs["JoinTokens"]["Manager"]
    address = first.attrs["NetworkSettings"]["Networks"][net.name]["IPAddress"]
    for _, client in others:
        client.swarm.join(remote_addrs=[f"{address}:2377"], join_token=token,
                          advertise_addr="eth0")
    view = SwarmView(leader, interval=0.5)
    try:
        assert wait_for(lambda: view.get_state()["quorum"].get("reachable") == 3, 60), \
            view.get_state()
        assert view.get_state()["quorum"] == {"managers": 3, "reachable": 3, "quorum": 2,
                                              "tolerates": 1, "has_quorum": True}
        others[1][0].stop(timeout=0)  # one manager down: 2 of 3 still a majority
        assert wait_for(lambda: view.get_state()["quorum"].get("reachable") == 2, 90), \
            view.get_state()
        state = view.get_state()
        assert state["quorum"]["has_quorum"] and not state["error"]
        assert sorted(n["reachability"] for n in state["nodes"]) == [
            "reachable", "reachable", "unreachable"]
        others[0][0].stop(timeout=0)  # two down: no majority, no leader, nothing can change
        assert wait_for(lambda: "leader" in view.get_state()["error"], 90), view.get_state()
        assert view.get_state()["quorum"]["has_quorum"] is False
        assert "NO QUORUM" in view.children[-1].value
    finally:
        view.close()
        for _, client in nodes:
            client.close()
