"""Image layers and build progress against the real engine (legacy builder)."""

from __future__ import annotations

import pytest

from docklab.widgets.build import BuildView
from docklab.widgets.layers import LayersView
from tests.integration._widgets import lesson  # noqa: F401 - fixture

pytestmark = pytest.mark.engine

DOCKERFILE = """FROM busybox
ENV GREETING=hi
RUN echo hello > /hello.txt
RUN dd if=/dev/zero of=/blob bs=1k count=300 2>/dev/null
CMD ["cat", "/hello.txt"]
"""


def test_build_progress_then_cache_hits_then_shared_layers(lesson, tmp_path):  # noqa: F811
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    view = BuildView(lesson.client, lesson=lesson)
    tag = lesson.name("widget-layers:1")
    try:
        view.build(path=str(tmp_path), tag=tag, nocache=True)
        image_id = view.wait(300)
        state = view.get_state()["build_state"]
        assert image_id.startswith("sha256:") and state["finished"] and not state["error"]
        statuses = [step["status"] for step in state["steps"]]
        assert statuses[0] == "base" and statuses[1:5] == ["built"] * 4
        assert state["cache_hits"] == 0 and state["cache_misses"] == state["total"] - 1
        assert view.progress.value == view.progress.max == state["total"]
        # the same build again: every step after FROM comes from the cache
        view.build(path=str(tmp_path), tag=tag)
        assert view.wait(300) == image_id
        again = view.get_state()["build_state"]
        assert again["cache_misses"] == 0 and again["cache_hits"] == again["total"] - 1
        assert "cache hit" in view.children[-1].value
    finally:
        view.close()

    layers = LayersView(lesson.client, tag, compare="busybox")
    state = layers.get_state()
    mine, base = state["layers"], state["compare_layers"]
    assert [layer["shared"] for layer in base] == [True] * len(base)
    assert sum(layer["shared"] for layer in mine) == len(base)
    dd = next(layer for layer in mine if "dd if=/dev/zero" in layer["created_by"])
    # 300 KiB of zeros: the layer's size as the engine reports it (overlay2: the files' bytes; the
    # containerd image store: the layer's tar, a few KiB of headers more).
    assert not dd["shared"] and 300 * 1024 <= dd["size"] <= 316 * 1024
    assert state["summary"]["own"] >= 300 * 1024
    assert state["summary"]["shared_filesystem_layers"] == len(
        lesson.client.images.get("busybox").attrs["RootFS"]["Layers"])
    assert "shared" in layers.children[-1].value
    layers.close()


def test_a_failing_build_says_which_step(lesson, tmp_path):  # noqa: F811
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    view = BuildView(lesson.client, lesson=lesson)
    try:
        view.build(path=str(tmp_path), tag=lesson.name("widget-broken:1"))
        assert view.wait(300) == ""
        state = view.get_state()["build_state"]
        assert state["steps"][-1]["status"] == "failed" and "non-zero code: 3" in state["error"]
        assert view.progress.bar_style == "danger"
    finally:
        view.close()
