"""Swarm: nodes, managers, the leader, reachability, quorum arithmetic, service replicas and
rolling-update progress, live.

    from docklab.widgets.swarm import SwarmView
    SwarmView(manager_client)          # a client of any manager (e.g. a Docker-in-Docker node)

Quorum: the managers keep the cluster's state with Raft, which needs a majority of them,
``N // 2 + 1``, to agree; so N managers tolerate ``(N - 1) // 2`` failures (3 tolerate 1, 5
tolerate 2, and 4 no more than 3). Without quorum the running containers go on, but nothing can be
changed: the manager API answers "The swarm does not have a leader", and the view says so. Equivalent
CLI: ``docker node ls``, ``docker service ls``, ``docker service ps``. Node and service events
redraw it; tasks have no events, so it also re-reads every ``interval`` seconds while open.
"""

from __future__ import annotations

import threading

import docker
import docker.errors
import traitlets as t

from docklab.widgets._base import (
    COLORS,
    ENGINE_ERRORS,
    Debouncer,
    EngineView,
    badge,
    describe_engine_error,
    esc,
    table,
)

__all__ = ["SwarmView", "quorum", "rollout"]


def quorum(managers: int, reachable: int) -> dict:
    """Raft's arithmetic for ``managers`` managers of which ``reachable`` answer."""
    need = managers // 2 + 1 if managers else 0
    return {"managers": managers, "reachable": reachable, "quorum": need,
            "tolerates": (managers - 1) // 2 if managers else 0,
            "has_quorum": managers > 0 and reachable >= need}


