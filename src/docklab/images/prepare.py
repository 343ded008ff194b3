"""Make the course images present (``docklab images prepare``) and say how they are
(``docklab images list``)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import docker
import docker.errors
from tqdm import tqdm

from docklab import labels as L
from docklab.errors import ImageError
from docklab.images.build import BUILDERS, PullFailed, host_ca_files, pull, recipe_hash
from docklab.images.catalogue import CATALOGUE, CourseImage, find, in_build_order

SOURCES = ("auto", "pull", "build")


def image_source(source: str | None = None) -> str:
    """Where images come from: ``auto`` (pull, else build), ``pull`` or ``build``.

    DOCKLAB_IMAGE_SOURCE sets it when ``source`` is None.
    """
    source = (source or os.environ.get("DOCKLAB_IMAGE_SOURCE") or "auto").strip().lower()
    if source not in SOURCES:
        raise ImageError(f"Unknown image source {source!r}.",
                         "Set DOCKLAB_IMAGE_SOURCE to auto, pull or build.")
    return source


def _get(client: docker.DockerClient, ref: str):
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def _state(image: CourseImage, found, recipe: str) -> tuple[str | None, bool]:
    """(source, current) of an image found under the catalogue tag (or None)."""
    if found is None:
        return None, False
    labels = found.labels or {}
    if labels.get(L.LOCAL_BUILD) == "true" and labels.get(L.CATALOGUE) == image.name:
        return "local-build", labels.get(L.RECIPE) == recipe
    # Pulled from a registry (or put there by hand): used as it is.
    return "registry", True


def image_status(client: docker.DockerClient, *, catalogue: Iterable[CourseImage] = CATALOGUE,
                 ca_dir: Path | str | None = None) -> list[dict]:
    """How each course image is on this engine.

    Each entry: ``name``, ``present``, ``source`` ("registry", "local-build" or None),
    ``current`` (present, and a local build of the current recipe), ``id``, ``size`` (bytes),
    ``description``, ``on_demand`` (prepared only when named). Equivalent CLI: ``docker image ls`` plus ``docker image inspect``.
    """
    ca_files = host_ca_files(ca_dir)
    catalogue = tuple(catalogue)
    status = []
    for image in catalogue:
        found = _get(client, image.ref)
        source, current = _state(image, found, recipe_hash(image, ca_files, catalogue))
        status.append({
            "name": image.name,
            "present": found is not None,
            "source": source,
            "current": current,
            "id": found.id if found else None,
            "size": found.attrs.get("Size") if found else None,
            "description": image.description,
            "on_demand": image.on_demand,
        })
    return status


def default_names(catalogue: Iterable[CourseImage] = CATALOGUE) -> list[str]:
    """What a plain ``docklab images prepare`` makes present: all but the on-demand images."""
    return [image.name for image in catalogue if not image.on_demand]


class _Progress:
    """Prints what prepare does: a line per image and per build step, and a bar over images."""

    def __init__(self, progress, total: int):
        self._callback = progress if callable(progress) else None
        self._bar = None
        if progress is True:
            self._bar = tqdm(total=total, desc="course images", unit="image", file=sys.stderr,
                             leave=False, disable=None)

    def say(self, message: str) -> None:
        if self._callback:
            self._callback(message)
        elif self._bar is not None:
            self._bar.write(message, file=sys.stderr)

    def done_one(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextlib.contextmanager
def _host_lock(say: Callable[[str], None]):
    """One prepare at a time on this host: two at once would debootstrap twice."""
    path = Path(tempfile.gettempdir()) / f"docklab-images-{os.getuid()}.lock"
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("waiting for another `docklab images prepare` on this host to finish ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare(client: docker.DockerClient, names: Iterable[str] | None = None, *,
            catalogue: Iterable[CourseImage] = CATALOGUE, source: str | None = None,
            progress: bool | Callable[[str], None] = True, no_cache: bool = False,
            ca_dir: Path | str | None = None) -> list[dict]:
    """Make each course image in ``names`` present, with what it builds FROM. When ``names`` is
    None: every image but the on-demand ones (the engines, see ``default_names``).

    An image already there is left alone when it was pulled, or locally built from the current
    recipe. Otherwise it is pulled where a registry answers (the first unreachable registry stops
    pulls for the rest of the run), else built from Debian packages. ``source`` (or
    DOCKLAB_IMAGE_SOURCE) is ``auto``, ``pull`` (never build) or ``build`` (never pull).
    ``progress``: True prints to stderr, False prints nothing, a callable gets each line.

    Returns one entry per image: ``name``, ``action`` ("present", "pulled" or "built"), ``id``,
    ``seconds``. Equivalent CLI: ``docker pull IMAGE`` or ``docker build -t IMAGE RECIPE``.
    """
    catalogue = tuple(catalogue)
    source = image_source(source)
    names = list(names) if names else None
    for name in names or ():
        find(name, catalogue)  # unknown names fail before anything is done
    plan = in_build_order(catalogue, names or default_names(catalogue))
    ca_files = host_ca_files(ca_dir)
    report = _Progress(progress, len(plan))
    results = []
    pulls_work = source != "build"
    try:
        with _host_lock(report.say):
            for image in plan:
                started = time.monotonic()
                recipe = recipe_hash(image, ca_files, catalogue)
                found = _get(client, image.ref)
                origin, current = _state(image, found, recipe)
                if current:
                    report.say(f"{image.name}: already present ({origin}, {found.short_id})")
                    results.append(_result(image, "present", found.id, started))
                    report.done_one()
                    continue
                action, image_id = None, None
                if pulls_work and image.pullable:
                    report.say(f"{image.name}: pulling {image.ref}")
                    try:
                        image_id, action = pull(client, image, report.say), "pulled"
                    except PullFailed as exc:
                        if source == "pull":
                            raise ImageError(
                                f"Cannot pull {image.ref}: {exc}",
                                "Check the engine's network and registry access, or set "
                                "DOCKLAB_IMAGE_SOURCE=auto to build the image locally.") from exc
                        if exc.unreachable:
                            pulls_work = False
                            report.say(f"{image.name}: no registry answers ({_short(exc)}); "
                                       "building the course images locally")
                        else:
                            report.say(f"{image.name}: pull failed ({_short(exc)}); building")
                if action is None:
                    if source == "pull":
                        raise ImageError(f"{image.name} cannot be pulled and source is 'pull'.",
                                         "Set DOCKLAB_IMAGE_SOURCE=auto to build it locally.")
                    why = "recipe changed" if origin == "local-build" else "not present"
                    report.say(f"{image.name}: building locally ({why}, recipe {recipe})")
                    image_id = BUILDERS[image.builder](client, image, recipe, ca_files,
                                                       report.say, no_cache=no_cache)
                    action = "built"
                    _drop_replaced(client, found, image_id)
                result = _result(image, action, image_id, started)
                report.say(f"{image.name}: {action} in {result['seconds']:.1f} s")
                results.append(result)
                report.done_one()
    finally:
        report.close()
    return results


def _result(image: CourseImage, action: str, image_id: str, started: float) -> dict:
    return {"name": image.name, "action": action, "id": image_id,
            "seconds": round(time.monotonic() - started, 2)}


def _short(exc: Exception, limit: int = 120) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _drop_replaced(client: docker.DockerClient, old, new_id: str) -> None:
    """Remove the earlier local build a rebuild replaced, when nothing uses it any more."""
    if old is None or old.id == new_id or (old.labels or {}).get(L.LOCAL_BUILD) != "true":
        return
    with contextlib.suppress(docker.errors.APIError):
        old.reload()
        if not old.tags:
            # Fails (and is left) while containers or images built FROM it still use it.
            client.images.remove(old.id)
