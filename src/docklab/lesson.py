"""A notebook's handle on the engine: labels, names and cleanup for one lesson or lab.

    lesson = docklab.lesson.start("02-running")     # connects, removes leftovers of an earlier run
    web = lesson.run("nginx", name="web", ports={"80/tcp": 8080})   # docker run -d --name web ...
    ...
    lesson.cleanup()                                  # removes exactly what this lesson made

Every ``run``/``create``/``network``/``volume``/``build`` adds the course labels and returns the
SDK's own objects, so notebooks use docker-py as documented.
"""

from __future__ import annotations

import atexit

import docker
import docker.errors

from docklab import docker_cells, no_engine
from docklab import labels as L
from docklab.engine import connect
from docklab.errors import DocklabError, EngineError, ImageError


class ScriptRefused(DocklabError):
    """A script of docker commands that :meth:`Lesson.run_script` does not run, and why."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: the message names the line to fix.
        return [f"⛔ {self}"]


class Lesson:
    """Creates labelled resources for one lesson and removes them again."""

    def __init__(self, lesson_id: str, client: docker.DockerClient | None = None):
        self.id = lesson_id
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = connect()
        return self._client

    def labels(self, kind: str | None = None, **extra: str) -> dict[str, str]:
        return L.labels_for(self.id, kind=kind, **extra)

    def name(self, base: str) -> str:
        return L.course_name(base)

    def _merge(self, kwargs: dict) -> dict:
        kwargs["labels"] = {**(kwargs.get("labels") or {}), **self.labels(kind="container")}
        if kwargs.get("name"):
            kwargs["name"] = self.name(kwargs["name"])
            self._remove_stale_container(kwargs["name"])
        return kwargs

    def _is_ours(self, labels: dict) -> bool:
        """Made by this lesson for this learner (in any session): a leftover we may replace."""
        return (labels.get(L.MANAGED) == "true" and labels.get(L.LESSON) == self.id
                and labels.get(L.LEARNER) == L.learner_name())

    def _remove_stale_container(self, name: str) -> None:
        # Re-running a notebook must not fail with "name already in use": a container of this
        # lesson with that name is a leftover of an earlier run. Anyone else's is left alone.
        try:
            old = self.client.containers.get(name)
        except docker.errors.NotFound:
            return
        if self._is_ours(old.labels):
            old.remove(force=True, v=True)
            return
        owner = old.labels.get(L.LESSON) if old.labels.get(L.MANAGED) == "true" else None
        learner = old.labels.get(L.LEARNER)
        raise DocklabError(
            f"A container named {name!r} already exists"
            + (f" (made by the lesson {owner!r} for {learner!r})." if owner
               else ", and the course did not make it."),
            (f"Run the cleanup cell of {owner}, or `docklab clean --lesson {owner}`."
             if owner else f"Remove or rename it first: `docker rm -f {name}`."),
        )

    def run(self, image: str, command=None, **kwargs):
        """``docker run`` with the lesson's labels; detached unless ``detach=False``.

        ``remove=True`` behaves like the CLI's ``--rm``: the container goes with its anonymous
        volumes (the SDK's own ``remove`` leaves them behind, unlabelled).
        """
        kwargs.setdefault("detach", True)
        kwargs = self._merge(kwargs)
        if not kwargs.get("remove") or kwargs.get("stream"):
            return self.client.containers.run(image, command, **kwargs)
        kwargs.pop("remove")
        if kwargs["detach"]:  # docker run -d --rm: the engine removes it when it exits
            return self.client.containers.run(image, command, auto_remove=True, **kwargs)
        stdout, stderr = kwargs.pop("stdout", True), kwargs.pop("stderr", False)
        container = self.client.containers.run(image, command, **{**kwargs, "detach": True})
        try:
            status = container.wait()["StatusCode"]
            if status != 0:
                raise docker.errors.ContainerError(
                    container, status, command, image,
                    container.logs(stdout=False, stderr=True))
            return container.logs(stdout=stdout, stderr=stderr)
        finally:
            container.remove(force=True, v=True)

    def create(self, image: str, command=None, **kwargs):
        """``docker create`` with the lesson's labels."""
        return self.client.containers.create(image, command, **self._merge(kwargs))

    def network(self, name: str, **kwargs):
        """``docker network create`` (re-created if an earlier run left it behind)."""
        name = self.name(name)
        for old in self.client.networks.list(names=[name]):
            if old.name == name and self._is_ours(old.attrs.get("Labels") or {}):
                old.remove()
        kwargs["labels"] = {**(kwargs.get("labels") or {}), **self.labels()}
        return self.client.networks.create(name, **kwargs)

    def volume(self, name: str | None = None, **kwargs):
        """``docker volume create`` with the lesson's labels."""
        kwargs["labels"] = {**(kwargs.get("labels") or {}), **self.labels()}
        if name:
            kwargs["name"] = self.name(name)
        return self.client.volumes.create(**kwargs)

    def build(self, **kwargs):
        """``docker build`` with the lesson's labels; returns (image, log lines)."""
        kwargs["labels"] = {**(kwargs.get("labels") or {}), **self.labels(kind="image")}
        kwargs.setdefault("rm", True)
        kwargs.setdefault("forcerm", True)
        return self.client.images.build(**kwargs)

    def require_images(self, *names: str) -> None:
        """Stop early, with what to do, when the engine lacks an image this lesson runs.

        Equivalent CLI: ``docker image inspect NAME``. Without it, ``run`` would try Docker Hub and
        fail with a registry error that says nothing about ``docklab images prepare``.
        """
        missing = []
        for name in names:
            try:
                self.client.images.get(name)
            except docker.errors.ImageNotFound:
                missing.append(name)
        if missing:
            raise ImageError(
                f"This lesson runs {', '.join(missing)}, which the engine does not have.",
                "Run `docklab images prepare` in a terminal (or `make lab`): it pulls the course "
                "images, or builds them from Debian packages where Docker Hub cannot be reached.",
            )

    def run_script(self, path: str = "run.sh") -> None:
        """Run a script of ``docker`` commands in the notebook, one ``%docker`` command a line
        (course labels on what they create), as ``sh run.sh`` would, stopping at the first that
        fails. The script is read as the labs' grading reads it (:mod:`docklab.checks.commands`):
        no shell, only ``docker volume create``, ``docker network create`` and ``docker run``
        lines; anything else stops it before any command runs, naming the line.
        """
        from pathlib import Path

        from docklab.checks.commands import read_script

        text = Path(path).read_text()
        if "raise NotImplementedError" in text:
            raise ScriptRefused(f"{path} still holds the placeholder "
                                "`raise NotImplementedError()`.",
                                "Write your docker commands in its %%writefile cell, run "
                                "that cell, then this one.")
        script = read_script(text)
        if script.refused:
            raise ScriptRefused(f"{path} was not run: " + " ".join(script.refused),
                                "Fix those lines, run the %%writefile cell again, then this one.")
        waits = [c.where for c in script.runs if not c.has("--detach")]
        if waits:
            # In a cell, docker run without -d waits for the container to end: a server never
            # does, and the cell would never finish. (Grading runs every container detached.)
            raise ScriptRefused(f"{path} was not run: {', '.join(waits)}: docker run without -d "
                                "stays attached until the container ends, and a server or "
                                "`sleep infinity` never ends.",
                                "Add -d (run it in the background), run the %%writefile cell "
                                "again, then this one.")
        # Running it again replaces what the last run left: its named containers first, then the
        # networks they were on (`network create` of one that exists fails). Only this lesson's.
        for command in script.runs:
            if command.name:
                self._remove_stale_container(command.name)
        for command in script.commands:
            if command.kind == "network create" and command.name:
                self._remove_stale_network(command.name)
        for command in script.commands:
            print(f"$ {command.text}")
            docker_cells.run_command(command.text, self)

    def _remove_stale_network(self, name: str) -> None:
        """This lesson's leftover network called ``name``, removed (anyone else's is kept)."""
        for network in self.client.networks.list(names=[name]):
            if network.name == name and self._is_ours(network.attrs.get("Labels") or {}):
                try:
                    network.remove()
                except docker.errors.APIError:
                    pass  # still in use: `network create` then says so itself

    def cleanup(self) -> L.Removed:
        """Remove everything this learner made in this lesson (any session)."""
        return L.remove_labelled(self.client, lesson=self.id, learner=L.learner_name())

    def __enter__(self) -> "Lesson":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()


def start(lesson_id: str) -> Lesson:
    """Connect to the engine and clear what an earlier run of this lesson left behind.

    Without an engine, say so once and how to connect one; the lesson's client then retries on
    each use, and cells that need the engine stop with a short message (see ``no_engine``).
    """
    lesson = Lesson(lesson_id)
    docker_cells.register(lesson)  # %docker / %%docker cells, labelled for this lesson
    try:
        lesson.cleanup()
    except EngineError as exc:
        no_engine.announce(exc)
        lesson._client = no_engine.LateClient()
        return lesson
    # Also clean up when the kernel stops, so a cell that failed half-way leaves nothing behind.
    atexit.register(_cleanup_quietly, lesson)
    return lesson


def _cleanup_quietly(lesson: Lesson) -> None:
    try:
        lesson.cleanup()
    except Exception:  # noqa: BLE001 - the engine may be gone at exit; nothing left to do
        pass
