"""Networks: bridges with their containers (names, aliases, IPs), published ports, and a
reachability matrix probed for real.

    from docklab.widgets.networks import NetworkView
    view = NetworkView(lesson.client, lesson=lesson)   # this lesson's networks and containers, live
    view.probe()                                       # who resolves and reaches whom (background)
    view.wait()                                        # optional: until the probe is done
    view

The probe runs, for each container, a busybox helper that joins that container's network namespace
(``--network container:NAME``, so it uses the same interfaces and the same DNS server as the
container itself, whatever tools its image has) and tries every other container: ``nslookup NAME``
(does the container's DNS server know it?), then a TCP connect (``nc``) to the address it resolved,
on a port the target exposes, or a ``ping`` when it exposes none; and the same by IP address. Timeouts are short (2 s), probes run
in parallel. On a user-defined network containers find each other by name; on the default bridge
only by IP. Equivalent CLI: ``docker network inspect``, ``docker port``, ``docker exec``.
"""

from __future__ import annotations

import shlex
import threading

import docker
import traitlets as t

from docklab import labels as L
from docklab.widgets._base import COLORS, ENGINE_ERRORS, Debouncer, EngineView, badge, esc, table

__all__ = ["NetworkView", "parse_probe", "probe_script"]

HELPER_IMAGE = "busybox"
TIMEOUT = 2  # seconds per probe


#: reach HOST [PORT]: a TCP connect to PORT (it counts if the connection opened, even if the
#: server keeps it open until `timeout` ends it), or a ping without a port. busybox-static's
#: nc and ping cannot resolve names themselves, so names go through nslookup (the container's
#: DNS server) and /etc/hosts first.
_REACH = (
    "reach() { if [ -n \"$2\" ]; then timeout {t1} nc -w {t} \"$1\" \"$2\" </dev/null "
    ">/dev/null 2>&1; s=$?; [ $s -eq 0 ] || [ $s -eq 124 ] || [ $s -eq 143 ]; "
    "else ping -c 1 -W {t} \"$1\" >/dev/null 2>&1; fi; }}\n"
    "resolve() {{ r=$(timeout {t} nslookup \"$1\" 2>/dev/null | "
    "awk '/^Name:/{{f=1}} f&&/^Address/{{print $NF; exit}}'); "
    "[ -n \"$r\" ] || r=$(awk -v n=\"$1\" '$2==n||$3==n{{print $1; exit}}' /etc/hosts); "
    "echo \"$r\"; }}\n"
)


def probe_script(targets: list[dict]) -> str:
    """A busybox sh script that probes every target in parallel and prints one line each:
    ``PROBE <name> <resolved address or -> <by-name ok/fail> <by-ip ok/fail>``.
    """
    q = shlex.quote
    lines = [_REACH.replace("{t1}", str(TIMEOUT + 1)).replace("{t}", str(TIMEOUT))
             .replace("{{", "{").replace("}}", "}")]
    for target in targets:
        name, ip = target["name"], target.get("ip") or ""
        port = str(int(target["port"])) if target.get("port") else ""
        lines.append(
            f"( r=$(resolve {q(name)}); "
            f"if [ -n \"$r\" ] && reach \"$r\" {q(port)}; then a=ok; else a=fail; fi; "
            f"if [ -n {q(ip)} ] && reach {q(ip)} {q(port)}; then b=ok; else b=fail; fi; "
            f"echo \"PROBE {name} ${{r:--}} $a $b\" ) &")
    lines.append("wait")
    return "\n".join(lines)


def parse_probe(output: str) -> dict[str, dict]:
    """The probe script's lines → ``{target: {resolves, address, by_name, by_ip}}``."""
    found = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] == "PROBE":
            _, name, address, by_name, by_ip = parts
            found[name] = {"resolves": address != "-", "address": "" if address == "-" else address,
                           "by_name": by_name == "ok", "by_ip": by_ip == "ok"}
    return found


def _first_port(attrs: dict) -> int | None:
    exposed = (attrs.get("Config") or {}).get("ExposedPorts") or {}
    tcp = sorted(int(p.split("/")[0]) for p in exposed if p.endswith("/tcp"))
    return tcp[0] if tcp else None


