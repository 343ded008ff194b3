"""What every visualizer shares: a stoppable engine-events listener, a view base class, HTML helpers.

A visualizer is an ipywidgets box whose synced traits hold the model's state (so ``get_state()``
shows it without a browser) and whose ``ipywidgets.HTML`` child renders that state. Work that talks
to the engine runs in daemon threads, never in the cell that made the widget, and ``close()`` stops
them. When the engine goes away, the view says so in ``status`` and in its picture, keeps the last
state it saw, and reconnects by itself.
"""

from __future__ import annotations

import collections
import datetime as dt
import html
import threading
import time
from collections.abc import Callable

import docker
import docker.errors
import ipywidgets as w
import requests.exceptions
import traitlets as t

from docklab.errors import DocklabError

#: Errors that mean "the engine cannot be asked right now", not a bug in the widget.
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError,
                 DocklabError)

LIVE = "live"
STOPPED = "stopped"
SNAPSHOT = "snapshot"  # looked once, not following the engine


def engine_time_ns(client: docker.DockerClient) -> int:
    """The engine's clock (``docker info``'s SystemTime) in nanoseconds since the epoch.

    Event windows are cut on the engine's clock: a remote engine's clock may differ from ours.
    """
    stamp = client.info()["SystemTime"]
    return parse_engine_time(stamp)


