"""Volumes and mounts: which containers mount which volumes, bind paths and tmpfs, by type.

    from docklab.widgets.volumes import VolumesView
    VolumesView(lesson.client, lesson=lesson)   # this lesson's containers and volumes, live
    VolumesView(lesson.client)                  # every container and volume on the engine

Equivalent CLI: ``docker inspect --format '{{json .Mounts}}' CONTAINER`` for each container and
``docker volume ls``. Named volumes are listed even when no container mounts them; anonymous
volumes (``-v /data`` or a VOLUME in the image: a random 64-hex name) are flagged, because nobody
will find them again by name and ``docker rm`` without ``-v`` leaves them behind. Bind paths are
paths on the engine's host. ``--tmpfs`` mounts live in memory and vanish with the container. The
view redraws on container and volume events.
"""

from __future__ import annotations

import re

import docker
import traitlets as t

from docklab import labels as L
from docklab.widgets._base import COLORS, Debouncer, EngineView, badge, esc, table

__all__ = ["VolumesView", "container_mounts", "is_anonymous"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def is_anonymous(name: str, labels: dict | None = None) -> bool:
    """Anonymous volumes get a random 64-hex name (and, since Engine 23, a label saying so)."""
    return bool(_HEX64.match(name or "")) or "com.docker.volume.anonymous" in (labels or {})


_VOLUME_SOURCE = re.compile(r"/volumes/([^/]+)/_data$")


def _volume_name(mount: dict) -> str:
    """A mount's volume name. Engine 28 leaves Name out for an anonymous volume asked for as a
    one-part bind (the SDK's ``volumes=["/data"]``); its Source path still ends in it."""
    if mount.get("Name") or mount.get("Type") != "volume":
        return mount.get("Name", "")
    found = _VOLUME_SOURCE.search(mount.get("Source", ""))
    return found.group(1) if found else ""


def container_mounts(attrs: dict) -> list[dict]:
    """A container's mounts from ``docker inspect``: type, name, source, target, rw.

    ``--tmpfs`` mounts appear only in HostConfig.Tmpfs, not in Mounts: both are merged here.
    """
    mounts = []
    for m in attrs.get("Mounts") or []:
        mounts.append({"type": m.get("Type", ""), "name": _volume_name(m),
                       "source": m.get("Source", ""), "target": m.get("Destination", ""),
                       "rw": bool(m.get("RW", True))})
    known = {m["target"] for m in mounts}
    for target, options in ((attrs.get("HostConfig") or {}).get("Tmpfs") or {}).items():
        if target not in known:
            mounts.append({"type": "tmpfs", "name": "", "source": options or "", "target": target,
                           "rw": "ro" not in (options or "").split(",")})
    return mounts


class VolumesView(EngineView):
    """Containers and what they mount, grouped by volume, bind path and tmpfs."""

    containers = t.List(t.Dict(), help="name, state and mounts (type, name, source, target, rw) "
                        "of each container in scope").tag(sync=True)
    volumes = t.List(t.Dict(), help="the volumes in scope: name, driver, anonymous, mountpoint, "
                     "used_by (container names)").tag(sync=True)
    _state_traits = ("containers", "volumes")
    _title = "Volumes and mounts"

    def __init__(self, client: docker.DockerClient | None = None, *, lesson=None,
                 live: bool = True, **kwargs):
        super().__init__(client, lesson=lesson, **kwargs)
        self._live = live
        self._filters = {}
        if lesson is not None:
            self._filters = {"label": [f"{L.LESSON}={lesson.id}",
                                       f"{L.LEARNER}={L.learner_name()}"]}
        self._refresher = Debouncer(self.refresh, delay=0.15)
        self._listeners.append(self._refresher)
        if live:
            # volume events carry no labels: listen to them all, and to this scope's containers
            self._listen(filters={"type": "volume"}, on_event=lambda _: self._refresher.poke())
            self._listen(filters={"type": "container", **self._filters},
                         on_event=self._on_container_event)
        self.refresh()

    def _on_container_event(self, event: dict) -> None:
        if (event.get("Action") or "").split(":")[0] in ("create", "start", "die", "destroy",
                                                         "rename"):
            self._refresher.poke()

    def _on_reconnect(self) -> None:
        self._refresher.poke()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until the view has redrawn after the latest change (tests, notebooks)."""
        return self._refresher.wait_idle(timeout)

    def refresh(self) -> None:
        """Read containers and volumes from the engine again."""
        read = self._engine_call(self._read)
        if read is None:
            return
        self.containers, self.volumes = read
        self._looked(self._live)

    def _read(self) -> tuple[list[dict], list[dict]]:
        boxes = self.client.containers.list(all=True, filters=self._filters or None,
                                            ignore_removed=True)
        containers = []
        used_by: dict[str, list[str]] = {}
        for box in sorted(boxes, key=lambda b: b.name):
            mounts = container_mounts(box.attrs)
            containers.append({"name": box.name, "state": box.status, "mounts": mounts})
            for m in mounts:
                if m["type"] == "volume":
                    used_by.setdefault(m["name"], []).append(box.name)
        scoped = {v.name: v for v in self.client.volumes.list(filters=self._filters or None)}
        for name in used_by:  # volumes a container in scope mounts, labelled or not
            if name not in scoped:
                try:
                    scoped[name] = self.client.volumes.get(name)
                except docker.errors.NotFound:
                    continue
        volumes = []
        for name, volume in sorted(scoped.items()):
            attrs = volume.attrs
            volumes.append({"name": name, "driver": attrs.get("Driver", ""),
                            "anonymous": is_anonymous(name, attrs.get("Labels")),
                            "mountpoint": attrs.get("Mountpoint", ""),
                            "used_by": sorted(used_by.get(name, []))})
        return containers, volumes

    def _render(self) -> str:
        parts = []
        rows = []
        for v in self.volumes:
            flag = badge("anonymous", COLORS["warn"]) if v["anonymous"] else ""
            users = ", ".join(
                f"{esc(c['name'])}:<code>{esc(m['target'])}</code>{'' if m['rw'] else ' (ro)'}"
                for c in self.containers for m in c["mounts"]
                if m["type"] == "volume" and m["name"] == v["name"]) or "<i>no container</i>"
            name = v["name"][:12] + "…" if v["anonymous"] else v["name"]
            rows.append([f"{badge('volume', COLORS['accent'])} <b>{esc(name)}</b> {flag}",
                         users, f"<code>{esc(v['mountpoint'])}</code>"])
        binds: dict[str, list[str]] = {}
        tmpfs: list[list[str]] = []
        for c in self.containers:
            for m in c["mounts"]:
                where = f"{esc(c['name'])}:<code>{esc(m['target'])}</code>" + (
                    "" if m["rw"] else " (ro)")
                if m["type"] == "bind":
                    binds.setdefault(m["source"], []).append(where)
                elif m["type"] == "tmpfs":
                    tmpfs.append([f"{badge('tmpfs', COLORS['muted'])} (memory)", where,
                                  esc(m["source"]) or "—"])
        for source, users in sorted(binds.items()):
            rows.append([f"{badge('bind', COLORS['ok'])} <code>{esc(source)}</code>",
                         ", ".join(users), "a path on the engine's host"])
        rows += tmpfs
        if rows:
            parts.append(table(["what", "mounted by (container:path)", "on the host"], rows,
                               cls="docklab-volumes"))
        else:
            parts.append("<i>no volumes, binds or tmpfs mounts in scope yet</i>")
        bare = [c["name"] for c in self.containers if not c["mounts"]]
        if bare:
            parts.append(f"<p style='color:#666'>no mounts (only their own writable layer): "
                         f"{esc(', '.join(bare))}</p>")
        return "".join(parts)
