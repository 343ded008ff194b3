"""What differs between engines, decided from what they report (no engine): the image store, a
container's overlay directories, end of life, and whether --cap-drop SYS_RESOURCE may be asked."""

import io
import json
import tarfile
from types import SimpleNamespace

import docker.errors
import pytest
from docker.models.containers import ExecResult

from docklab.doctor import MAINTAINED_MAJOR, end_of_life_warning
from docklab.engines import CONTAINERD_STORE, _daemon_json_archive, engine_name
from docklab.images import catalogue
from docklab.storage import image_store, overlay_dirs, parse_root_mount

# What `docker info` says (trimmed), from Engine 20.10 on overlay2 and 28.5 with the containerd store.
INFO_OVERLAY2 = {"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"],
                                                         ["Supports d_type", "true"]]}
INFO_CONTAINERD = {"Driver": "overlayfs",
                   "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]]}

SNAPSHOTS = "/var/lib/docker/containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots"
MOUNTS_CONTAINERD = (
    f"overlay / overlay rw,relatime,lowerdir={SNAPSHOTS}/22/fs:{SNAPSHOTS}/4/fs,"
    f"upperdir={SNAPSHOTS}/23/fs,workdir={SNAPSHOTS}/23/work 0 0\n"
    "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n")


def test_the_image_store_is_read_from_driver_status():
    classic = image_store(None, INFO_OVERLAY2)
    assert (classic.kind, classic.driver, classic.image_id_is) == ("graphdriver", "overlay2",
                                                                   "config")
    assert "overlay2 storage driver" in classic.description
    store = image_store(None, INFO_CONTAINERD)
    assert (store.kind, store.driver, store.image_id_is) == ("containerd", "overlayfs", "manifest")
    assert "containerd image store" in store.description


def test_the_root_overlay_mount_is_found_among_the_mounts():
    options = parse_root_mount(MOUNTS_CONTAINERD)
    assert options["lowerdir"].split(":") == [f"{SNAPSHOTS}/22/fs", f"{SNAPSHOTS}/4/fs"]
    assert options["upperdir"] == f"{SNAPSHOTS}/23/fs"
    assert parse_root_mount("proc /proc proc rw 0 0\n/dev/vda / ext4 rw 0 0\n") == {}


class _Container:
    name = "layered"

    def __init__(self, graph, mounts="", *, silent_execs=0):
        self.attrs = {"GraphDriver": graph}
        self._mounts = mounts
        self._silent = silent_execs  # the first execs lose their output, as Engine 20.10's did
        self.execs = []

    def reload(self):
        pass

    def exec_run(self, argv, **options):
        self.execs.append(argv)
        if len(self.execs) <= self._silent:
            return ExecResult(0, b"")
        return ExecResult(0, self._mounts.encode())


def test_overlay_dirs_come_from_graphdriver_with_overlay2():
    data = {"LowerDir": "/l/init:/l/a:/l/b", "UpperDir": "/u/diff", "WorkDir": "/u/work",
            "MergedDir": "/u/merged"}
    container = _Container({"Name": "overlay2", "Data": data})
    dirs = overlay_dirs(container)
    assert (dirs.source, dirs.lower, dirs.upper, dirs.merged) == (
        "GraphDriver", ["/l/init", "/l/a", "/l/b"], "/u/diff", "/u/merged")
    assert container.execs == []  # nothing asked inside


def test_overlay_dirs_come_from_the_containers_mount_with_the_containerd_store():
    container = _Container({"Name": "overlayfs", "Data": None}, MOUNTS_CONTAINERD)
    dirs = overlay_dirs(container)
    assert dirs.source == "mount" and dirs.driver == "overlayfs"
    assert dirs.upper == f"{SNAPSHOTS}/23/fs" and dirs.work == f"{SNAPSHOTS}/23/work"
    assert len(dirs.lower) == 2 and dirs.merged is None


def test_overlay_dirs_ask_again_when_an_exec_says_nothing():
    container = _Container({"Name": "overlayfs", "Data": None}, MOUNTS_CONTAINERD, silent_execs=2)
    assert overlay_dirs(container).upper == f"{SNAPSHOTS}/23/fs" and len(container.execs) == 3
    silent = _Container({"Name": "overlayfs", "Data": None}, MOUNTS_CONTAINERD, silent_execs=3)
    with pytest.raises(ValueError, match="not an overlay"):  # three times nothing: it says so
        overlay_dirs(silent)


def test_overlay_dirs_say_so_when_the_root_is_no_overlay():
    with pytest.raises(ValueError, match="not an overlay"):
        overlay_dirs(_Container({"Name": "vfs", "Data": None}, "/dev/vda / ext4 rw 0 0\n"))


@pytest.mark.parametrize("version, warned", [
    ("20.10.24+dfsg1", True), ("25.0.5", True), ("26.1.5+dfsg1", False), ("28.5.2+dfsg4", False),
    ("29.8.2", False), ("", False)])
def test_end_of_life_is_everything_below_the_oldest_maintained_major(version, warned):
    assert MAINTAINED_MAJOR == 26
    warning = end_of_life_warning(version)
    assert bool(warning) is warned
    if warned:
        assert "end of life" in warning and version in warning


class _Api:
    base_url = "http+docker://localhost"

    def __init__(self, refuse: bool):
        self.refuse, self.created, self.removed = refuse, [], []

    def create_host_config(self, **kwargs):
        return kwargs

    def create_container(self, image, **kwargs):
        self.created.append(kwargs["host_config"])
        if self.refuse:
            raise docker.errors.APIError(
                "400", explanation='invalid CapDrop: capability not supported by your kernel or '
                'not available in the current environment: "CAP_SYS_RESOURCE"')
        return {"Id": f"probe-{len(self.created)}"}

    def remove_container(self, container_id, force, v=False):
        self.removed.append((container_id, v))


def _client(engine_id: str, refuse: bool):
    api = _Api(refuse)
    return SimpleNamespace(api=api, info=lambda: {"ID": engine_id})


def test_cap_drop_is_asked_only_of_engines_that_take_it():
    old, new = _client("engine-20", refuse=False), _client("engine-28", refuse=True)
    assert catalogue.engine_takes_cap_drop(old) is True
    # the probe is removed, never started, with its image's anonymous volume (docker rm -v)
    assert old.api.removed == [("probe-1", True)]
    assert old.api.created[0] == {"cap_add": ["ALL"], "cap_drop": ["SYS_RESOURCE"]}
    assert catalogue.engine_takes_cap_drop(new) is False
    assert "cap_drop" in catalogue.dind_run_options("v", old)
    assert "cap_drop" not in catalogue.dind_run_options("v", new)
    assert catalogue.dind_run_options("v", new)["cap_add"] == ["ALL"]
    assert "--cap-drop" not in catalogue.dind_docker_run_flags(new)
    assert "--cap-drop SYS_RESOURCE" in catalogue.dind_docker_run_flags(old)
    catalogue.engine_takes_cap_drop(new)
    assert len(new.api.created) == 1  # asked once per engine


def test_other_refusals_are_not_taken_for_an_answer():
    client = _client("engine-broken", refuse=False)

    def fail(image, **kwargs):
        raise docker.errors.APIError("404", explanation="No such image: docker:dind")

    client.api.create_container = fail
    with pytest.raises(docker.errors.APIError):
        catalogue.engine_takes_cap_drop(client)


def test_the_containerd_store_is_switched_on_in_daemon_json():
    with tarfile.open(fileobj=io.BytesIO(_daemon_json_archive(CONTAINERD_STORE))) as tar:
        assert tar.getmember("docker").isdir()
        config = json.load(tar.extractfile("docker/daemon.json"))
    assert config == {"features": {"containerd-snapshotter": True}}


def test_engine_names_tell_versions_and_stores_apart(monkeypatch):
    monkeypatch.delenv("DOCKLAB_PREFIX", raising=False)
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    assert engine_name("28") == "docklab-engine-28"
    assert engine_name("28", containerd_store=True) == "docklab-engine-28-containerd"
