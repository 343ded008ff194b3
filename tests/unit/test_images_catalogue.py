"""The course image catalogue and its recipes (no engine)."""

import re

import pytest

from docklab.errors import ImageError
from docklab.images import CATALOGUE, DIND_RUN_OPTIONS, dind_run_options, find
from docklab.images.build import CA_CONTEXT_DIR, recipe_files
from docklab.images.catalogue import CourseImage, dockerfile_bases, image_ref, in_build_order

REQUIRED = {
    "busybox": "busybox:latest",
    "debian:12": "debian:12",
    "python:3.11-slim": "python:3.11-slim",
    "nginx": "nginx:latest",
    "redis": "redis:latest",
    "registry:2": "registry:2",
    "docker:dind": "docker:dind",
}


def test_catalogue_names_every_course_image():
    refs = {image.name: image.ref for image in CATALOGUE}
    for name, ref in REQUIRED.items():
        assert refs.get(name) == ref


def test_every_entry_is_described_and_has_its_recipe():
    for image in CATALOGUE:
        assert image.description and image.used_for, image.name
        assert image.recipe.is_dir(), image.recipe
        if image.builder == "debootstrap":
            assert (image.recipe / "rootfs").is_dir()
        else:
            assert image.dockerfile is not None, image.name


def test_find_accepts_the_short_and_the_full_tag():
    assert find("busybox") is find("busybox:latest")
    with pytest.raises(ImageError) as raised:
        find("alpine")
    assert "busybox" in raised.value.hint


def test_image_ref_adds_latest_only_where_no_tag_is_given():
    assert image_ref("nginx") == "nginx:latest"
    assert image_ref("registry:2") == "registry:2"
    assert image_ref("localhost:5000/app") == "localhost:5000/app:latest"
    assert image_ref("localhost:5000/app:1") == "localhost:5000/app:1"


def test_dockerfile_bases_skip_scratch_and_stages():
    text = ("FROM --platform=linux/amd64 python:3.11-slim AS build\nRUN true\n"
            "from build\nFROM scratch\nFROM busybox\n")
    assert dockerfile_bases(text) == ["python:3.11-slim", "busybox:latest"]


def test_build_order_puts_bases_first_and_adds_them():
    order = [image.name for image in in_build_order(CATALOGUE)]
    assert order.index("debian:12") < min(order.index(n) for n in
                                          ("python:3.11-slim", "nginx", "redis", "registry:2",
                                           "docker:dind"))
    assert [i.name for i in in_build_order(CATALOGUE, ["nginx"])] == ["debian:12", "nginx"]
    assert [i.name for i in in_build_order(CATALOGUE, ["busybox"])] == ["busybox"]


def test_derived_images_build_from_debian_12():
    for name in ("python:3.11-slim", "nginx", "redis", "registry:2", "docker:dind"):
        assert find(name).bases() == ["debian:12"]
    assert find("busybox").bases() == []


