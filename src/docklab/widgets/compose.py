"""Compose: a project's desired state (its compose.yaml) against the actual one, live.

    from docklab.widgets.compose import ComposeView
    view = ComposeView(lesson.client, "myapp/compose.yaml")   # or the project's folder
    view                                                       # then `docker compose up -d`, scale, stop ...

Desired: the services (replicas from ``deploy.replicas`` or ``scale``, default 1), networks and named
volumes the file declares, parsed with PyYAML (``${VAR:-default}`` interpolated from the
environment). Actual: what the engine has with the label ``com.docker.compose.project=<name>``, the
label Compose puts on every container, network and volume it makes (``com.docker.compose.service``
says which service a container belongs to). Equivalent CLI: ``docker compose ps -a`` and
``docker compose config``. The view redraws on the project's events and re-reads the file each time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import docker
import traitlets as t
import yaml

from docklab.widgets._base import COLORS, Debouncer, EngineView, badge, esc, table

__all__ = ["ComposeView", "compare", "desired_state", "project_name"]

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
NETWORK = "com.docker.compose.network"
VOLUME = "com.docker.compose.volume"

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(text: str, env: dict | None = None) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``$VAR`` and ``$$``."""
    env = os.environ if env is None else env

    def sub(match):
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        value = env.get(name)
        if match.group(2) == ":-" and not value:
            return match.group(3)
        if match.group(2) == "-" and value is None:
            return match.group(3)
        return value or ""

    return _VAR.sub(sub, text)


def project_name(compose_file: Path, config: dict, env: dict | None = None) -> str:
    """The project name as Compose picks it: ``name:``, COMPOSE_PROJECT_NAME, else the folder's name,
    lower-cased with only a-z, 0-9, ``_`` and ``-``."""
    env = os.environ if env is None else env
    raw = config.get("name") or env.get("COMPOSE_PROJECT_NAME") or compose_file.parent.name
    return re.sub(r"[^a-z0-9_-]", "", str(raw).lower()).lstrip("_-")


def _named_volume(source: str) -> bool:
    return bool(source) and not source.startswith((".", "/", "~"))


def desired_state(config: dict, project: str) -> dict:
    """What the compose file asks for: services (replicas, image, networks, volumes, ports),
    networks and named volumes, with the names the engine will give them."""
    services = {}
    uses_default = False
    for name, spec in (config.get("services") or {}).items():
        spec = spec or {}
        deploy = spec.get("deploy") or {}
        replicas = deploy.get("replicas", spec.get("scale", 1))
        networks = spec.get("networks") or ["default"]
        networks = list(networks) if not isinstance(networks, list) else networks
        if "default" in networks:
            uses_default = True
        volumes = []
        for entry in spec.get("volumes") or []:
            if isinstance(entry, dict):
                volumes.append({"type": entry.get("type", "volume"), "source": entry.get("source", ""),
                                "target": entry.get("target", "")})
            else:
                parts = str(entry).split(":")
                if len(parts) == 1:
                    volumes.append({"type": "volume", "source": "", "target": parts[0]})
                else:
                    kind = "volume" if _named_volume(parts[0]) else "bind"
                    volumes.append({"type": kind, "source": parts[0], "target": parts[1]})
        services[name] = {
            "replicas": int(replicas), "image": spec.get("image") or ("(build)" if spec.get("build")
                                                                        else ""),
            "networks": sorted(networks), "volumes": volumes,
            "ports": [str(p) if not isinstance(p, dict) else
                      f"{p.get('published', '')}:{p.get('target', '')}" for p in spec.get("ports") or []],
            "container_name": spec.get("container_name", ""),
        }
    networks = {}
    declared = dict(config.get("networks") or {})
    if uses_default and "default" not in declared:
        declared["default"] = {}
    for key, spec in declared.items():
        spec = spec or {}
        networks[key] = {"name": spec.get("name") or f"{project}_{key}",
                         "external": bool(spec.get("external"))}
    volumes = {}
    for key, spec in (config.get("volumes") or {}).items():
        spec = spec or {}
        volumes[key] = {"name": spec.get("name") or f"{project}_{key}",
                        "external": bool(spec.get("external"))}
    return {"services": services, "networks": networks, "volumes": volumes}


def compare(desired: dict, containers: list[dict], networks: list[dict],
            volumes: list[dict]) -> dict:
    """Desired vs actual, per service, network and volume, each with a verdict."""
    services = []
    for name, want in desired["services"].items():
        mine = [c for c in containers if c["service"] == name]
        running = sum(c["state"] == "running" for c in mine)
        if not mine:
            verdict = "missing"
        elif running == want["replicas"] and len(mine) == want["replicas"]:
            verdict = "ok"
        elif running < want["replicas"]:
            verdict = "not running" if running == 0 else "too few"
        else:
            verdict = "too many"
        services.append({"service": name, "desired": want["replicas"], "running": running,
                         "containers": mine, "image": want["image"], "verdict": verdict})
    for name in sorted({c["service"] for c in containers} - set(desired["services"])):
        mine = [c for c in containers if c["service"] == name]
        services.append({"service": name, "desired": 0,
                         "running": sum(c["state"] == "running" for c in mine),
                         "containers": mine, "image": "", "verdict": "orphan"})
    have_nets = {n["key"] for n in networks} | {n["name"] for n in networks}
    nets = [{"key": key, "name": spec["name"], "external": spec["external"],
             "verdict": "ok" if key in have_nets or spec["name"] in have_nets else "missing"}
            for key, spec in desired["networks"].items()]
    have_vols = {v["key"] for v in volumes} | {v["name"] for v in volumes}
    vols = [{"key": key, "name": spec["name"], "external": spec["external"],
             "verdict": "ok" if key in have_vols or spec["name"] in have_vols else "missing"}
            for key, spec in desired["volumes"].items()]
    in_sync = all(s["verdict"] == "ok" for s in services) and all(
        x["verdict"] == "ok" for x in nets + vols)
    return {"services": services, "networks": nets, "volumes": vols, "in_sync": in_sync}


