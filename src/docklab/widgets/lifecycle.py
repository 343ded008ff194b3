"""Lifecycle: a state diagram that follows containers live from the engine's event stream.

    from docklab.widgets.lifecycle import LifecycleView
    view = LifecycleView(lesson.client, lesson=lesson)   # every container this lesson makes from now on
    view                                                  # show it; then create, start, stop, kill, rm ...
    LifecycleView(lesson.client, [web])                   # or: just these containers (objects, names, ids)
    view.close()                                          # stop listening

Each transition shows what caused it and how it ended: ``docker stop`` sends SIGTERM and, after
the grace period, SIGKILL; ``docker kill`` sends SIGKILL; a ``die`` event carries the exit code
(above 128: killed by signal code − 128). Equivalent CLI: ``docker events --filter type=container``.
"""

from __future__ import annotations

import datetime as dt
import threading

import docker
import docker.errors
import traitlets as t

from docklab import labels as L
from docklab.widgets._base import COLORS, EngineView, badge, engine_time_ns, esc, table

__all__ = ["STATES", "LifecycleModel", "LifecycleView"]

STATES = ("created", "running", "paused", "restarting", "exited", "removed")

#: Linux signal numbers (the engine's, whatever OS this kernel runs on).
SIGNALS = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 6: "SIGABRT", 9: "SIGKILL", 10: "SIGUSR1",
           12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 17: "SIGCHLD",
           18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP", 28: "SIGWINCH"}

_ENGINE_STATES = {"created": "created", "running": "running", "paused": "paused",
                  "restarting": "restarting", "exited": "exited", "dead": "exited",
                  "removing": "exited"}


def signal_name(value) -> str:
    try:
        return SIGNALS.get(int(value), f"signal {int(value)}")
    except (TypeError, ValueError):
        return str(value)  # the engine also accepts names, e.g. "SIGUSR1"


def explain_exit(code: int | None) -> str:
    """``137`` → ``exit 137 (128 + 9: SIGKILL)``."""
    if code is None:
        return ""
    if code == 0:
        return "exit 0 (success)"
    if code > 128 and code - 128 in SIGNALS:
        return f"exit {code} (128 + {code - 128}: {SIGNALS[code - 128]})"
    if code in (125, 126, 127):
        return f"exit {code} ({ {125: 'the engine could not run it', 126: 'not executable', 127: 'command not found'}[code]})"
    return f"exit {code}"