def parse_engine_time(stamp: str) -> int:
    """RFC 3339 with up to nanoseconds, as the engine writes it, to nanoseconds since the epoch."""
    stamp = stamp.strip().replace("Z", "+00:00")
    head, frac, zone = stamp, "", ""
    if "." in stamp:
        head, rest = stamp.split(".", 1)
        digits = len(rest) - len(rest.lstrip("0123456789"))
        frac, zone = rest[:digits], rest[digits:]
    else:
        for sign in ("+", "-"):
            if sign in head[11:]:
                cut = 11 + head[11:].index(sign)
                head, zone = head[:cut], head[cut:]
                break
    seconds = dt.datetime.fromisoformat(head + (zone or "+00:00")).timestamp()
    return int(seconds) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def _stamp(ns: int) -> str:
    """The engine's ``since``/``until`` format: seconds.nanoseconds."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def describe_engine_error(exc: BaseException) -> str:
    """A short, learner-facing reason the engine could not be asked."""
    if isinstance(exc, DocklabError):
        return exc.message
    text = str(exc)
    for needle, reason in (("Connection refused", "connection refused"),
                           ("No such file", "the engine's socket is gone"),
                           ("timed out", "timed out"),
                           ("Connection aborted", "the connection was cut"),
                           ("Max retries", "no answer")):
        if needle in text:
            return reason
    return (text.splitlines() or ["no answer"])[0][:160]


class EngineEvents:
    """Follows ``docker events --filter ...`` in a daemon thread until ``close()``.

    The stream is read in windows of ``window`` seconds (``since``/``until`` on the engine's clock,
    each window starting where the last one ended), so the thread ends within one window even where
    a stream cannot be closed from outside (ssh://); elsewhere ``close()`` shuts the stream's socket
    and the thread ends at once. When the engine stops answering, ``on_status`` gets the error and
    the listener retries every few seconds; it gets ``None`` when the stream is live (again).
    """

    def __init__(self, client: docker.DockerClient, *, filters: dict | None = None,
                 on_event: Callable[[dict], None],
                 on_status: Callable[[BaseException | None], None] = lambda exc: None,
                 since_ns: int | None = None, window: float = 30.0, retry: float = 2.0):
        self._client = client
        self._filters = filters or {}
        self._on_event = on_event
        self._on_status = on_status
        self._cursor = since_ns
        self._window_ns = int(window * 1e9)
        self._retry = retry
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._stream = None
        self._recent: collections.deque = collections.deque(maxlen=512)
        self._thread = threading.Thread(target=self._run, name="docklab-events", daemon=True)
        self.live = threading.Event()  # set while a stream is open

    def start(self) -> EngineEvents:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout: float = 5.0) -> None:
        """Stop listening: shut the open stream from this thread and wait for the listener."""
        self._closed.set()
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001 - ssh streams cannot be cancelled: the window ends it
                pass
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        failed = False
        while not self._closed.is_set():
            try:
                now = engine_time_ns(self._client)
                if self._cursor is None:
                    self._cursor = now
                until = now + self._window_ns
                stream = self._client.events(decode=True, filters=self._filters,
                                             since=_stamp(self._cursor), until=_stamp(until))
                with self._lock:
                    if self._closed.is_set():
                        stream.close()
                        return
                    self._stream = stream
                if failed or not self.live.is_set():
                    failed = False
                    self.live.set()
                    self._on_status(None)
                for event in stream:
                    if self._closed.is_set():
                        return
                    key = (event.get("id") or event.get("Actor", {}).get("ID"),
                           event.get("Action"), event.get("timeNano"))
                    if key in self._recent:  # windows overlap by one instant: seen already
                        continue
                    self._recent.append(key)
                    self._cursor = max(self._cursor, int(event.get("timeNano") or 0))
                    try:
                        self._on_event(event)
                    except Exception:  # noqa: BLE001 - a bad event must not end the listener
                        pass
                with self._lock:
                    self._stream = None
                if self._closed.is_set():
                    return
                # The stream ends at `until`, or early when the connection broke: then the next
                # window's `docker info` fails and reports it.
                self._cursor = max(self._cursor, min(until, engine_time_ns(self._client)))
            except ENGINE_ERRORS as exc:
                if self._closed.is_set():
                    return
                self.live.clear()
                failed = True
                self._on_status(exc)
                self._closed.wait(self._retry)


class Debouncer:
    """Runs ``action`` in a daemon thread at most every ``delay`` seconds after ``poke()``.

    Views that re-inspect the engine on change use it, so a burst of events costs one refresh.
    """

    def __init__(self, action: Callable[[], None], delay: float = 0.15):
        self._action = action
        self._delay = delay
        self._poked = threading.Event()
        self._closed = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="docklab-refresh", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._idle.clear()
        self._poked.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)

    def close(self, timeout: float = 15.0) -> None:
        """Stop, and wait for a refresh in progress: one that runs a helper container (e.g. the
        registry view on a remote engine) would otherwise create it after the cleanup."""
        self._closed.set()
        self._poked.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._closed.is_set():
            self._poked.wait()
            if self._closed.is_set():
                return
            time.sleep(self._delay)
            self._poked.clear()
            try:
                self._action()
            except Exception:  # noqa: BLE001 - the view reports engine errors itself
                pass
            if not self._poked.is_set():
                self._idle.set()


class EngineView(w.VBox):
    """Base of the visualizers: status handling, rendering into one HTML child, ``close()``.

    Subclasses declare their state as synced traits, list them in ``_state_traits``, and implement
    ``_render()`` (HTML of the current state).
    """

    status = t.Unicode(STOPPED, help="'live' while following the engine, 'stopped' after close(), "
                       "or why the engine cannot be asked").tag(sync=True)

    _state_traits: tuple[str, ...] = ()
    _title = ""

    def __init__(self, client: docker.DockerClient | None = None, *, lesson=None,
                 controls: list | None = None, **kwargs):
        self._client = client if client is not None else (lesson.client if lesson else None)
        self._lesson = lesson
        self._html = w.HTML(layout=w.Layout(width="100%"))
        self._listeners: list = []
        self._closed = False
        super().__init__(children=[*(controls or []), self._html], **kwargs)
        self.add_class("docklab-view")
        self.observe(lambda _: self._rerender(), names=["status", *self._state_traits])

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            from docklab.engine import connect

            self._client = connect()
        return self._client

    # --- engine access that never raises into the notebook -------------------------------------

    def _engine_call(self, fn: Callable, *args, **kwargs):
        """Call the engine; on failure record why in ``status`` and return None."""
        try:
            result = fn(*args, **kwargs)
        except ENGINE_ERRORS as exc:
            self._engine_failed(exc)
            return None
        return result

    def _engine_failed(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        if exc is None:
            self.status = LIVE
        else:
            self.status = f"engine unreachable: {describe_engine_error(exc)}"

    def _listen(self, *, filters: dict, on_event: Callable[[dict], None],
                since_ns: int | None = None, window: float = 30.0) -> EngineEvents:
        def on_status(exc):
            self._engine_failed(exc)
            if exc is None:
                self._on_reconnect()

        listener = EngineEvents(self.client, filters=filters, on_event=on_event,
                                on_status=on_status, since_ns=since_ns, window=window)
        self._listeners.append(listener)
        return listener.start()

    def _looked(self, live: bool = True) -> None:
        """A look at the engine succeeded: say so, unless the view was closed meanwhile."""
        if not self._closed:
            self.status = LIVE if live else SNAPSHOT

    def _on_reconnect(self) -> None:
        """Called when a listener's stream is (again) live; views re-read what they show."""

    def wait_live(self, timeout: float = 10.0) -> bool:
        """Block until every listener has its stream open (for tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        return all(listener.live.wait(max(0.0, deadline - time.monotonic()))
                   for listener in self._listeners if isinstance(listener, EngineEvents))

    def close(self) -> None:
        """Stop following the engine: every thread of the view ends. The last picture stays on
        the page (status "stopped"), so a learner can scroll back to it after a cleanup cell;
        ``destroy()`` also removes the widget (ipywidgets' own ``Widget.close``)."""
        self._closed = True
        for listener in self._listeners:
            if hasattr(listener, "close"):
                listener.close()
        self._listeners = []
        if self.status in (LIVE, SNAPSHOT):
            self.status = STOPPED

    def destroy(self) -> None:
        """``close()``, then close the widget model too: its views disappear from the page."""
        self.close()
        w.VBox.close(self)

    # --- rendering -------------------------------------------------------------------------------

    def _render(self) -> str:  # pragma: no cover - every view overrides it
        raise NotImplementedError

    def _rerender(self) -> None:
        try:
            body = self._render()
        except Exception as exc:  # noqa: BLE001 - a drawing bug must not surface as a traceback
            body = f"<i>cannot draw this view: {esc(exc)}</i>"
        self._html.value = frame(self._title, body, self.status, view=type(self).__name__)

    def __repr__(self) -> str:
        # The text/plain form of the output: short and the same on every run (a saved output does not change when rerun).
        return f"<{type(self).__name__}>"


# --- HTML helpers ------------------------------------------------------------------------------

COLORS = {
    "created": "#6c757d", "running": "#2e7d32", "paused": "#f9a825", "restarting": "#ef6c00",
    "exited": "#c62828", "removed": "#9e9e9e", "ok": "#2e7d32", "bad": "#c62828",
    "warn": "#ef6c00", "muted": "#6c757d", "accent": "#1565c0", "shared": "#fff3cd",
}


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def badge(text: str, color: str) -> str:
    return (f"<span style='background:{color};color:#fff;border-radius:3px;padding:0 5px;"
            f"font-size:85%;white-space:nowrap'>{esc(text)}</span>")


def table(headers: list[str], rows: list[list[str]], *, cls: str = "", nowrap: int = 0,
          widths: list[str] | None = None) -> str:
    """An HTML table; cells are HTML already (escape text with ``esc``).

    The first ``nowrap`` columns never wrap.
    """
    widths = widths or [""] * len(headers)
    head = "".join(f"<th style='text-align:left;padding:2px 8px;border-bottom:1px solid #ccc"
                   f"{';width:' + wd if wd else ''}'>{esc(h)}</th>" for h, wd in zip(headers, widths))
    cell = "<td style='padding:2px 8px;vertical-align:top;overflow-wrap:anywhere{}'>{}</td>"
    body = "".join("<tr>" + "".join(cell.format(";white-space:nowrap" if i < nowrap else "", c)
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    layout = ";width:100%;table-layout:fixed" if any(widths) else ""
    return (f"<table class='docklab-table {cls}' style='border-collapse:collapse;font-size:90%"
            f"{layout}'>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def frame(title: str, body: str, status: str, *, view: str = "") -> str:
    """The box every view draws in: title, a status line, the body."""
    if status == LIVE:
        state = badge("● live", COLORS["ok"])
    elif status in (STOPPED, SNAPSHOT):
        state = badge(status, COLORS["muted"])
    else:
        state = badge("⚠ " + status, COLORS["bad"])
    warning = ""
    if status not in (LIVE, STOPPED, SNAPSHOT, ""):
        warning = ("<div class='docklab-warning' style='color:#c62828;margin:4px 0'>The Docker "
                   f"Engine is not answering ({esc(status.split(': ', 1)[-1])}). This view keeps "
                   "the last state it saw and reconnects by itself.</div>")
    return (f"<div class='docklab-frame' data-docklab-view='{esc(view)}' style='font-family:sans-serif;border:1px solid #ddd;"
            f"border-radius:6px;padding:8px;background:#fff;color:#222'>"
            f"<div style='font-weight:bold;margin-bottom:4px'>{esc(title)} {state}</div>"
            f"{warning}{body}</div>")


def human_size(size: float | None) -> str:
    if size is None:
        return "—"
    size = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(size) < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
