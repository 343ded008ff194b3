"""Recipe hashes and build contexts (no engine)."""

import io
import shutil
import tarfile

import pytest

from docklab import labels as L
from docklab.images import find, recipe_hash
from docklab.images.build import build_context, build_labels, host_ca_files
from docklab.images.catalogue import CourseImage


@pytest.fixture
def recipe(tmp_path):
    folder = tmp_path / "recipe"
    shutil.copytree(find("redis").recipe, folder)
    return CourseImage("redis", "d", "u", folder)


@pytest.fixture
def ca_dir(tmp_path):
    folder = tmp_path / "ca"
    folder.mkdir()
    (folder / "proxy.crt").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n")
    (folder / "not-a-cert.pem").write_text("ignored")
    return folder


def test_hash_is_stable(recipe, ca_dir):
    cas = host_ca_files(ca_dir)
    assert recipe_hash(recipe, cas) == recipe_hash(recipe, cas)
    (recipe.recipe / "Dockerfile").touch()  # a new mtime is no change
    assert recipe_hash(recipe, cas) == recipe_hash(recipe, host_ca_files(ca_dir))


def test_hash_changes_when_a_recipe_file_changes(recipe, ca_dir):
    cas = host_ca_files(ca_dir)
    before = recipe_hash(recipe, cas)
    script = recipe.recipe / "docker-entrypoint.sh"
    script.write_text(script.read_text() + "# changed\n")
    assert recipe_hash(recipe, cas) != before


def test_hash_changes_when_a_file_is_added_or_renamed(recipe):
    before = recipe_hash(recipe)
    (recipe.recipe / "extra.conf").write_text("x")
    added = recipe_hash(recipe)
    (recipe.recipe / "extra.conf").rename(recipe.recipe / "other.conf")
    assert len({before, added, recipe_hash(recipe)}) == 3


def test_hash_changes_when_a_ca_certificate_changes(recipe, ca_dir):
    before = recipe_hash(recipe, host_ca_files(ca_dir))
    assert recipe_hash(recipe, []) != before
    (ca_dir / "proxy.crt").write_text("-----BEGIN CERTIFICATE-----\nBBBB\n")
    changed = recipe_hash(recipe, host_ca_files(ca_dir))
    (ca_dir / "second.crt").write_text("-----BEGIN CERTIFICATE-----\nCCCC\n")
    added = recipe_hash(recipe, host_ca_files(ca_dir))
    assert len({before, changed, added}) == 3


def test_hash_differs_between_recipes():
    hashes = {recipe_hash(find(name)) for name in
              ("busybox", "debian:12", "python:3.11-slim", "nginx", "redis", "registry:2",
               "docker:dind")}
    assert len(hashes) == 7


def test_ca_files_are_the_crt_files_also_in_subfolders(ca_dir):
    (ca_dir / "corp").mkdir()
    (ca_dir / "corp" / "root.crt").write_text("x")
    assert [p.name for p in host_ca_files(ca_dir)] == ["root.crt", "proxy.crt"]
    assert host_ca_files(ca_dir / "missing") == []


def test_build_context_holds_recipe_ca_and_extras(recipe, ca_dir, tmp_path):
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF")
    context = build_context(recipe, host_ca_files(ca_dir), {"tool": binary})
    with tarfile.open(fileobj=io.BytesIO(context.getvalue())) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert {"Dockerfile", "docker-entrypoint.sh", "docklab-ca", "docklab-ca/proxy.crt",
            "tool"} <= set(members)
    assert members["docker-entrypoint.sh"].mode & 0o111  # scripts stay executable
    assert not members["Dockerfile"].mode & 0o111
    assert members["docklab-ca"].isdir()


def test_build_context_has_an_empty_ca_folder_without_certificates(recipe):
    with tarfile.open(fileobj=build_context(recipe, [])) as tar:
        assert tar.getmember("docklab-ca").isdir()


def test_local_builds_are_labelled_but_not_managed(recipe):
    labels = build_labels(recipe, "abc")
    assert labels == {L.CATALOGUE: "redis", L.RECIPE: "abc", L.LOCAL_BUILD: "true"}
    assert L.MANAGED not in labels


def test_debian_without_root_says_what_to_do(monkeypatch):
    from docklab.errors import ImageError
    from docklab.images import build

    monkeypatch.setattr(build.os, "geteuid", lambda: 1000)
    with pytest.raises(ImageError) as raised:
        build.build_debootstrap(None, find("debian:12"), "hash", [], print)
    assert "root" in raised.value.message and "sudo" in raised.value.hint


def test_a_change_to_a_base_recipe_changes_the_hash_of_what_builds_from_it(tmp_path):
    base_folder, derived_folder = tmp_path / "base", tmp_path / "derived"
    shutil.copytree(find("docker:dind").recipe, base_folder)
    shutil.copytree(find("docklab/engine:26").recipe, derived_folder)  # FROM docker:dind
    base = CourseImage("docker:dind", "d", "u", base_folder)
    derived = CourseImage("docklab/engine:26", "d", "u", derived_folder)
    other = CourseImage("redis", "d", "u", find("redis").recipe)  # FROM debian:12, not here
    catalogue = [base, derived, other]
    before = {image.name: recipe_hash(image, catalogue=catalogue) for image in catalogue}
    (base_folder / "Dockerfile").write_text((base_folder / "Dockerfile").read_text() + "# x\n")
    after = {image.name: recipe_hash(image, catalogue=catalogue) for image in catalogue}
    assert after["docker:dind"] != before["docker:dind"]
    assert after["docklab/engine:26"] != before["docklab/engine:26"]
    assert after["redis"] == before["redis"]


def test_engine_images_share_the_dind_entry_script_not_a_copy():
    script = find("docker:dind").recipe / "dockerd-entrypoint.sh"
    for name in ("docklab/engine:20", "docklab/engine:28"):
        engine = find(name)
        assert not (engine.recipe / "dockerd-entrypoint.sh").exists(), name
        assert engine.shared_files() == {"dockerd-entrypoint.sh": script}
        with tarfile.open(fileobj=build_context(engine, [])) as tar:
            shared = tar.extractfile("dockerd-entrypoint.sh").read()
            assert tar.getmember("dockerd-entrypoint.sh").mode & 0o111
        assert shared == script.read_bytes()


def test_a_shared_file_is_part_of_the_hash(tmp_path):
    folder = tmp_path / "engine"
    shutil.copytree(find("docklab/engine:28").recipe, folder)
    engine = CourseImage("e", "d", "u", folder, shared=("docker-dind/dockerd-entrypoint.sh",))
    alone = CourseImage("e", "d", "u", folder)
    assert recipe_hash(engine) != recipe_hash(alone)
