"""Networks and the probed reachability matrix against the real engine."""

from __future__ import annotations

import pytest

from docklab.widgets.networks import NetworkView
from tests.integration._widgets import lesson, wait_for  # noqa: F401 - fixture

pytestmark = pytest.mark.engine


def test_user_network_peers_reach_each_other_by_name_default_bridge_does_not(lesson):  # noqa: F811
    net = lesson.network("widget-net")
    lesson.run("nginx", name="widget-web", network=net.name,
               ports={"80/tcp": ("127.0.0.1", None)})
    lesson.run("busybox", "sleep 600", name="widget-peer", network=net.name)
    lesson.run("busybox", "sleep 600", name="widget-lonely")  # the default bridge
    view = NetworkView(lesson.client, lesson=lesson)
    try:
        assert wait_for(lambda: {n["name"] for n in view.get_state()["networks"]} ==
                        {"bridge", net.name})
        view.probe()
        assert view.wait(120)
        state = view.get_state()
        assert not state["probing"]
        # the nginx image exposes 80: the probe connects to it by name
        cell = state["matrix"][lesson.name("widget-peer")][lesson.name("widget-web")]
        assert cell["resolves"] and cell["by_name"] and cell["by_ip"] and cell["port"] == 80
        assert view.reachable("widget-web", "widget-peer")
        # on the default bridge there is no DNS by name, and the networks are apart
        lonely = state["matrix"][lesson.name("widget-lonely")]
        assert not lonely[lesson.name("widget-web")]["by_name"]
        assert not lonely[lesson.name("widget-web")]["by_ip"]
        assert view.reachable("widget-peer", "widget-lonely") is False
        on_net = next(n for n in state["networks"] if n["name"] == net.name)
        assert {c["name"] for c in on_net["containers"]} == {lesson.name("widget-web"),
                                                              lesson.name("widget-peer")}
        (port,) = state["ports"]
        assert port["container"] == lesson.name("widget-web")
        assert port["container_port"] == "80/tcp" and port["host_ip"] == "127.0.0.1"
        assert "Reachability" in view.children[-1].value
    finally:
        view.close()