class LifecycleModel:
    """Folds container events into each container's state and transitions. No engine, no widget.

    ``follow_all`` tracks every container the events mention; otherwise only the ids given to
    ``track`` and the names in ``names`` (matched when such a container is created).
    """

    def __init__(self, *, follow_all: bool = True, names: set[str] | None = None,
                 history: int = 30):
        self.follow_all = follow_all
        self.names = set(names or ())
        self.history = history
        self.containers: dict[str, dict] = {}
        self._order: list[str] = []
        self.last: tuple[str, int] | None = None  # (container id, index of its last transition)

    def track(self, container_id: str, name: str, state: str | None = None,
              exit_code: int | None = None) -> dict:
        """Follow a container, starting from the state the engine reports for it now."""
        if container_id not in self.containers:
            self.containers[container_id] = {
                "id": container_id[:12], "name": name, "state": state or "", "exit_code": exit_code,
                "transitions": [], "_signals": [], "_oom": False,
            }
            self._order.append(container_id)
        return self.containers[container_id]

    def _wanted(self, container_id: str, name: str, action: str) -> bool:
        if container_id in self.containers:
            return True
        return action == "create" and (self.follow_all or name in self.names)

    def apply(self, event: dict, *, restarting: bool = False) -> dict | None:
        """Apply one ``docker events`` message; return the transition it made or renamed, if any.

        ``restarting``: for a ``die`` event, whether the engine put the container in
        ``restarting`` (a restart policy will start it again) rather than ``exited``.
        """
        if event.get("Type") != "container":
            return None
        action = (event.get("Action") or event.get("status") or "").split(":")[0]
        actor = event.get("Actor") or {}
        attributes = actor.get("Attributes") or {}
        container_id = actor.get("ID") or event.get("id") or ""
        name = attributes.get("name", container_id[:12])
        if not self._wanted(container_id, name, action):
            return None
        box = self.track(container_id, name)
        when = int(event.get("timeNano") or 0)
        if action == "rename":
            box["name"] = name
            return None
        if action == "kill":
            box["_signals"].append(signal_name(attributes.get("signal")))
            return None
        if action == "oom":
            box["_oom"] = True
            return None
        if action in ("stop", "restart"):
            return self._relabel(box, action)
        target = {"create": "created", "start": "running", "unpause": "running",
                  "pause": "paused", "die": "restarting" if restarting else "exited",
                  "destroy": "removed"}.get(action)
        if target is None:
            return None  # attach, exec_*, health_status, ...: no change of state
        if target == box["state"] and action != "die":
            return None  # a replayed event the snapshot already shows
        transition = {"from": box["state"] or "", "to": target, "action": action,
                      "signals": [], "exit_code": None, "detail": "", "time_ns": when}
        if action == "die":
            code = attributes.get("exitCode")
            transition["exit_code"] = int(code) if code not in (None, "") else None
            transition["signals"] = box["_signals"]
            transition["action"] = "kill" if box["_signals"] else "exit"
            if box.pop("_stopping", False):
                transition["action"] = "stop"
            if box["_oom"]:
                transition["action"] = "out of memory"
            box["exit_code"] = transition["exit_code"]
            box["_signals"], box["_oom"] = [], False
        elif action == "start" and box["state"] == "restarting":
            transition["action"] = "restart policy"
        transition["detail"] = _detail(transition)
        box["state"] = target
        box["transitions"].append(transition)
        del box["transitions"][:-self.history]
        self.last = (container_id, len(box["transitions"]) - 1)
        return transition

    def mark_restarting(self, container_id: str, transition: dict) -> bool:
        """The engine will restart the container that just died: it is restarting, not exited."""
        box = self.containers.get(container_id)
        if not box or not box["transitions"] or box["transitions"][-1] is not transition:
            return False  # something happened since: that event tells the truth
        transition["to"] = box["state"] = "restarting"
        transition["detail"] = _detail(transition)
        return True

    def _relabel(self, box: dict, action: str) -> dict | None:
        # `stop` and `restart` arrive after the die/start they caused (Engine 20.10): name the
        # cause afterwards. Engine 26+ sends `stop` before the `die`: the die is named when it comes.
        if action == "stop" and box["state"] == "running":
            box["_stopping"] = True
            return None
        if not box["transitions"]:
            return None
        last = box["transitions"][-1]
        if action == "stop" and last["to"] in ("exited", "restarting"):
            last["action"] = "stop"
        elif action == "restart" and last["to"] == "running":
            last["action"] = "restart"
        else:
            return None
        last["detail"] = _detail(last)
        return last

    def snapshot(self) -> list[dict]:
        """JSON-able state: one dict per container, oldest first, without private fields."""
        return [{k: ([dict(tr, signals=list(tr["signals"])) for tr in v]
                     if k == "transitions" else v)
                 for k, v in self.containers[cid].items() if not k.startswith("_")}
                for cid in self._order]


def _detail(transition: dict) -> str:
    parts = []
    signals = transition.get("signals") or []
    if transition["action"] == "stop":
        if signals[1:] and signals[-1] == "SIGKILL":
            parts.append(f"{' → '.join(signals[:-1])}, then SIGKILL after the grace period")
        elif signals:
            parts.append(" → ".join(signals))
    elif signals:
        parts.append(" → ".join(signals))
    if transition["action"] == "out of memory":
        parts.append("the kernel's OOM killer sent SIGKILL")
    if transition["to"] in ("exited", "restarting"):
        parts.append(explain_exit(transition.get("exit_code")))
    if transition["to"] == "restarting":
        parts.append("the restart policy will start it again")
    return "; ".join(p for p in parts if p)


_COMMAND = {"create": "docker create", "start": "docker start", "pause": "docker pause",
            "unpause": "docker unpause", "stop": "docker stop", "kill": "docker kill",
            "exit": "process exited", "destroy": "docker rm", "restart": "docker restart",
            "restart policy": "restart policy", "out of memory": "out of memory"}

# Where each state sits in the diagram (centres of 92x28 pills), and the arrows between them:
# (from, to, SVG path, label, label x, label y, text-anchor).
_POS = {"created": (70, 95), "running": (235, 95), "paused": (235, 28), "restarting": (440, 28),
        "exited": (440, 95), "removed": (600, 95)}
