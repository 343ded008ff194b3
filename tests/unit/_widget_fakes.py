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


class FakeContainer:
    def __init__(self, name, status="running", labels=None, attrs=None):
        self.name, self.status, self.labels = name, status, labels or {}
        self.id = (name * 64)[:64]
        self.attrs = attrs or {}


class FakeVolume:
    def __init__(self, name, labels=None):
        self.name = name
        self.attrs = {"Driver": "local", "Labels": labels or {},
                      "Mountpoint": f"/var/lib/docker/volumes/{name}/_data"}


class FakeNetwork:
    def __init__(self, name, labels=None):
        self.name = name
        self.attrs = {"Labels": labels or {}, "Driver": "bridge"}


class _Collection:
    def __init__(self, items):
        self.items = items
        self.filters: list = []

    def list(self, all=False, filters=None, ignore_removed=False):
        self.filters.append(filters)
        return list(self.items)

    def get(self, name):
        import docker.errors

        for item in self.items:
            if item.name == name:
                return item
        raise docker.errors.NotFound(name)


class FakeSwarmApi:
    """The low-level calls the swarm view makes."""

    def __init__(self, nodes=(), services=(), tasks=(), error=None):
        self._nodes, self._services, self._tasks, self.error = list(nodes), list(services), \
            list(tasks), error

    def nodes(self):
        if self.error:
            raise self.error
        return self._nodes

    def services(self):
        return self._services

    def tasks(self, filters=None):
        return [t for t in self._tasks if t["ServiceID"] == filters["service"]]


class FakeEngine(FakeClient):
    """FakeClient plus the collections the inventory views list."""

    def __init__(self, *, containers=(), volumes=(), networks=(), swarm=None, api=None, **kwargs):
        super().__init__(**kwargs)
        self.containers = _Collection(list(containers))
        self.volumes = _Collection(list(volumes))
        self.networks = _Collection(list(networks))
        self.swarm_info = swarm or {"LocalNodeState": "inactive"}
        self.api = api

    def info(self):
        return {**super().info(), "Swarm": self.swarm_info}
