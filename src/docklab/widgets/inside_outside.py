"""Inside vs outside: what a container sees of itself next to what the engine's host sees of it.

    from docklab.widgets.inside_outside import InsideOutsideView
    demo = lesson.run("busybox", "sleep 3600", name="ns-demo", mem_limit="64m")
    view = InsideOutsideView(lesson.client, demo, lesson=lesson)   # gathers in the background
    view.wait()                                                    # optional: until it has looked
    view

Rows: PID 1, hostname, network interfaces, mounts and cgroup limits. The inside comes from
``docker exec`` and from a busybox helper that joins the container's network and PID namespaces
(so it works for images without ``ip`` or ``ps``). The outside comes from the engine: ``docker top``,
``docker inspect``, ``docker info`` and a busybox helper run with ``--pid=host --network=host
--uts=host``, so it shows the host where the engine runs — never this machine's /proc, which on
Docker Desktop or a remote engine is a different machine. The view re-reads on the container's
start, stop and update events.
"""

from __future__ import annotations

import threading

import docker
import docker.errors
import traitlets as t

from docklab import labels as L
from docklab.storage import image_store, parse_root_mount
from docklab.widgets._base import COLORS, ENGINE_ERRORS, Debouncer, EngineView, badge, esc, table

__all__ = ["InsideOutsideView", "parse_ip_addr", "parse_limits", "parse_mounts", "parse_ps"]

HELPER_IMAGE = "busybox"

#: cgroup v1 and v2 files, read in one ``sh`` inside the container.
_LIMITS_SCRIPT = (
    "cat /proc/sys/kernel/hostname; echo ---; cat /proc/mounts; echo ---; "
    "if [ -f /sys/fs/cgroup/memory.max ]; then "
    "echo v2; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max; "
    "else echo v1; cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
    "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us "
    "/sys/fs/cgroup/pids/pids.max; fi 2>/dev/null"
)
_NS_SCRIPT = "ps -o pid,user,args; echo ---; ip -o -4 addr"
_HOST_SCRIPT = "hostname; echo ---; ps -o pid,user,args; echo ---; ip -o -4 addr"

_UNLIMITED_V1 = 2**62  # cgroup v1 writes ~2^63 rounded to the page size for "no limit"


def parse_ip_addr(text: str) -> list[dict]:
    """``ip -o -4 addr`` lines → ``[{"name": "eth0", "address": "172.17.0.2/16"}]``."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "inet":
            found.append({"name": parts[1].split("@")[0], "address": parts[3]})
    return found


def parse_ps(text: str) -> list[dict]:
    """busybox ``ps -o pid,user,args`` (or plain ``ps``) → ``[{"pid": 1, "user", "command"}]``.

    The header says which columns there are; COMMAND is always the last one.
    """
    lines = text.splitlines()
    if not lines:
        return []
    header = lines[0].split()
    rows = []
    for line in lines[1:]:
        parts = line.split(None, len(header) - 1)
        if len(parts) == len(header) and parts[0].isdigit():
            row = dict(zip(header, parts))
            rows.append({"pid": int(parts[0]), "user": row.get("USER", ""), "command": parts[-1]})
    return rows


def parse_mounts(text: str) -> list[dict]:
    """``/proc/mounts`` → the mounts a learner cares about (not /proc, /sys, /dev)."""
    mounts = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        source, target, kind = parts[:3]
        if target.startswith(("/proc", "/sys", "/dev")):
            continue
        mounts.append({"target": target, "type": kind, "source": source})
    return mounts


def parse_limits(lines: list[str]) -> dict:
    """The cgroup files' contents (v1 or v2, first line says which) → readable limits."""
    if not lines:
        return {}
    version, values = lines[0], lines[1:]
    limits = {"cgroup": version}
    try:
        if version == "v2":
            memory, cpu, pids = (values + ["", "", ""])[:3]
            limits["memory"] = "unlimited" if memory in ("max", "") else mib(int(memory))
            quota, _, period = cpu.partition(" ")
            limits["cpus"] = ("unlimited" if quota in ("max", "") else
                              f"{int(quota) / int(period):g}")
            limits["pids"] = "unlimited" if pids in ("max", "") else pids
        else:
            memory, quota, period, pids = (values + ["", "", "", ""])[:4]
            limits["memory"] = ("unlimited" if not memory or int(memory) >= _UNLIMITED_V1
                                else mib(int(memory)))
            limits["cpus"] = ("unlimited" if not quota or int(quota) < 0
                              else f"{int(quota) / int(period):g}")
            limits["pids"] = "unlimited" if pids in ("max", "") else pids
    except ValueError:
        pass
    return limits


