"""Where an engine keeps images and container filesystems, read from the engine itself.

Engines keep images in one of two **image stores**:

``graphdriver``
    the classic store: a storage driver (``overlay2`` nearly everywhere) keeps the layers under
    /var/lib/docker/overlay2, ``docker inspect`` shows a container's directories in
    ``GraphDriver.Data`` (LowerDir, UpperDir, WorkDir, MergedDir), and an image's ID is the
    digest of its configuration.
``containerd``
    containerd's image store (``{"features": {"containerd-snapshotter": true}}``; Docker Desktop's
    default on new installs, Engine 29's default): a containerd *snapshotter* (``overlayfs``) keeps
    the layers, ``GraphDriver.Data`` is empty, and an image's ID is the digest of its manifest (or
    of its index, for a multi-platform image).

Either way a container's root filesystem is an overlay mount, and the container itself sees which
directories it stacks in its own mount table: ``overlay_dirs`` reads them from there where
``docker inspect`` does not say.
"""

from __future__ import annotations

from dataclasses import dataclass

import docker

from docklab.engine import exec_output

#: ``docker info``'s DriverStatus entry that says the containerd image store is on.
_SNAPSHOTTER = ("driver-type", "io.containerd.snapshotter.v1")


@dataclass(frozen=True)
class ImageStore:
    """How an engine stores images: ``kind`` is "graphdriver" or "containerd"."""

    kind: str
    driver: str  # docker info's Driver: "overlay2", "vfs", ... or the snapshotter, "overlayfs"

    @property
    def description(self) -> str:
        if self.kind == "containerd":
            return f"containerd image store ({self.driver} snapshotter)"
        return f"{self.driver} storage driver (classic image store)"

    @property
    def image_id_is(self) -> str:
        """What an image's ID is the digest of, in this store."""
        return "manifest" if self.kind == "containerd" else "config"


def image_store(client: docker.DockerClient, info: dict | None = None) -> ImageStore:
    """The engine's image store, from ``docker info`` (Driver and DriverStatus)."""
    info = info if info is not None else client.info()
    status = [tuple(pair) for pair in info.get("DriverStatus") or [] if len(pair) == 2]
    kind = "containerd" if _SNAPSHOTTER in status else "graphdriver"
    return ImageStore(kind, info.get("Driver") or "?")


@dataclass(frozen=True)
class OverlayDirs:
    """A container's overlay directories, as paths on the engine's host.

    ``lower`` is top first (the container's init layer, then the image's layers, newest first);
    ``merged`` is None where the engine does not report it (the containerd store mounts it per
    container). ``source`` says where they were read: "GraphDriver" or "mount".
    """

    driver: str
    lower: list[str]
    upper: str
    work: str
    merged: str | None
    source: str


def parse_root_mount(mounts: str) -> dict[str, str]:
    """The options of the overlay mount on / in a /proc/mounts text (lowerdir=..., upperdir=...)."""
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1] == "/" and fields[2] == "overlay":
            return dict(option.split("=", 1) for option in fields[3].split(",") if "=" in option)
    return {}


def overlay_dirs(container) -> OverlayDirs:
    """A running container's overlay directories: ``docker inspect``'s GraphDriver.Data where the
    engine fills it (overlay2), else the overlay mount the container sees as / (``docker exec C
    grep ' / ' /proc/mounts``; the containerd store), which needs ``grep`` in the container."""
    container.reload()
    graph = container.attrs.get("GraphDriver") or {}
    data = graph.get("Data") or {}
    if data.get("LowerDir") and data.get("UpperDir"):
        return OverlayDirs(graph.get("Name", ""), data["LowerDir"].split(":"), data["UpperDir"],
                           data.get("WorkDir", ""), data.get("MergedDir"), "GraphDriver")
    # exec_output asks again when an exec says nothing (the engine can lose an exec's output).
    _, mounts = exec_output(container, ["grep", " / ", "/proc/mounts"])
    options = parse_root_mount(mounts)
    if not options.get("upperdir"):
        raise ValueError(f"{container.name}'s root is not an overlay mount the engine shows: "
                         f"GraphDriver is {graph}")
    return OverlayDirs(graph.get("Name", "overlay"), options.get("lowerdir", "").split(":"),
                       options["upperdir"], options.get("workdir", ""), None, "mount")
