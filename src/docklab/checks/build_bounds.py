"""Limited parent cgroups for graded builds, kept and lent again (:meth:`Sandbox._cgroup_parent`).

On a cgroup v1 engine with the cgroupfs driver, a graded build's step containers go below a
small container's cgroup (``--cgroup-parent``), which bounds the whole build's pids, memory and
CPU. BuildKit keys a RUN step's cache on that parent too (measured on Engine 26.1: the same step
under another parent runs again; under the same one it is cached), so a parent made for each
build made every graded BuildKit build start from nothing: ``apt-get install`` again in each
check of mobysay and multistage.

So a parent outlives its build: this process keeps it and lends it to the next build with the
same engine, image and limits, to one build at a time (they would share its budget). Each lives
at most :data:`LIFETIME` (its ``sleep``, then ``--rm`` removes it) and is lent only while a
whole build still fits in what is left; what is idle when the process exits is removed then.
It carries the course labels under a lesson of its own, :data:`LESSON`, and no learner's name:
it is this process's, shared by whatever it grades (``docklab clean`` removes it too).

Equivalent CLI: ``docker run -d --rm --memory 512m --pids-limit 256 --cpus 1 --network none
--label org.docklab.lesson=grade-build-bounds debian:12 sleep 3600``, then ``docker buildx build
--cgroup-parent /docker/<its id> ...`` for every build that borrows it.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import docker
import docker.errors
import requests.exceptions

from docklab import labels as L
from docklab.engine import exec_output

#: The lesson label of the parents' containers.
LESSON = "grade-build-bounds"
#: The learner label they carry: no learner's (a parent is lent to whichever check comes next).
SHARED = "shared"
#: Seconds a parent's container lives (``sleep``, then removed by the engine: ``--rm``).
LIFETIME = 3600


@dataclass
class BoundParent:
    """A limited parent: the helper container and its cgroup path on the engine's host."""

    client: docker.DockerClient
    container_id: str
    path: str
    key: tuple
    #: time.monotonic() when the engine removes it.
    expires: float


_idle: dict[tuple, list[BoundParent]] = {}
_lock = threading.Lock()


def borrow(key: tuple, build_timeout: float,
           start: Callable[[], BoundParent | None]) -> BoundParent | None:
    """An idle parent for ``key`` (engine, image, limits) that is still running, with time left
    for a build of ``build_timeout``; else a new one from ``start()`` (None: none could be made).
    """
    while True:
        with _lock:
            candidates = _idle.get(key, [])
            parent = candidates.pop() if candidates else None
        if parent is None:
            break
        # A build lent it now ends before it does (a minute to spare for the engine's clock).
        if parent.expires > time.monotonic() + build_timeout + 60 and _running(parent):
            return parent
        _remove(parent)
    return start()


def give_back(parent: BoundParent) -> None:
    """The build is over: the parent may be lent again."""
    with _lock:
        _idle.setdefault(parent.key, []).append(parent)


def start_parent(client: docker.DockerClient, key: tuple, image: str,
                 limits: dict) -> BoundParent | None:
    """A new parent: a container of ``image`` with ``limits`` (``containers.run`` keywords),
    and its pids cgroup's path as its own ``/proc/self/cgroup`` says. Without cgroup namespaces
    that is the full path on the engine's host (``/docker/<id>`` by default); if it does not end
    in the container's ID it is not, and there is no parent (None)."""
    labels = L.labels_for(LESSON, kind="container")
    labels[L.LEARNER] = SHARED
    helper = client.containers.run(image, ["sleep", str(LIFETIME)], detach=True, auto_remove=True,
                                   labels=labels, network_disabled=True, **limits)
    parent = BoundParent(client, helper.id, "", key, time.monotonic() + LIFETIME)
    code, text = exec_output(helper, ["cat", "/proc/self/cgroup"])
    parent.path = next((row.split(":", 2)[2] for row in text.splitlines()
                        if code == 0 and row.split(":")[1:2] == ["pids"]), "")
    if not parent.path.rstrip("/").endswith(helper.id):
        _remove(parent)
        return None
    return parent


def remove_all() -> None:
    """Remove every idle parent (at the process's exit; a lent one's build still runs)."""
    with _lock:
        parents = [parent for idle in _idle.values() for parent in idle]
        _idle.clear()
    for parent in parents:
        _remove(parent)


def _running(parent: BoundParent) -> bool:
    try:
        state = parent.client.api.inspect_container(parent.container_id).get("State") or {}
    except (docker.errors.APIError, requests.exceptions.RequestException):
        return False
    return bool(state.get("Running"))


def _remove(parent: BoundParent) -> None:
    with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
        parent.client.api.remove_container(parent.container_id, force=True, v=True)


atexit.register(remove_all)