_EDGES = [
    ("created", "running", "M116,95 L187,95", "start", 151, 90, "middle"),
    ("running", "paused", "M225,81 L225,44", "pause", 220, 66, "end"),
    ("paused", "running", "M245,42 L245,79", "unpause", 250, 66, "start"),
    ("running", "exited", "M281,95 L392,95", "stop · kill · exit", 337, 90, "middle"),
    ("exited", "running", "M420,109 Q337,152 255,111", "start", 337, 127, "middle"),
    ("running", "restarting", "M276,81 L398,42", "die + policy ⇄ start", 452, 64, "middle"),
    ("exited", "removed", "M486,95 L552,95", "rm", 519, 90, "middle"),
    ("created", "removed", "M70,109 Q335,190 596,111", "rm", 335, 146, "middle"),
]


def _diagram(containers: list[dict], last_edge: tuple[str, str] | None) -> str:
    width, height = 720, 160
    parts = [(f"<svg class='docklab-lifecycle-diagram' width='{width}' height='{height}' "
              f"viewBox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg' "
              "style='font-family:sans-serif;font-size:11px'>"),
             "<defs>"]
    for name, color in (("dl-arrow", "#999"), ("dl-arrow-hot", "#1565c0")):
        parts.append(f"<marker id='{name}' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='8' "
                     f"markerHeight='8' markerUnits='userSpaceOnUse' orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' "
                     f"fill='{color}'/></marker>")
    parts.append("</defs>")
    for source, target, path, label, lx, ly, anchor in _EDGES:
        # running ⇄ restarting is one line with two heads: either direction lights it up.
        hot = last_edge == (source, target) or (
            (source, target) == ("running", "restarting") and last_edge == (target, source))
        if (source, target) == ("running", "restarting"):
            marker_start = " marker-start='url(#dl-arrow{})'".format("-hot" if hot else "")
        else:
            marker_start = ""
        color, stroke, marker = ("#1565c0", 3, "dl-arrow-hot") if hot else ("#999", 1.3, "dl-arrow")
        parts.append(f"<path class='docklab-edge{' hot' if hot else ''}' d='{path}' fill='none' "
                     f"stroke='{color}' stroke-width='{stroke}' marker-end='url(#{marker})'{marker_start}/>"
                     f"<text x='{lx}' y='{ly}' fill='{color if hot else '#666'}' "
                     f"text-anchor='{anchor}'>{esc(label)}</text>")
    by_state: dict[str, list[str]] = {s: [] for s in STATES}
    for box in containers:
        if box["state"] in by_state:
            by_state[box["state"]].append(box["name"])
    for state, (x, y) in _POS.items():
        here = by_state[state]
        fill = COLORS[state] if here else "#f5f5f5"
        text = "#fff" if here else "#444"
        parts.append(f"<g class='docklab-state' data-state='{state}' data-count='{len(here)}'>"
                     f"<rect x='{x - 46}' y='{y - 14}' width='92' height='28' rx='14' "
                     f"fill='{fill}' stroke='{COLORS[state]}' stroke-width='1.5'/>"
                     f"<text x='{x}' y='{y + 4}' text-anchor='middle' fill='{text}' "
                     f"font-weight='bold'>{state}</text></g>")
        if here:
            shown = ", ".join(here[:3]) + (f" +{len(here) - 3}" if len(here) > 3 else "")
            above = state in ("paused", "restarting")
            ny = y - 18 if above else y - 19
            parts.append(f"<text x='{x}' y='{ny if above else y + 26}' text-anchor='middle' "
                         f"fill='{COLORS[state]}' font-weight='bold'>{esc(shown)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _clock(time_ns: int) -> str:
    if not time_ns:
        return ""
    return dt.datetime.fromtimestamp(time_ns / 1e9).strftime("%H:%M:%S.%f")[:-3]


class LifecycleView(EngineView):
    """Follows containers' lifecycles live: state diagram plus a timeline of transitions."""

    containers = t.List(t.Dict(), help="one entry per followed container: id, name, state, "
                        "exit_code and its transitions (from, to, action, signals, exit_code, "
                        "detail, time_ns)").tag(sync=True)
    last_transition = t.Dict(help="the most recent transition, with the container's name").tag(
        sync=True)
    _state_traits = ("containers", "last_transition")
    _title = "Container lifecycle"

    def __init__(self, client: docker.DockerClient | None = None, containers=None, *,
                 lesson=None, names: list[str] | None = None, follow_all: bool | None = None,
                 rows: int = 12, **kwargs):
        super().__init__(client, lesson=lesson, **kwargs)
        self._rows = rows
        explicit = list(containers or [])
        if follow_all is None:
            follow_all = not explicit and not names
        wanted = {lesson.name(n) if lesson is not None else n for n in names or ()}
        self.model = LifecycleModel(follow_all=follow_all, names=wanted)
        self._lock = threading.Lock()
        self._restart_counts: dict[str, int] = {}  # container id -> RestartCount last seen
        filters: dict = {"type": "container"}
        if lesson is not None:
            filters["label"] = [f"{L.LESSON}={lesson.id}", f"{L.LEARNER}={L.learner_name()}"]
        since = self._engine_call(engine_time_ns, self.client)
        for item in explicit:
            self._engine_call(self._track_existing, item)
        self._publish()
        self._listen(filters=filters, on_event=self._on_event, since_ns=since)
        self._rerender()

    def _track_existing(self, item) -> None:
        box = item if hasattr(item, "attrs") else self.client.containers.get(item)
        box.reload()
        state = box.attrs["State"]
        self._restart_counts[box.id] = box.attrs.get("RestartCount", 0)
        self.model.track(box.id, box.name, _ENGINE_STATES.get(state["Status"], state["Status"]),
                         state.get("ExitCode") if state["Status"] != "created" else None)

    def follow(self, container) -> None:
        """Also follow this container (a Container, a name or an id) from its current state."""
        with self._lock:
            self._engine_call(self._track_existing, container)
            self._publish()

    def _on_event(self, event: dict) -> None:
        with self._lock:
            transition = self.model.apply(event)
            if transition is None:
                return
            self._publish()
        # A die shows as "exited" at once; then ask whether a restart policy will start it again
        # (the engine decides that before it emits the event), and correct it if so.
        if event.get("Action") == "die":
            container_id = event.get("Actor", {}).get("ID", "")
            if self._is_restarting(container_id):
                with self._lock:
                    if self.model.mark_restarting(container_id, transition):
                        self._publish()

    def _is_restarting(self, container_id: str) -> bool:
        # The engine decides about restarting before it emits `die`: it sets Restarting and counts
        # the restart. Restarting alone is not enough: the first restart comes 100 ms later, often
        # before this inspect does, so a RestartCount above the last one seen also means it.
        try:
            attrs = self.client.api.inspect_container(container_id)
        except Exception:  # noqa: BLE001 - already removed, or the engine is gone: not restarting
            return False
        count = attrs.get("RestartCount", 0)
        before = self._restart_counts.get(container_id, 0)
        self._restart_counts[container_id] = count
        return bool(attrs["State"]["Restarting"]) or count > before

    def _publish(self) -> None:
        snapshot = self.model.snapshot()
        last = {}
        if self.model.last:
            cid, index = self.model.last
            box = self.model.containers[cid]
            last = {**box["transitions"][index], "name": box["name"], "id": box["id"]}
        self.set_trait("containers", snapshot)
        self.set_trait("last_transition", last)

    def state_of(self, name: str) -> str | None:
        """The state the view shows for the container called ``name`` (or with that id)."""
        for box in self.containers:
            if name in (box["name"], box["id"]) or box["id"].startswith(name[:12]):
                return box["state"]
        return None

    def _render(self) -> str:
        last = self.last_transition or {}
        edge = (last.get("from"), last.get("to")) if last else None
        # One row per container, the most recently changed first: its whole path through the
        # diagram, each step with the command that caused it, and signals and exit codes.
        boxes = sorted(self.containers, reverse=True,
                       key=lambda b: b["transitions"][-1]["time_ns"] if b["transitions"] else 0)
        rows = []
        for box in boxes[: self._rows]:
            steps = []
            for tr in box["transitions"]:
                by = _COMMAND.get(tr["action"], tr["action"])
                note = f"{by}: {tr['detail']}" if tr["detail"] else by
                steps.append(f"<span title='{esc(_clock(tr['time_ns']))}'>"
                             f"<span style='color:#666;font-size:85%'>{esc(note)}</span> → "
                             f"{badge(tr['to'], COLORS[tr['to']])}</span>")
            when = _clock(box["transitions"][-1]["time_ns"]) if box["transitions"] else ""
            rows.append([f"<b>{esc(box['name'])}</b><br><span style='color:#666;font-size:85%'>"
                         f"{esc(when)}</span>", " ".join(steps) or esc(box["state"])])
        if not self.containers:
            timeline = "<i>No container yet: create, start, stop or kill one and watch.</i>"
        else:
            timeline = table(["container", "its path: what happened (by which command, signal, "
                              "exit code) → new state"], rows, cls="docklab-timeline", nowrap=1)
            if len(boxes) > self._rows:
                timeline += f"<p style='color:#666'>… and {len(boxes) - self._rows} more</p>"
        return _diagram(self.containers, edge) + timeline
