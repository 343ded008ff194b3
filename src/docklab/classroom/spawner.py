"""The hub's spawner: per learner, the course's JupyterLab container and a private engine.

:class:`ClassroomSpawner` is DockerSpawner with the classroom's choices: the learner image
(``docklab.classroom.image``), the classroom's network, labels and limits on the container, no
engine socket in it, ``DOCKER_HOST`` pointing at the learner's own engine
(``docklab.classroom.engine``), which is started beside it, holds the course images before the
server counts as started, and is removed with it; and the learner's own folders of the class's
nbgrader exchange (``docklab.classroom.exchange``) mounted where nbgrader looks.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import docker
from dockerspawner import DockerSpawner
from traitlets import Unicode

from docklab.classroom import engine, exchange
from docklab.classroom.image import LEARNER_IMAGE
from docklab.classroom.settings import Settings


class ClassroomSpawner(DockerSpawner):
    """JupyterLab for one learner, with a Docker Engine only that learner reaches."""

    images_tar = Unicode("", config=True,
                         help="docker save of the course images each learner's engine loads")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.classroom = Settings.from_env()
        # The name first: setting the image renders the container's name from it.
        self.name_template = f"{self.classroom.name}-{{username}}"
        self.image = LEARNER_IMAGE
        self.pull_policy = "never"  # built here; there is no registry to pull from
        self.network_name = self.classroom.network
        self.use_internal_ip = True
        self.remove = True  # a stopped server leaves nothing behind
        self.mem_limit = self.classroom.memory.upper()  # traitlets reads "1G", not "1g"
        self.cpu_limit = self.classroom.cpus
        self.notebook_dir = "/home/learner/course"
        self.volumes = {}

    def get_env(self):
        env = super().get_env()
        env["DOCKER_HOST"] = engine.docker_host(self.classroom.engine_kind)
        env["DOCKLAB_LEARNER"] = self.user.name
        # The engine is the learner's own: names need no prefix (labels.name_prefix would take
        # JUPYTERHUB_USER), so `%docker run --name web` and the lessons' `lesson.name("web")`
        # agree, as on a laptop.
        env["DOCKLAB_PREFIX"] = ""
        return env

    @property
    def learner_labels(self) -> dict[str, str]:
        return self.classroom.labels(self.user.name)

    async def create_object(self):
        # The exchange's released labs (read-only) and this learner's own inbound, cache and
        # feedback: never another learner's.
        volumes = exchange.learner_mounts(self.classroom, self.user.name)
        if self.classroom.engine_kind == "rootless":
            # The rootless engine's socket: a volume this container and the engine share.
            volume = await asyncio.to_thread(self._with_client, engine.create_socket_volume,
                                             self.container_name, self.learner_labels)
            volumes[volume] = engine.SOCKET_DIR
        self.volumes = volumes
        self.extra_create_kwargs = {"labels": self.learner_labels}
        self.extra_host_config = {
            "pids_limit": self.classroom.pids,
            "memswap_limit": self.classroom.memory,
            "log_config": {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "1"}},
        }
        return await super().create_object()

    async def start(self):
        answer = await super().start()
        await asyncio.to_thread(self._start_engine)
        return answer

    @staticmethod
    def _with_client(action, *args, **kwargs):
        """``action(client, ...)`` with a client of the host's engine (in a worker thread)."""
        client = docker.DockerClient(base_url=os.environ.get("DOCKER_HOST") or None,
                                     version="auto", timeout=120)
        try:
            return action(client, *args, **kwargs)
        finally:
            client.close()

    def _start_engine(self) -> None:
        def start_and_wait(client) -> float:
            sidecar = engine.start_private_engine(
                client, self.container_name, labels=self.learner_labels,
                images_tar=Path(self.images_tar) if self.images_tar else None,
                limits=self.classroom.engine, bind=self.classroom.engine_bind,
                kind=self.classroom.engine_kind)
            return engine.wait_until_ready(sidecar)

        waited = self._with_client(start_and_wait)
        self.log.info("%s: private engine ready in %.1f s", self.user.name, waited)

    async def stop(self, now=False):
        await asyncio.to_thread(self._with_client, engine.remove_private_engine,
                                self.container_name, socket=False)
        await super().stop(now=now)
        # The socket's volume once the container that mounted it is gone.
        await asyncio.to_thread(self._with_client, engine.remove_private_engine,
                                self.container_name)


__all__ = ["ClassroomSpawner"]
