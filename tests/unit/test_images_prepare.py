"""prepare's decisions (pull or build, what to skip) with a fake engine."""

import docker.errors
import pytest

from docklab import labels as L
from docklab.errors import ImageError
from docklab.images import CATALOGUE, image_status, prepare, recipe_hash
from docklab.images import build as build_module
from docklab.images.build import PullFailed, pull
from docklab.images.prepare import image_source


class FakeImage:
    def __init__(self, ref, labels=None):
        self.tags = [ref]
        self.labels = labels or {}
        self.id = f"sha256:{abs(hash((ref, tuple(sorted(self.labels.items()))))):064x}"[:71]
        self.short_id = self.id[:19]
        self.attrs = {"Size": 1000}

    def reload(self):
        pass


class FakeImages:
    def __init__(self, present):
        self.present = present
        self.removed = []

    def get(self, ref):
        if ref not in self.present:
            raise docker.errors.ImageNotFound(f"No such image: {ref}")
        return self.present[ref]

    def remove(self, image_id):
        self.removed.append(image_id)


class FakeAPI:
    def __init__(self, pull_error):
        self.pull_error = pull_error
        self.pulls = []

    def pull(self, repository, tag=None, stream=False, decode=False):
        self.pulls.append(f"{repository}:{tag}")
        raise self.pull_error


class FakeClient:
    def __init__(self, present=None, pull_error=None):
        self.images = FakeImages(present or {})
        self.api = FakeAPI(pull_error or docker.errors.APIError(
            "500 Server Error", explanation='Get "https://registry.example/v2/": dial tcp: '
            "lookup registry.example: no such host"))


@pytest.fixture
def builds(monkeypatch):
    """Record builds instead of running them; each 'built' image then exists."""
    done = []

    def fake_build(client, image, recipe, ca_files, say, no_cache=False):
        done.append(image.name)
        built = FakeImage(image.ref, {L.CATALOGUE: image.name, L.RECIPE: recipe,
                                      L.LOCAL_BUILD: "true"})
        client.images.present[image.ref] = built
        return built.id

    for kind in build_module.BUILDERS:
        monkeypatch.setitem(build_module.BUILDERS, kind, fake_build)
    return done


@pytest.fixture(autouse=True)
def no_host_ca(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKLAB_CA_DIR", str(tmp_path / "no-ca"))
    monkeypatch.delenv("DOCKLAB_IMAGE_SOURCE", raising=False)


def _current(image):
    return FakeImage(image.ref, {L.CATALOGUE: image.name, L.RECIPE: recipe_hash(image),
                                 L.LOCAL_BUILD: "true"})


def test_unreachable_registry_stops_pulls_and_builds_in_order(builds):
    client = FakeClient()
    results = prepare(client, progress=False)
    assert len(client.api.pulls) == 1  # the first failure stops pulling for the run
    # Every image but the engines, which are built only when named (docklab engines start).
    assert builds == [image.name for image in CATALOGUE if not image.on_demand]
    assert "docklab/engine:28" not in builds
    assert {r["action"] for r in results} == {"built"}


def test_a_missing_repository_does_not_stop_other_pulls(builds):
    client = FakeClient(pull_error=docker.errors.NotFound("pull access denied"))
    prepare(client, ["busybox", "redis"], progress=False)
    assert client.api.pulls == ["busybox:latest", "debian:12", "redis:latest"]
    assert builds == ["busybox", "debian:12", "redis"]


def test_current_and_pulled_images_are_left_alone(builds):
    busybox, debian = (next(i for i in CATALOGUE if i.name == n) for n in ("busybox", "debian:12"))
    client = FakeClient({busybox.ref: _current(busybox), debian.ref: FakeImage(debian.ref)})
    results = prepare(client, ["busybox", "nginx"], source="build", progress=False)
    assert builds == ["nginx"]
    assert [(r["name"], r["action"]) for r in results] == [
        ("busybox", "present"), ("debian:12", "present"), ("nginx", "built")]


def test_a_changed_recipe_rebuilds_and_drops_the_old_build(builds):
    redis = next(i for i in CATALOGUE if i.name == "redis")
    stale = FakeImage(redis.ref, {L.CATALOGUE: "redis", L.RECIPE: "old", L.LOCAL_BUILD: "true"})
    debian = next(i for i in CATALOGUE if i.name == "debian:12")
    client = FakeClient({redis.ref: stale, debian.ref: _current(debian)})
    stale.tags = []  # the rebuild took its tag
    prepare(client, ["redis"], source="build", progress=False)
    assert builds == ["redis"]
    assert client.images.removed == [stale.id]


def test_source_pull_fails_instead_of_building(builds):
    with pytest.raises(ImageError):
        prepare(FakeClient(), ["busybox"], source="pull", progress=False)
    assert builds == []


def test_source_build_never_pulls(builds):
    client = FakeClient()
    prepare(client, ["busybox"], source="build", progress=False)
    assert client.api.pulls == []


def test_unknown_names_fail_before_anything_is_done(builds):
    with pytest.raises(ImageError):
        prepare(FakeClient(), ["busybox", "alpine"], progress=False)
    assert builds == []


def test_progress_callback_gets_a_line_per_image(builds):
    lines = []
    prepare(FakeClient(), ["busybox"], source="build", progress=lines.append)
    assert any(line.startswith("busybox: building locally") for line in lines)
    lines.clear()
    prepare(FakeClient({"busybox:latest": FakeImage("busybox:latest")}), ["busybox"],
            progress=lines.append)
    assert lines == [f"busybox: already present (registry, {FakeImage('busybox:latest').short_id})"]


def test_image_status_reports_source_and_currency():
    busybox, redis = (next(i for i in CATALOGUE if i.name == n) for n in ("busybox", "redis"))
    stale = FakeImage(redis.ref, {L.CATALOGUE: "redis", L.RECIPE: "old", L.LOCAL_BUILD: "true"})
    client = FakeClient({busybox.ref: FakeImage(busybox.ref), redis.ref: stale})
    status = {entry["name"]: entry for entry in image_status(client)}
    assert set(status) == {image.name for image in CATALOGUE}
    assert status["busybox"]["source"] == "registry" and status["busybox"]["current"]
    assert status["redis"]["source"] == "local-build" and not status["redis"]["current"]
    assert status["nginx"] == {"name": "nginx", "present": False, "source": None,
                               "current": False, "id": None, "size": None,
                               "description": status["nginx"]["description"],
                               "on_demand": False}
    assert status["docklab/engine:28"]["on_demand"] is True
    assert all(set(e) == {"name", "present", "source", "current", "id", "size", "description",
                          "on_demand"} for e in status.values())


def test_pull_failure_kinds():
    image = CATALOGUE[0]
    with pytest.raises(PullFailed) as raised:
        pull(FakeClient(), image, print)
    assert raised.value.unreachable
    client = FakeClient(pull_error=docker.errors.NotFound("manifest unknown"))
    with pytest.raises(PullFailed) as raised:
        pull(client, image, print)
    assert not raised.value.unreachable


def test_image_source_from_environment(monkeypatch):
    assert image_source() == "auto"
    monkeypatch.setenv("DOCKLAB_IMAGE_SOURCE", "BUILD")
    assert image_source() == "build"
    assert image_source("pull") == "pull"
    monkeypatch.setenv("DOCKLAB_IMAGE_SOURCE", "mirror")
    with pytest.raises(ImageError):
        image_source()
