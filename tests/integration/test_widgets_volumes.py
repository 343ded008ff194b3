"""Volumes and mounts against the real engine: named, anonymous, bind and tmpfs."""

from __future__ import annotations

import pytest

from docklab.widgets.volumes import VolumesView
from tests.integration._widgets import lesson, wait_for  # noqa: F401 - fixture

pytestmark = pytest.mark.engine


def test_mounts_by_type_live(lesson, tmp_path):  # noqa: F811
    view = VolumesView(lesson.client, lesson=lesson)
    try:
        assert view.wait_live(10)
        data = lesson.volume("widget-data")
        lesson.run("busybox", "sleep 600", name="widget-vol",
                   volumes={data.name: {"bind": "/data", "mode": "rw"},
                            str(tmp_path): {"bind": "/site", "mode": "ro"}},
                   tmpfs={"/scratch": "size=1m"})
        lesson.run("busybox", "sleep 600", name="widget-anon", volumes=["/anon"])

        def seen():
            state = view.get_state()
            return len(state["containers"]) == 2 and len(state["volumes"]) == 2

        assert wait_for(seen), view.get_state()
        state = view.get_state()
        by_name = {c["name"]: c for c in state["containers"]}
        kinds = {(m["type"], m["target"], m["rw"]) for m in by_name["widget-vol"]["mounts"]}
        assert kinds == {("volume", "/data", True), ("bind", "/site", False),
                         ("tmpfs", "/scratch", True)}
        volumes = {v["name"]: v for v in state["volumes"]}
        assert volumes[data.name] == {**volumes[data.name], "anonymous": False,
                                      "used_by": ["widget-vol"]}
        anonymous = [v for v in state["volumes"] if v["anonymous"]]
        assert len(anonymous) == 1 and anonymous[0]["used_by"] == ["widget-anon"]
        html = view.children[-1].value
        assert "anonymous" in html and "bind" in html and "tmpfs" in html
    finally:
        view.close()
