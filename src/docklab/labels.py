"""Labels, names and cleanup: everything the course creates is labelled, and only that is removed.

Every container, network, volume and image that docklab creates carries ``org.docklab.managed=true``
plus the session (one per Python process), the learner and the lesson (a section or lab id).
``remove_labelled`` is the only code that deletes things, and it selects by label alone.

Catalogue images (busybox, debian:12, ...) carry ``org.docklab.catalogue`` instead of ``managed``:
images a learner builds FROM them inherit their labels, and a learner's own ``docker build`` must
never look like something the course may delete.
"""

from __future__ import annotations

import getpass
import os
import re
import uuid
from dataclasses import dataclass, field

import docker
import docker.errors

PREFIX = "org.docklab"
MANAGED = f"{PREFIX}.managed"
SESSION = f"{PREFIX}.session"
LEARNER = f"{PREFIX}.learner"
LESSON = f"{PREFIX}.lesson"
CATALOGUE = f"{PREFIX}.catalogue"
RECIPE = f"{PREFIX}.recipe"
LOCAL_BUILD = f"{PREFIX}.local-build"
#: What kind of resource carries the labels. Containers inherit their image's labels, so a
#: container someone runs from a course-built image would look managed: ``kind=image`` tells it apart.
KIND = f"{PREFIX}.kind"

_session = os.environ.get("DOCKLAB_SESSION") or uuid.uuid4().hex[:12]


def session_id() -> str:
    """This process's session id (DOCKLAB_SESSION overrides it, e.g. for a grading run)."""
    return _session


def learner_name() -> str:
    """Who is learning: DOCKLAB_LEARNER, else the JupyterHub user, else the login name."""
    name = os.environ.get("DOCKLAB_LEARNER") or os.environ.get("JUPYTERHUB_USER")
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "learner"
    return name


def name_prefix() -> str:
    """Prefix for names where several learners share one engine.

    DOCKLAB_PREFIX sets it; on JupyterHub it defaults to the user's name. Empty on a laptop, so the
    names in the notebooks are the names the learner sees in ``docker ps``.
    """
    prefix = os.environ.get("DOCKLAB_PREFIX")
    if prefix is None:
        prefix = os.environ.get("JUPYTERHUB_USER", "")
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", prefix)


def course_name(base: str) -> str:
    """The name a course resource gets: ``base``, with the learner's prefix where one is set."""
    prefix = name_prefix()
    return f"{prefix}-{base}" if prefix else base


def labels_for(lesson: str, *, kind: str | None = None, **extra: str) -> dict[str, str]:
    """The labels of something the course creates for ``lesson``.

    Pass ``kind="image"`` for images, ``kind="container"`` for containers (see KIND).
    """
    labels = {
        MANAGED: "true",
        SESSION: session_id(),
        LEARNER: learner_name(),
        LESSON: lesson,
    }
    if kind:
        labels[KIND] = kind
    for key, value in extra.items():
        if key.startswith(PREFIX):
            raise ValueError(f"labels under {PREFIX} are docklab's own: {key}")
        labels[key] = value
    return labels


def label_filters(*, lesson: str | None = None, learner: str | None = None,
                  session: str | None = None) -> list[str]:
    """Engine label filters (``--filter label=...``) that select managed resources."""
    filters = [f"{MANAGED}=true"]
    if lesson:
        filters.append(f"{LESSON}={lesson}")
    if learner:
        filters.append(f"{LEARNER}={learner}")
    if session:
        filters.append(f"{SESSION}={session}")
    return filters


@dataclass
class Removed:
    """What a cleanup removed, by kind (names or short ids)."""

    containers: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def total(self) -> int:
        return sum(len(v) for v in (self.containers, self.services, self.networks,
                                    self.volumes, self.images))

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in
                ("containers", "services", "networks", "volumes", "images", "errors")}