def rollout(spec_image: str, tasks: list[dict]) -> dict:
    """Of the tasks meant to run, how many run the service's current image (a rolling update)."""
    current = [task for task in tasks if task.get("DesiredState") == "running"]
    image = spec_image.split("@")[0]

    def task_image(task):
        return ((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Image", "").split("@")[0]

    running = [task for task in current if (task.get("Status") or {}).get("State") == "running"]
    updated = [task for task in running if task_image(task) == image]
    return {"running": len(running), "updated": len(updated), "desired_tasks": len(current)}


class SwarmView(EngineView):
    """A swarm seen from one manager: nodes, quorum and services, live."""

    nodes = t.List(t.Dict(), help="hostname, role, state, availability, leader, reachability, "
                   "addr of each node").tag(sync=True)
    quorum = t.Dict(help="managers, reachable, quorum (majority), tolerates, has_quorum").tag(
        sync=True)
    services = t.List(t.Dict(), help="name, mode, replicas (desired), running, updated, image, "
                      "update (state, message)").tag(sync=True)
    error = t.Unicode(help="what the manager answered when it could not tell, if so").tag(
        sync=True)
    _state_traits = ("nodes", "quorum", "services", "error")
    _title = "Swarm"

    def __init__(self, client: docker.DockerClient | None = None, *, lesson=None,
                 interval: float = 2.0, live: bool = True, **kwargs):
        super().__init__(client, lesson=lesson, **kwargs)
        self._live = live
        self._refresher = Debouncer(self.refresh, delay=0.1)
        self._listeners.append(self._refresher)
        self._stop = threading.Event()
        if live:
            self._listen(filters={"type": ["node", "service"]},
                         on_event=lambda _: self._refresher.poke())
            threading.Thread(target=self._tick, args=(interval,), name="docklab-swarm-poll",
                             daemon=True).start()
        self.refresh()

    def _tick(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._refresher.poke()

    def close(self) -> None:
        self._stop.set()
        super().close()

    def _on_reconnect(self) -> None:
        self._refresher.poke()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        return self._refresher.wait_idle(timeout)

    def refresh(self) -> None:
        """Ask the manager about nodes and services again."""
        try:
            info = self.client.info()
        except ENGINE_ERRORS as exc:
            self._engine_failed(exc)
            return
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active":
            self.error = (f"this engine is not in a swarm (state: "
                          f"{swarm.get('LocalNodeState') or 'inactive'}): `docker swarm init`")
            self.nodes, self.services = [], []
            self.quorum = quorum(0, 0)
            self._looked(self._live)
            return
        try:
            nodes = self.client.api.nodes()
        except docker.errors.APIError as exc:
            # A manager without quorum, or a worker: the API refuses. Say which, keep the rest.
            self.error = (exc.explanation or str(exc))[:300]
            if "leader" in self.error or "quorum" in self.error.lower():
                managers = swarm.get("Managers") or sum(n["role"] == "manager"
                                                        for n in self.nodes)
                self.quorum = {**quorum(managers, 0), "has_quorum": False}
            self._looked(self._live)
            return
        except ENGINE_ERRORS as exc:
            self._engine_failed(exc)
            return
        self.nodes = sorted((self._node(n) for n in nodes),
                            key=lambda n: (n["role"] != "manager", n["hostname"]))
        managers = [n for n in self.nodes if n["role"] == "manager"]
        reachable = sum(n["reachability"] == "reachable" for n in managers)
        self.quorum = quorum(len(managers), reachable)
        try:
            self.services = [self._service(s) for s in self.client.api.services()]
            self.error = ""
        except docker.errors.APIError as exc:
            self.error = (exc.explanation or str(exc))[:300]
        except ENGINE_ERRORS as exc:
            self._engine_failed(exc)
            return
        self._looked(self._live)

    @staticmethod
    def _node(node: dict) -> dict:
        spec, status = node.get("Spec") or {}, node.get("Status") or {}
        manager = node.get("ManagerStatus") or {}
        return {"id": node.get("ID", "")[:12],
                "hostname": (node.get("Description") or {}).get("Hostname", ""),
                "role": spec.get("Role", ""), "availability": spec.get("Availability", ""),
                "state": status.get("State", ""), "addr": manager.get("Addr") or status.get("Addr", ""),
                "leader": bool(manager.get("Leader")),
                "reachability": manager.get("Reachability", "")}

    def _service(self, service: dict) -> dict:
        spec = service.get("Spec") or {}
        mode = spec.get("Mode") or {}
        image = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", "")
        tasks = self.client.api.tasks(filters={"service": service["ID"]})
        progress = rollout(image, tasks)
        replicated = "Replicated" in mode
        update = service.get("UpdateStatus") or {}
        return {"name": spec.get("Name", ""), "mode": "replicated" if replicated else "global",
                "replicas": (mode.get("Replicated") or {}).get("Replicas", 0) if replicated
                else progress["desired_tasks"],
                "running": progress["running"], "updated": progress["updated"],
                "image": image.split("@")[0],
                "update": {"state": update.get("State", ""), "message": update.get("Message", "")}}

    def _render(self) -> str:
        q = self.quorum or {}
        parts = []
        if self.error:
            parts.append(f"<p style='color:{COLORS['bad']}'><b>The manager says:</b> "
                         f"{esc(self.error)}</p>")
        if q.get("managers"):
            verdict = (badge("quorum ✓", COLORS["ok"]) if q.get("has_quorum")
                       else badge("NO QUORUM: nothing can be changed", COLORS["bad"]))
            parts.append(
                f"<p>{q['managers']} manager(s), {q['reachable']} reachable · quorum needs "
                f"{q['managers']} // 2 + 1 = <b>{q['quorum']}</b> · tolerates "
                f"({q['managers']} − 1) // 2 = <b>{q['tolerates']}</b> failure(s) {verdict}</p>")
        cards = []
        for n in self.nodes:
            up = n["state"] == "ready"
            color = COLORS["ok"] if up else COLORS["bad"]
            crown = " ★ leader" if n["leader"] else ""
            reach = (f"<br>{badge(n['reachability'], COLORS['ok'] if n['reachability'] == 'reachable' else COLORS['bad'])}"
                     if n["role"] == "manager" else "")
            cards.append(
                f"<div class='docklab-node' style='border:2px solid {color};border-radius:6px;"
                f"padding:4px 8px;min-width:120px'><b>{esc(n['hostname'])}</b>{esc(crown)}<br>"
                f"{esc(n['role'])} · {esc(n['state'])} · {esc(n['availability'])}{reach}</div>")
        if cards:
            parts.append("<div style='display:flex;flex-wrap:wrap;gap:8px;margin:6px 0'>"
                         + "".join(cards) + "</div>")
        rows = []
        for s in self.services:
            desired = max(s["replicas"], 1)
            bar = (f"<span style='display:inline-block;width:120px;height:10px;background:#eee;"
                   f"border-radius:2px'><span style='display:block;height:10px;border-radius:2px;"
                   f"width:{120 * min(s['updated'], desired) / desired:.0f}px;"
                   f"background:{COLORS['accent']}'></span></span>")
            update = s["update"]["state"]
            rows.append([f"<b>{esc(s['name'])}</b>", esc(s["mode"]),
                         f"{s['running']}/{s['replicas']}", f"<code>{esc(s['image'])}</code>",
                         f"{bar} {s['updated']}/{s['replicas']} on this image"
                         + (f"<br>{badge('update ' + update, COLORS['warn'] if update == 'updating' else COLORS['muted'])}"
                            if update else "")])
        if rows:
            parts.append(table(["service", "mode", "running", "image", "rolling update"], rows,
                               cls="docklab-services"))
        elif not self.error:
            parts.append("<i>no services yet: <code>docker service create</code></i>")
        return "".join(parts)

    def _engine_failed(self, exc: BaseException | None) -> None:
        super()._engine_failed(exc)
        if exc is not None:
            self.error = f"the manager does not answer: {describe_engine_error(exc)}"
