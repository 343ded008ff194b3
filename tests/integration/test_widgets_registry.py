"""Registry contents via the HTTP API v2 of a real registry:2 container."""

from __future__ import annotations

import pytest

from docklab.widgets.registry import RegistryView
from tests.integration._widgets import lesson, wait_for  # noqa: F401 - fixture

pytestmark = pytest.mark.engine


@pytest.mark.parametrize("via", ["kernel", "engine"])
def test_repositories_tags_digests_and_shared_layers(lesson, via):  # noqa: F811
    registry = lesson.run("registry:2", name="widget-registry",
                          ports={"5000/tcp": ("127.0.0.1", None)})
    registry.reload()
    port = registry.attrs["NetworkSettings"]["Ports"]["5000/tcp"][0]["HostPort"]
    address = f"localhost:{port}"
    client = lesson.client
    view = RegistryView(client, address, via=via, lesson=lesson)
    pushed = []
    try:
        assert wait_for(lambda: view.error == "" and view.status == "live", 15), view.error
        assert view.get_state()["repositories"] == []
        for tag in ("1", "2"):
            repo = f"{address}/widgets/busybox"
            client.images.get("busybox").tag(repo, tag)
            pushed.append(f"{repo}:{tag}")
            for _ in client.images.push(repo, tag, stream=True, decode=True):
                pass
        assert wait_for(lambda: len(view.get_state()["repositories"][0]["tags"]) == 2), \
            view.get_state()
        (repo,) = view.get_state()["repositories"]
        assert repo["name"] == "widgets/busybox"
        one, two = repo["tags"]
        assert one["digest"].startswith("sha256:") and one["digest"] == two["digest"]
        assert one["layers"] and all(layer["size"] > 0 for layer in one["layers"])
        # Docker's format, or OCI's where the containerd store holds the image as OCI (it was
        # loaded from a `docker save` of Engine 26 or later, the host engine set-up installs).
        assert one["media_type"] in ("application/vnd.docker.distribution.manifest.v2+json",
                                     "application/vnd.oci.image.manifest.v1+json")
        assert "widgets/busybox" in view.children[-1].value
    finally:
        view.close()
        for ref in pushed:
            client.images.remove(ref)


def test_no_registry_is_said_not_raised(client):
    view = RegistryView(client, "http://127.0.0.1:9", live=False)
    assert "nothing answers" in view.get_state()["error"]
    assert "nothing answers" in view.children[-1].value
    via_engine = RegistryView(client, "http://127.0.0.1:9", live=False, via="engine")
    assert "nothing answers" in via_engine.get_state()["error"]