def mib(value: int) -> str:
    return f"{value / 2**20:g} MiB"


class InsideOutsideView(EngineView):
    """One container's PID 1, hostname, interfaces, mounts and limits, inside and outside."""

    container_name = t.Unicode(help="the container looked at").tag(sync=True)
    inside = t.Dict(help="what the container sees: pid1, processes, hostname, interfaces, mounts, "
                    "limits").tag(sync=True)
    outside = t.Dict(help="what the engine's host sees: pid1 (host PID and command), host_pid1, "
                     "processes, hostname, interfaces, bridge, rootfs, mounts, limits, "
                     "host").tag(sync=True)
    _state_traits = ("container_name", "inside", "outside")
    _title = "Inside vs outside"

    def __init__(self, client: docker.DockerClient | None = None, container=None, *,
                 lesson=None, live: bool = True, **kwargs):
        super().__init__(client, lesson=lesson, **kwargs)
        if container is None:
            raise TypeError("InsideOutsideView needs a container (object, name or id)")
        self._live = live
        self._done = threading.Event()
        self._refresher = Debouncer(self._gather, delay=0.2)
        self._listeners.append(self._refresher)
        self._container_id = getattr(container, "id", None) or str(container)
        self.container_name = getattr(container, "name", None) or str(container)
        if live:
            self._listen(filters={"type": "container", "container": [self._container_id]},
                         on_event=self._on_event)
        self._rerender()
        self.refresh()

    def refresh(self) -> None:
        """Look again, in the background (``wait()`` blocks until it has)."""
        self._done.clear()
        self._refresher.poke()

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until the view has gathered both sides (True), or ``timeout`` passed."""
        return self._done.wait(timeout)

    def _on_event(self, event: dict) -> None:
        if (event.get("Action") or "").split(":")[0] in ("start", "die", "pause", "unpause",
                                                         "update", "destroy", "rename"):
            self.refresh()

    def _on_reconnect(self) -> None:
        self.refresh()

    # --- gathering ---------------------------------------------------------------------------

    def _helper(self, script: str, **options) -> str:
        kwargs = dict(detach=False, remove=True, **options)
        if self._lesson is not None:
            out = self._lesson.run(HELPER_IMAGE, ["sh", "-c", script], **kwargs)
        else:
            out = self.client.containers.run(HELPER_IMAGE, ["sh", "-c", script],
                                             labels=L.labels_for("widgets", kind="container"),
                                             **kwargs)
        return out.decode(errors="replace")

    def _gather(self) -> None:
        try:
            box = self.client.containers.get(self._container_id)
            box.reload()
        except docker.errors.NotFound:
            # Keep the last look, marked: the learner may scroll back after the cleanup.
            self.outside = {**self.outside, "gone": True}
            self._looked(self._live)
            self._done.set()
            return
        except ENGINE_ERRORS as exc:
            self._engine_failed(exc)
            self._done.set()
            return
        self.container_name = box.name
        try:
            outside = self._outside(box)
            if box.status == "running":  # a paused one cannot be exec'd into
                inside = self._inside(box)
            elif self.inside.get("pid1"):  # it stopped: keep the last look while it ran, marked
                inside, outside = {**self.inside, "not_running": box.status}, self.outside
            else:
                inside = {"not_running": box.status}
        except ENGINE_ERRORS as exc:
            self._engine_failed(exc)
        else:
            self.inside, self.outside = inside, outside
            self._looked(self._live)
        finally:
            self._done.set()

    def _inside(self, box) -> dict:
        inside: dict = {}
        result = box.exec_run(["sh", "-c", _LIMITS_SCRIPT])
        if result.exit_code in (0, 1) and result.output:
            hostname, _, rest = result.output.decode(errors="replace").partition("---\n")
            mounts, _, limits = rest.partition("---\n")
            inside["hostname"] = hostname.strip()
            inside["mounts"] = parse_mounts(mounts)
            # Where the engine shows no merged directory (the containerd image store), the
            # container's own / mount still names the directory its changes go to.
            inside["upperdir"] = parse_root_mount(mounts).get("upperdir", "")
            inside["limits"] = parse_limits(limits.split())
        else:
            inside["hostname"] = box.attrs["Config"].get("Hostname", "")
            inside["note"] = "this image has no shell: hostname from docker inspect"
        if box.status == "running":
            ns = self._helper(_NS_SCRIPT, network_mode=f"container:{box.id}",
                              pid_mode=f"container:{box.id}")
            ps_text, _, ip_text = ns.partition("---\n")
            processes = parse_ps(ps_text)
            pid1 = next((p for p in processes if p["pid"] == 1), None)
            inside["pid1"] = pid1["command"] if pid1 else ""
            # the helper's own sh and ps share the namespace: leave them out of the count
            inside["processes"] = max(len(processes) - 2, 1)
            inside["interfaces"] = parse_ip_addr(ip_text)
        return inside

    def _outside(self, box) -> dict:
        attrs = box.attrs
        info = self.client.info()
        host_pid = attrs["State"].get("Pid") or 0
        outside: dict = {"host": info.get("Name", ""), "engine_os": info.get("OperatingSystem", "")}
        top = box.top() if box.status == "running" else {"Titles": [], "Processes": []}
        titles = top.get("Titles") or []
        rows = [dict(zip(titles, row)) for row in top.get("Processes") or []]
        outside["top"] = [{"pid": int(r.get("PID", 0) or 0), "command": r.get("CMD", "")}
                          for r in rows]
        command = next((r["command"] for r in outside["top"] if r["pid"] == host_pid), "")
        outside["pid1"] = {"host_pid": host_pid, "command": command}
        # Helpers only while the container runs: a stopped one has no inside to compare, and a
        # lesson's cleanup must not race a helper that starts after it.
        host = (self._helper(_HOST_SCRIPT, pid_mode="host", network_mode="host", uts_mode="host")
                if box.status == "running" else f"{outside['host']}\n---\n---\n")
        hostname, _, rest = host.partition("---\n")
        ps_text, _, ip_text = rest.partition("---\n")
        processes = parse_ps(ps_text)
        outside["hostname"] = hostname.strip()
        outside["processes"] = len(processes)
        host_pid1 = next((p for p in processes if p["pid"] == 1), None)
        outside["host_pid1"] = host_pid1["command"] if host_pid1 else ""
        outside["interfaces"] = parse_ip_addr(ip_text)
        gateways = {net.get("Gateway") for net in
                    (attrs["NetworkSettings"].get("Networks") or {}).values()} - {"", None}
        outside["bridge"] = [i for i in outside["interfaces"]
                             if i["address"].split("/")[0] in gateways]
        outside["rootfs"] = (attrs.get("GraphDriver", {}).get("Data") or {}).get("MergedDir", "")
        outside["storage_driver"] = attrs.get("GraphDriver", {}).get("Name", "")
        outside["image_store"] = image_store(self.client, info).description
        outside["mounts"] = [{"type": m.get("Type"), "source": m.get("Source") or m.get("Name"),
                              "target": m.get("Destination"), "rw": m.get("RW", True)}
                             for m in attrs.get("Mounts") or []]
        outside["mounts"] += [{"type": "tmpfs", "source": "(memory)", "target": target,
                               "rw": True} for target in (attrs["HostConfig"].get("Tmpfs") or {})]
        hc = attrs["HostConfig"]
        cpus = (hc.get("NanoCpus") or 0) / 1e9 or (
            hc["CpuQuota"] / hc["CpuPeriod"] if hc.get("CpuQuota") and hc.get("CpuPeriod") else 0)
        outside["limits"] = {
            "memory": mib(hc["Memory"]) if hc.get("Memory") else "unlimited",
            "cpus": f"{cpus:g}" if cpus else "unlimited",
            "pids": str(hc["PidsLimit"]) if hc.get("PidsLimit") and hc["PidsLimit"] > 0
            else "unlimited",
        }
        outside["host_limits"] = {"memory": mib(info.get("MemTotal", 0)),
                                  "cpus": str(info.get("NCPU", "")),
                                  "cgroup": f"v{info.get('CgroupVersion', '1')}"}
        return outside

    # --- rendering -----------------------------------------------------------------------------

    def _render(self) -> str:
        i, o = self.inside, self.outside
        if not i and not o:
            return "<i>looking inside and outside …</i>"
        name = esc(self.container_name)
        note = f"<p style='color:#666'>{esc(i['note'])}</p>" if i.get("note") else ""
        last_look = " Below is the last look, from while it ran." if i.get("pid1") else ""
        if o.get("gone"):
            note = (f"<p style='color:{COLORS['warn']}'><b>{name} has been removed.</b>"
                    f"{last_look}</p>")
        elif i.get("not_running"):
            note = (f"<p style='color:{COLORS['warn']}'><b>{name} is {esc(i['not_running'])}:</b> "
                    f"nothing runs inside it now (no PID 1, no interfaces, no cgroup in use)."
                    f"{last_look or ' Start it to look inside.'}</p>")
        if not i.get("pid1") and not o.get("pid1"):
            return note

        def ifaces(items, highlight=()):
            return "<br>".join(
                (f"<b>{esc(x['name'])}</b> {esc(x['address'])}" +
                 (" " + badge("the container's gateway", COLORS["accent"]) if x in highlight
                  else "")) for x in items) or "—"

        def mounts_inside(items):
            shown = [f"<code>{esc(m['target'])}</code> {esc(m['type'])}" for m in items[:8]]
            more = f"<br>… {len(items) - 8} more" if len(items) > 8 else ""
            return "<br>".join(shown) + more or "—"

        def mounts_outside():
            if o.get("rootfs"):
                root = (f"/ = {esc(o.get('storage_driver', ''))} layers, merged at "
                        f"<code>{esc(o['rootfs'])}</code>")
            else:  # the containerd image store: docker inspect has no GraphDriver.Data
                upper = (f"; its changes go to <code>{esc(i['upperdir'])}</code> (from its own "
                         f"mount table)" if i.get("upperdir") else "")
                root = (f"/ = {esc(o.get('storage_driver', ''))} layers of the "
                        f"{esc(o.get('image_store', ''))}, merged where docker inspect does not "
                        f"say{upper}")
            lines = [root]
            lines += [f"<code>{esc(m['target'])}</code> ← {esc(m['type'])} "
                      f"<code>{esc(m['source'])}</code>{'' if m['rw'] else ' (ro)'}"
                      for m in o.get("mounts", [])]
            return "<br>".join(lines)

        def limits(d):
            return "<br>".join(f"{esc(k)}: <b>{esc(v)}</b>" for k, v in d.items()) or "—"

        pid1 = o.get("pid1") or {}
        rows = [
            ["PID 1", (f"<b>PID 1</b> <code>{esc(i.get('pid1', '—'))}</code><br>"
                       f"{esc(i.get('processes', 0))} process(es) visible"),
             (f"the same process is <b>PID {esc(pid1.get('host_pid', '—'))}</b> "
              f"<code>{esc(pid1.get('command', ''))}</code><br>"
              f"host's PID 1: <code>{esc(o.get('host_pid1', ''))}</code>, "
              f"{esc(o.get('processes', 0))} processes")],
            ["hostname", f"<code>{esc(i.get('hostname', '—'))}</code>",
             f"<code>{esc(o.get('hostname', '—'))}</code>"],
            ["interfaces", ifaces(i.get("interfaces", [])),
             ifaces(o.get("interfaces", []), o.get("bridge", []))],
            ["mounts", mounts_inside(i.get("mounts", [])), mounts_outside()],
            ["cgroup limits", limits(i.get("limits", {})),
             "set by the engine: " + limits(o.get("limits", {})) +
             "<br>the host has: " + limits(o.get("host_limits", {}))],
        ]
        return note + table(["", f"inside {self.container_name}",
                             f"outside: the engine's host {o.get('host', '')}"],
                            [[f"<b>{esc(r[0])}</b>", r[1], r[2]] for r in rows],
                            cls="docklab-inside-outside", widths=["11%", "37%", "52%"])