def test_a_cycle_of_recipes_is_refused(tmp_path):
    for name, base in (("a", "b"), ("b", "a")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text(f"FROM {base}\n")
    catalogue = [CourseImage(n, "d", "u", tmp_path / n) for n in ("a", "b")]
    with pytest.raises(ImageError):
        in_build_order(catalogue)


def test_dockerfile_recipes_inject_the_ca_and_stay_lean():
    for image in CATALOGUE:
        if image.dockerfile is None:
            continue
        text = image.dockerfile.read_text()
        if not re.search(r"^RUN ", text, re.MULTILINE):
            continue  # nothing runs in the build (a base under another name): no CA needed
        assert f"COPY {CA_CONTEXT_DIR}/ /usr/local/share/ca-certificates/" in text, image.name
        if "apt-get install" in text:
            assert "--no-install-recommends" in text, image.name
            assert "rm -rf /var/lib/apt/lists/*" in text, image.name
        if re.search(r"apt-get install[^&]*ca-certificates", text):
            assert "update-ca-certificates" in text, image.name


def test_recipes_name_no_mirror_or_registry_url():
    # The Debian mirror is read from the host's apt at build time, never written in a recipe.
    for image in CATALOGUE:
        for path in recipe_files(image.recipe):
            assert not re.search(r"https?://", path.read_text(errors="replace")), path


def test_official_image_details_are_in_the_recipes():
    nginx = find("nginx").dockerfile.read_text()
    assert "STOPSIGNAL SIGQUIT" in nginx and "EXPOSE 80" in nginx
    assert "Welcome to nginx!" in (find("nginx").recipe / "index.html").read_text()
    redis = find("redis").dockerfile.read_text()
    assert "VOLUME /data" in redis and "WORKDIR /data" in redis and "EXPOSE 6379" in redis
    assert "--protected-mode no" in (find("redis").recipe / "docker-entrypoint.sh").read_text()
    registry = find("registry:2").recipe
    assert "rootdirectory: /var/lib/registry" in (registry / "config.yml").read_text()
    assert "/usr/local/bin/registry" in (registry / "Dockerfile").read_text()
    dind = (find("docker:dind").recipe / "dockerd-entrypoint.sh").read_text()
    assert "mount -o remount,bind,rw" in dind and "--tls=false" in dind
    assert dind.index("remount,bind,rw") < dind.index("exec ")
    # Engine 26 writes sysctls under /proc/sys: made writable before dockerd starts.
    assert dind.index("remount,bind,rw /proc/sys") < dind.index("exec ")
    assert "tcp://0.0.0.0:2375" in dind
    python = find("python:3.11-slim").dockerfile.read_text()
    assert "EXTERNALLY-MANAGED" in python and 'CMD ["python3"]' in python


def test_dind_run_options_avoid_privileged():
    assert find("docker:dind").run_options == DIND_RUN_OPTIONS
    assert "privileged" not in DIND_RUN_OPTIONS
    assert DIND_RUN_OPTIONS["cap_drop"] == ["SYS_RESOURCE"]
    options = dind_run_options("vol")
    assert options["volumes"] == {"vol": {"bind": "/var/lib/docker", "mode": "rw"}}
    assert options["init"] is True and options["tmpfs"] == {"/run": ""}
    options["cap_add"].append("X")
    assert DIND_RUN_OPTIONS["cap_add"] == ["ALL"]  # a copy, not the constant


def test_engine_images_take_only_the_named_packages_from_newer_releases():
    for name, release, packages in (
            ("docker:dind", "trixie", "docker.io docker-cli docker-buildx containerd"),
            ("docklab/engine:28", "sid",
             "docker.io docker-cli docker-buildx containerd tini-static")):
        engine = find(name)
        pins = (engine.recipe / "engine.pref").read_text()
        assert f"Package: {packages}\nPin: release n={release}\nPin-Priority: 990" in pins
        assert f"Package: *\nPin: release n={release}\nPin-Priority: -1" in pins
        text = engine.dockerfile.read_text()
        assert "runc" not in text.split("apt-get install", 1)[1], name  # bookworm's runc stays
        assert "procps" in text and engine.bases() == ["debian:12"]
    assert find("docklab/engine:28").on_demand and not find("docklab/engine:28").pullable


def test_docker_dind_is_engine_26_and_leaves_no_trixie_source_for_images_built_from_it():
    # sealed-engine and engine:26 build FROM docker:dind: their apt-get must see bookworm only.
    text = find("docker:dind").dockerfile.read_text()
    install = text.index("apt-get install")
    assert text.index("rm -f /etc/apt/sources.list.d/trixie.sources") > install
    engine26 = find("docklab/engine:26")
    assert engine26.bases() == ["docker:dind"] and engine26.on_demand and not engine26.pullable
    # One recipe, not two copies: engine:26 adds nothing to docker:dind.
    steps = [line for line in engine26.dockerfile.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert steps == ["FROM docker:dind"]
    assert find("docklab/sealed-engine").bases() == ["docker:dind"]


def test_engine_20_stays_debian_12s_end_of_life_engine_not_docker_dind():
    engine = find("docklab/engine:20")
    assert engine.bases() == ["debian:12"]
    assert not (engine.recipe / "engine.pref").exists()  # every package from bookworm
    text = engine.dockerfile.read_text()
    assert "docker.io" in text and "procps" in text and "sources.list" not in text
    assert engine.on_demand and not engine.pullable


def test_a_plain_prepare_leaves_the_engine_images_out():
    from docklab.images.prepare import default_names

    names = default_names()
    assert "docklab/engine:28" not in names and "docklab/engine:26" not in names
    assert "docker:dind" in names and "busybox" in names