class ComposeView(EngineView):
    """A Compose project: what compose.yaml asks for next to what the engine has, live."""

    project = t.Unicode(help="the Compose project name").tag(sync=True)
    compose_file = t.Unicode(help="the compose file read").tag(sync=True)
    desired = t.Dict(help="from the file: services, networks, volumes").tag(sync=True)
    actual = t.Dict(help="from the engine: containers (name, service, state), networks, "
                    "volumes").tag(sync=True)
    diff = t.Dict(help="per service/network/volume: desired, running, verdict; in_sync").tag(
        sync=True)
    _state_traits = ("project", "compose_file", "desired", "actual", "diff")
    _title = "Compose: desired vs actual"

    def __init__(self, client: docker.DockerClient | None = None, path: str | Path = ".", *,
                 project: str | None = None, lesson=None, live: bool = True, **kwargs):
        super().__init__(client, lesson=lesson, **kwargs)
        path = Path(path)
        if path.is_dir():
            for candidate in ("compose.yaml", "compose.yml", "docker-compose.yaml",
                              "docker-compose.yml"):
                if (path / candidate).exists():
                    path = path / candidate
                    break
            else:
                path = path / "compose.yaml"
        self.compose_file = str(path)
        self._project_override = project
        self._live = live
        self._refresher = Debouncer(self.refresh, delay=0.2)
        self._listeners.append(self._refresher)
        self._read_file()
        if live:
            self._listen(filters={"type": "container", "label": [f"{PROJECT}={self.project}"]},
                         on_event=lambda _: self._refresher.poke())
            self._listen(filters={"type": ["network", "volume"]},
                         on_event=lambda _: self._refresher.poke())
        self.refresh()

    def _on_reconnect(self) -> None:
        self._refresher.poke()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until the view has redrawn after the latest change."""
        return self._refresher.wait_idle(timeout)

    def _read_file(self) -> None:
        path = Path(self.compose_file)
        try:
            config = yaml.safe_load(interpolate(path.read_text())) or {}
        except (OSError, yaml.YAMLError) as exc:
            self.desired = {"error": f"cannot read {path}: {exc}", "services": {}, "networks": {},
                            "volumes": {}}
            self.project = self._project_override or project_name(path, {})
            return
        self.project = self._project_override or project_name(path, config)
        self.desired = desired_state(config, self.project)

    def refresh(self) -> None:
        """Re-read the file and ask the engine what the project has."""
        self._read_file()
        actual = self._engine_call(self._actual)
        if actual is None:
            return
        self.actual = actual
        self.diff = compare(self.desired, actual["containers"], actual["networks"],
                            actual["volumes"])
        self._looked(self._live)

    def _actual(self) -> dict:
        label = {"label": [f"{PROJECT}={self.project}"]}
        containers = [{"name": c.name, "service": c.labels.get(SERVICE, ""), "state": c.status,
                       "number": c.labels.get("com.docker.compose.container-number", "")}
                      for c in self.client.containers.list(all=True, filters=label,
                                                           ignore_removed=True)]
        networks = [{"name": n.name, "key": (n.attrs.get("Labels") or {}).get(NETWORK, n.name)}
                    for n in self.client.networks.list(filters=label)]
        volumes = [{"name": v.name, "key": (v.attrs.get("Labels") or {}).get(VOLUME, v.name)}
                   for v in self.client.volumes.list(filters=label)]
        return {"containers": sorted(containers, key=lambda c: c["name"]), "networks": networks,
                "volumes": volumes}

    def _render(self) -> str:
        d = self.diff or {}
        colors = {"ok": COLORS["ok"], "missing": COLORS["bad"], "not running": COLORS["bad"],
                  "too few": COLORS["warn"], "too many": COLORS["warn"], "orphan": COLORS["muted"]}
        head = (f"<p>project <b>{esc(self.project)}</b> from <code>{esc(self.compose_file)}</code>"
                f" — {badge('in sync', COLORS['ok']) if d.get('in_sync') else badge('differs', COLORS['warn'])}"
                "</p>")
        if self.desired.get("error"):
            head += f"<p style='color:{COLORS['bad']}'>{esc(self.desired['error'])}</p>"
        rows = []
        for s in d.get("services", []):
            boxes = " ".join(badge(c["name"], COLORS.get(c["state"], COLORS["muted"]))
                             for c in s["containers"]) or "<i>none</i>"
            rows.append([f"<b>{esc(s['service'])}</b><br><code>{esc(s['image'])}</code>",
                         str(s["desired"]), str(s["running"]), boxes,
                         badge(s["verdict"], colors.get(s["verdict"], "#999"))])
        out = head + table(["service", "desired", "running", "containers (by state)", ""], rows,
                           cls="docklab-compose")
        res = []
        for kind, items in (("network", d.get("networks", [])), ("volume", d.get("volumes", []))):
            for x in items:
                res.append([kind, f"<b>{esc(x['key'])}</b>", f"<code>{esc(x['name'])}</code>"
                            + (" (external)" if x["external"] else ""),
                            badge(x["verdict"], colors.get(x["verdict"], "#999"))])
        if res:
            out += table(["", "in the file", "on the engine", ""], res, cls="docklab-compose-res")
        return out