class NetworkView(EngineView):
    """Networks, the containers on them, published ports and a probed reachability matrix."""

    networks = t.List(t.Dict(), help="name, driver, subnet, gateway, user_defined and the "
                      "containers on it (name, ip, aliases)").tag(sync=True)
    ports = t.List(t.Dict(), help="published ports: container, host_ip, host_port, "
                   "container_port").tag(sync=True)
    matrix = t.Dict(help="probe results: matrix[from][to] = {resolves, address, by_name, by_ip, "
                    "port}").tag(sync=True)
    probing = t.Bool(False, help="a probe is running").tag(sync=True)
    _state_traits = ("networks", "ports", "matrix", "probing")
    _title = "Networks"

    def __init__(self, client: docker.DockerClient | None = None, *, lesson=None,
                 containers=None, probe: bool = False, live: bool = True, **kwargs):
        super().__init__(client, lesson=lesson, **kwargs)
        self._live = live
        self._only = {getattr(c, "name", c) for c in containers or ()}
        self._filters = {}
        if lesson is not None:
            self._filters = {"label": [f"{L.LESSON}={lesson.id}",
                                       f"{L.LEARNER}={L.learner_name()}"]}
            self._only = {lesson.name(n) for n in self._only}
        self._targets: list[dict] = []
        self._probe_done = threading.Event()
        self._probe_done.set()
        self._refresher = Debouncer(self.refresh, delay=0.15)
        self._listeners.append(self._refresher)
        if live:
            self._listen(filters={"type": "network"}, on_event=lambda _: self._refresher.poke())
            self._listen(filters={"type": "container", **self._filters},
                         on_event=self._on_container_event)
        self.refresh()
        if probe:
            self.probe()

    def _on_container_event(self, event: dict) -> None:
        if (event.get("Action") or "").split(":")[0] in ("start", "die", "destroy", "rename"):
            self._refresher.poke()

    def _on_reconnect(self) -> None:
        self._refresher.poke()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until the view has redrawn after the latest change."""
        return self._refresher.wait_idle(timeout)

    # --- topology --------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read networks, containers and ports from the engine again."""
        read = self._engine_call(self._read)
        if read is None:
            return
        self.networks, self.ports, self._targets = read
        self._looked(self._live)

    def _read(self):
        boxes = [b for b in self.client.containers.list(filters=self._filters or None,
                                                        ignore_removed=True)
                 if not self._only or b.name in self._only]
        by_net: dict[str, list[dict]] = {}
        ports, targets = [], []
        for box in sorted(boxes, key=lambda b: b.name):
            attrs = box.attrs
            nets = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
            for net_name, net in nets.items():
                aliases = [a for a in (net.get("Aliases") or [])
                           if a not in (box.name, box.id[:12])]
                by_net.setdefault(net_name, []).append(
                    {"name": box.name, "ip": net.get("IPAddress", ""), "aliases": aliases})
            for cport, bindings in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).items():
                for binding in bindings or []:
                    ports.append({"container": box.name, "host_ip": binding.get("HostIp", ""),
                                  "host_port": binding.get("HostPort", ""),
                                  "container_port": cport})
            first_ip = next((n.get("IPAddress") for n in nets.values() if n.get("IPAddress")), "")
            targets.append({"name": box.name, "id": box.id, "ip": first_ip,
                            "port": _first_port(attrs), "networks": sorted(nets)})
        networks = []
        for name in sorted(by_net):
            try:
                net = self.client.networks.get(name)
            except docker.errors.NotFound:
                continue
            config = ((net.attrs.get("IPAM") or {}).get("Config") or [{}])
            networks.append({
                "name": name, "driver": net.attrs.get("Driver", ""),
                "subnet": (config[0] or {}).get("Subnet", "") if config else "",
                "gateway": (config[0] or {}).get("Gateway", "") if config else "",
                "user_defined": name not in ("bridge", "host", "none"),
                "containers": by_net[name],
            })
        # the lesson's own networks, even while no container is attached
        if self._filters:
            for net in self.client.networks.list(filters=self._filters):
                if net.name not in by_net:
                    networks.append({"name": net.name, "driver": net.attrs.get("Driver", ""),
                                     "subnet": "", "gateway": "", "user_defined": True,
                                     "containers": []})
        return networks, ports, targets

    # --- probing ---------------------------------------------------------------------------------

    def probe(self) -> None:
        """Probe every pair of containers, in the background (``wait()`` blocks until done)."""
        if not self._probe_done.is_set():
            return
        self._probe_done.clear()
        self.probing = True
        threading.Thread(target=self._probe, name="docklab-probe", daemon=True).start()

    def wait(self, timeout: float = 120.0) -> bool:
        """Block until the running probe is done."""
        return self._probe_done.wait(timeout)

    def _probe(self) -> None:
        try:
            self.refresh()
            targets = [dict(tg) for tg in self._targets if tg["networks"] and
                       tg["networks"] != ["host"] and tg["networks"] != ["none"]]
            results: dict[str, dict] = {}
            lock = threading.Lock()

            def one(source: dict) -> None:
                others = [tg for tg in targets if tg["name"] != source["name"]]
                if not others:
                    return
                out = self._helper(source, probe_script(others))
                found = parse_probe(out)
                row = {}
                for tg in others:
                    cell = found.get(tg["name"], {"resolves": False, "address": "",
                                                  "by_name": False, "by_ip": False})
                    row[tg["name"]] = {**cell, "port": tg["port"]}
                with lock:
                    results[source["name"]] = row

            threads = [threading.Thread(target=self._guard, args=(one, source), daemon=True)
                       for source in targets]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            self.matrix = results
            self._looked(self._live)
        except ENGINE_ERRORS as exc:
            self._engine_failed(exc)
        finally:
            self.probing = False
            self._probe_done.set()

    def _guard(self, fn, arg) -> None:
        try:
            fn(arg)
        except ENGINE_ERRORS as exc:
            self._engine_failed(exc)

    def _helper(self, source: dict, script: str) -> str:
        kwargs = dict(detach=False, remove=True, network_mode=f"container:{source['id']}")
        if self._lesson is not None:
            out = self._lesson.run(HELPER_IMAGE, ["sh", "-c", script], **kwargs)
        else:
            out = self.client.containers.run(HELPER_IMAGE, ["sh", "-c", script],
                                             labels=L.labels_for("widgets", kind="container"),
                                             **kwargs)
        return out.decode(errors="replace")

    def reachable(self, source: str, target: str, *, by: str = "name") -> bool | None:
        """What the last probe found: can ``source`` reach ``target`` by name (or by ``ip``)?"""
        if self._lesson is not None:
            source, target = self._lesson.name(source), self._lesson.name(target)
        cell = (self.matrix.get(source) or {}).get(target)
        return None if cell is None else cell["by_name" if by == "name" else "by_ip"]

    # --- rendering -------------------------------------------------------------------------------

    def _render(self) -> str:
        parts = ["<div style='display:flex;flex-wrap:wrap;gap:10px'>"]
        for net in self.networks:
            color = COLORS["accent"] if net["user_defined"] else COLORS["muted"]
            boxes = "".join(
                f"<div style='border:1px solid #bbb;border-radius:4px;padding:3px 6px;"
                f"margin:3px 0;background:#fafafa'><b>{esc(c['name'])}</b> "
                f"<code>{esc(c['ip'])}</code>"
                + (f"<br><span style='color:#666'>aliases: {esc(', '.join(c['aliases']))}</span>"
                   if c["aliases"] else "") + "</div>" for c in net["containers"])
            dns = ("DNS by name ✓" if net["user_defined"] and net["driver"] == "bridge"
                   else "no DNS by name" if net["name"] == "bridge" else "")
            parts.append(
                f"<div class='docklab-network' style='border:2px solid {color};border-radius:6px;"
                f"padding:6px;min-width:190px'><div style='border-bottom:3px solid {color};"
                f"margin-bottom:4px'><b>{esc(net['name'])}</b> "
                f"<span style='color:#666'>{esc(net['driver'])} {esc(net['subnet'])} "
                f"{esc(dns)}</span></div>{boxes or '<i>no container</i>'}</div>")
        parts.append("</div>")
        if self.ports:
            rows = [[f"<code>{esc(p['host_ip'] or '0.0.0.0')}:{esc(p['host_port'])}</code>", "→",
                     f"<b>{esc(p['container'])}</b> <code>{esc(p['container_port'])}</code>"]
                    for p in self.ports]
            parts.append("<p><b>Published ports</b> (host → container)</p>" +
                         table(["on the engine's host", "", "container"], rows, cls="docklab-ports"))
        if self.probing:
            parts.append("<p><i>probing who reaches whom …</i></p>")
        if self.matrix:
            names = sorted({n for row in self.matrix.values() for n in row} | set(self.matrix))
            rows = []
            for source in names:
                cells = [f"<b>{esc(source)}</b>"]
                for target in names:
                    cell = (self.matrix.get(source) or {}).get(target)
                    if source == target:
                        cells.append("·")
                    elif cell is None:
                        cells.append("—")
                    else:
                        how = f"port {cell['port']}" if cell.get("port") else "ping"
                        cells.append(
                            (badge("name ✓", COLORS["ok"]) if cell["by_name"] else
                             badge("name ✗", COLORS["bad"])) + " " +
                            (badge("IP ✓", COLORS["ok"]) if cell["by_ip"] else
                             badge("IP ✗", COLORS["bad"])) +
                            f"<br><span style='color:#666;font-size:85%'>{esc(how)}"
                            f"{', resolves to ' + esc(cell['address']) if cell['resolves'] else ', name unknown'}"
                            "</span>")
                rows.append(cells)
            parts.append("<p><b>Reachability</b> (row reaches column?)</p>" +
                         table(["from \\ to", *names], rows, cls="docklab-matrix"))
        return "".join(parts)
