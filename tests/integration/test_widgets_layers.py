"""Image layers and build progress against the real engine, with either builder: BuildKit (the
CLI's buildx, ``--progress=rawjson``) and the legacy builder (the SDK)."""

from __future__ import annotations

import pytest

from docklab.widgets.build import BuildView, buildkit_available
from docklab.widgets.layers import LayersView
from tests.integration._widgets import lesson  # noqa: F401 - fixture

pytestmark = pytest.mark.engine

#: The rows each builder makes of DOCKERFILE: every instruction (legacy), or only the steps that
#: make a layer (BuildKit: ENV and CMD only change the image's config, and are no vertex).
ROWS = {"legacy": ["FROM", "ENV", "RUN", "RUN", "CMD"], "buildkit": ["FROM", "RUN", "RUN"]}
#: How each says a RUN step failed with exit code 3.
FAILED_WITH_3 = {"legacy": "non-zero code: 3", "buildkit": "exit code: 3"}
builders = pytest.mark.parametrize("builder", ["legacy", "buildkit"])


def test_buildkit_is_here():
    """make lab installs buildx >= 0.15 (scripts/ensure-buildx.sh): BuildKit's tests always run."""
    assert buildkit_available()

DOCKERFILE = """FROM busybox
ENV GREETING=hi
RUN echo hello > /hello.txt
RUN dd if=/dev/zero of=/blob bs=1k count=300 2>/dev/null
CMD ["cat", "/hello.txt"]
"""


@builders
def test_build_progress_then_cache_hits_then_shared_layers(lesson, tmp_path, builder):  # noqa: F811
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    view = BuildView(lesson.client, lesson=lesson, builder=builder)
    tag = lesson.name(f"widget-layers-{builder}:1")
    try:
        view.build(path=str(tmp_path), tag=tag, nocache=True)
        image_id = view.wait(300)
        state = view.get_state()["build_state"]
        assert image_id.startswith("sha256:") and state["finished"] and not state["error"], state
        assert state["builder"] == builder
        # (the legacy builder adds the course's labels as LABEL steps; BuildKit as --label)
        steps = [step for step in state["steps"] if not step["instruction"].startswith("LABEL")]
        assert [step["instruction"].split()[0] for step in steps] == ROWS[builder]
        assert [step["status"] for step in steps] == ["base"] + ["built"] * (len(steps) - 1)
        assert state["cache_hits"] == 0 and state["cache_misses"] == state["total"] - 1
        assert view.progress.value == view.progress.max == state["total"]
        # the same build again: every step after FROM comes from the cache
        layers = lesson.client.images.get(image_id).attrs["RootFS"]["Layers"]
        view.build(path=str(tmp_path), tag=tag)
        again_id = view.wait(300)
        # The same layers. (The same image ID too, except where BuildKit writes a new config
        # with a new creation time, and the tag leaves the first image: Engine 28 with the
        # containerd image store.)
        assert again_id and lesson.client.images.get(again_id).attrs["RootFS"]["Layers"] == layers
        if builder == "legacy":
            assert again_id == image_id
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


@builders
def test_a_failing_build_says_which_step(lesson, tmp_path, builder):  # noqa: F811
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    view = BuildView(lesson.client, lesson=lesson, builder=builder)
    try:
        view.build(path=str(tmp_path), tag=lesson.name("widget-broken:1"))
        assert view.wait(300) == ""
        state = view.get_state()["build_state"]
        assert state["steps"][-1]["status"] == "failed"
        assert FAILED_WITH_3[builder] in state["error"], state["error"]
        assert view.progress.bar_style == "danger"
    finally:
        view.close()
