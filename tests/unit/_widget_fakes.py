"""A small stand-in for the docker client, for the visualizers' pure logic (no engine).

Only what the views call: ``info()`` for the engine's clock and ``events()`` with scripted events.
Engine behaviour itself is tested against the real engine in tests/integration.
"""

from __future__ import annotations

import threading

import requests.exceptions

ENGINE_TIME = "2026-01-01T00:00:00.123456789Z"


class FakeStream:
    """Yields the scripted events, then blocks (like a live stream) until closed."""

    def __init__(self, events):
        self._events = list(events)
        self.closed = threading.Event()

    def __iter__(self):
        return self

    def __next__(self):
        if self._events:
            return self._events.pop(0)
        self.closed.wait(5)
        raise StopIteration

    def close(self):
        self.closed.set()


class FakeClient:
    def __init__(self, events=(), *, down: bool = False):
        self._events = list(events)
        self.down = down
        self.streams: list[FakeStream] = []
        self.event_calls: list[dict] = []

    def info(self):
        if self.down:
            raise requests.exceptions.ConnectionError("('Connection aborted.', "
                                                      "ConnectionRefusedError(111, 'Connection refused'))")
        return {"SystemTime": ENGINE_TIME, "Name": "fakehost"}

    def events(self, **kwargs):
        self.event_calls.append(kwargs)
        stream = FakeStream(self._events)
        self._events = []
        self.streams.append(stream)
        return stream


def container_event(action: str, cid: str = "c" * 64, name: str = "web", t: int = 1,
                    **attributes) -> dict:
    return {"Type": "container", "Action": action, "status": action, "id": cid,
            "Actor": {"ID": cid, "Attributes": {"name": name, "image": "busybox", **attributes}},
            "time": t, "timeNano": t * 1_000_000_000}
