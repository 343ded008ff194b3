"""A warm start for every sealed engine of a lab: its images, and its reference build's cache.

A fresh sealed engine has no layer cache, so each graded build would run ``apt-get install`` (and
pay ~1 s per step in a rootless engine), where the same build on the learner's engine, or under
nbgrader's own autograde, hits the cache. So once per lab (and per version of the course images
and of the lab's source), the grader starts a sealed engine, loads the lab's course images,
builds the lab's **reference solution** (from ``grader/source``, the instructor's copy: never
learner work) and saves that engine's data root as a tar. Each submission's engine then starts
from its own copy of that tar: the images are there at once, and the steps a submission shares
with the reference solution come from the cache, exactly as ``docker build`` reuses them. A
learner's build can change only its own copy, which is thrown away with its engine.

Seeds live in ``~/.cache/docklab/sealed/seed-<lab>-<key>.tar``; the key covers the sealed
engine's image, the course images' IDs, the reference answer and the builder (BuildKit's cache is
not the legacy builder's), so any change makes a new seed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path

import nbformat

from docklab.checks import course_source
from docklab.checks.answer import open_answer
from docklab.checks.sandbox import Limits, Sandbox, preferred_builder
from docklab.grading.answers import answer_cells, write_answer
from docklab.grading.sealed import SEALED_IMAGE, SealedEngine, image_cache_dir, image_ids

_MARKERS = {"### BEGIN SOLUTION", "### END SOLUTION"}


def reference_cells(lab_id: str) -> dict[str, str]:
    """The answer cells of the lab's reference solution: the source's, without nbgrader's marks."""
    source = json.loads(nbformat.writes(nbformat.read(
        course_source(lab_id) / f"{lab_id}.ipynb", as_version=4)))
    return {grade_id: "\n".join(line for line in text.splitlines()
                                if line.strip() not in _MARKERS) + "\n"
            for grade_id, text in answer_cells(source, lab_id).items()}


def lab_seed(lab, host) -> Path:
    """The seed of ``lab``'s sealed engines, made now if there is none for this course."""
    cells = reference_cells(lab.id)
    key = hashlib.sha256(json.dumps([
        lab.id, host.images.get(SEALED_IMAGE).id, sorted(image_ids(host, lab.images).items()),
        sorted(cells.items()), sorted(lab.network),
        preferred_builder()]).encode()).hexdigest()[:16]
    cache = image_cache_dir()
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = cache / f"seed-{lab.id}-{key}.tar"
    if path.is_file():
        return path
    with open(cache / f"seed-{lab.id}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two graders of one lab make it once
        if not path.is_file():
            _make_seed(lab, host, cells, path)
            for old in cache.glob(f"seed-{lab.id}-*.tar"):
                if old != path:
                    with contextlib.suppress(OSError):
                        old.unlink()
    return path


def _make_seed(lab, host, cells: dict[str, str], path: Path) -> None:
    with SealedEngine(host, images=lab.images, allow_hosts=lab.network,
                      lesson=f"grade-{lab.id}") as sealed:
        if "dockerfile" in cells:
            with tempfile.TemporaryDirectory(prefix=f"docklab-seed-{lab.id}-") as tmp:
                notebook = write_answer(lab.id, cells, Path(tmp))
                limits = Limits.from_env()
                lab_files = {name: lab.lab_file(name) for name in lab.files}
                with open_answer(notebook, lab_files, limits=limits) as prepared:
                    sandbox = Sandbox(sealed.client, f"grade-{lab.id}", limits,
                                      references=sealed.references,
                                      build_args=sealed.build_args, disposable=True)
                    sandbox.build(prepared.tar())
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        sealed.save_seed(partial)
        os.replace(partial, path)