def find_labelled(client: docker.DockerClient, **scope: str | None) -> dict[str, list]:
    """The labelled resources in ``scope`` (lesson, learner, session), by kind."""
    filters = {"label": label_filters(**scope)}
    containers = client.containers.list(all=True, filters=filters, ignore_removed=True)
    found = {
        # A container whose kind label says "image" inherited it: nobody here created it.
        "containers": [c for c in containers if c.labels.get(KIND) != "image"],
        "services": [],
        "networks": client.networks.list(filters=filters),
        "volumes": client.volumes.list(filters=filters),
        "images": client.images.list(filters=filters),
    }
    if client.info().get("Swarm", {}).get("ControlAvailable"):
        try:
            found["services"] = client.services.list(filters=filters)
        except docker.errors.APIError:
            pass  # the swarm is being joined or left this very moment: no services to list
    return found


def remove_labelled(client: docker.DockerClient, *, lesson: str | None = None,
                    learner: str | None = None, session: str | None = None) -> Removed:
    """Remove the managed resources in scope, and nothing else.

    Equivalent CLI: ``docker rm -f $(docker ps -aq --filter label=org.docklab.managed=true)``, then
    the same for services, networks, volumes and images. Keeps going past an error and reports it.
    """
    removed = Removed()
    found = find_labelled(client, lesson=lesson, learner=learner, session=session)
    # Order matters: containers hold networks, volumes and images.
    for service in found["services"]:
        _try(removed, "services", service.name, service.remove)
    for container in found["containers"]:
        _try(removed, "containers", container.name,
             lambda c=container: c.remove(force=True, v=True))
    for network in found["networks"]:
        _try(removed, "networks", network.name, network.remove)
    for volume in found["volumes"]:
        _try(removed, "volumes", volume.name, lambda v=volume: v.remove(force=True))
    steps = _build_steps_left_behind(client, found["images"])
    _remove_images(client, found["images"], removed)
    _remove_build_steps(client, steps)
    return removed


def _build_steps_left_behind(client: docker.DockerClient, images: list) -> list[str]:
    """The untagged step images the legacy builder made for ``images``, children first,
    where removing an image leaves them behind: the containerd image store keeps each step as an
    image of its own, while the classic store removes untagged parents with their child."""
    if not images:
        return []
    from docklab.storage import image_store

    if image_store(client).kind != "containerd":
        return []
    steps: list[str] = []
    for image in images:
        parent = image.attrs.get("Parent") or ""
        while parent and parent not in steps:
            try:
                attrs = client.api.inspect_image(parent)
            except docker.errors.NotFound:
                break
            if [tag for tag in attrs.get("RepoTags") or [] if tag != "<none>:<none>"]:
                break  # a named image (a base such as busybox): not a step of this build
            steps.append(parent)
            parent = attrs.get("Parent") or ""
    return steps


def _remove_build_steps(client: docker.DockerClient, steps: list[str]) -> None:
    # Children before parents; a step another image still builds on is refused, and stays.
    for image_id in steps:
        try:
            client.api.remove_image(image_id, noprune=True)
        except docker.errors.APIError:
            continue


def _remove_images(client: docker.DockerClient, images: list, removed: Removed) -> None:
    # An image another labelled image was built FROM cannot go first ("image has dependent child
    # images", even with force): retry what failed after each pass, while a pass removes something.
    pending = list(images)
    while pending:
        failed = []
        for image in pending:
            label = image.tags[0] if image.tags else image.short_id
            attempt = Removed()
            _try(attempt, "images", label, lambda i=image: client.images.remove(i.id, force=True))
            removed.images += attempt.images
            if attempt.errors:
                failed.append((image, attempt.errors))
        if len(failed) == len(pending):
            removed.errors += [error for _, errors in failed for error in errors]
            return
        pending = [image for image, _ in failed]


def _try(removed: Removed, kind: str, name: str, action) -> None:
    try:
        action()
    except docker.errors.NotFound:
        return  # already gone (e.g. an --rm container, or removed with its owner)
    except docker.errors.APIError as exc:
        removed.errors.append(f"{kind[:-1]} {name}: {exc.explanation or exc}")
        return
    getattr(removed, kind).append(name)
