"""nbgrader's exchange for a classroom: release, submit, collect and feedback with no shared home.

The exchange is a folder of the classroom's state on the host (kept by ``down``, removed by
``down --purge``), and each learner's container mounts only its own part of it:

    host: STATE/exchange/                       learner NAME's container: /srv/nbgrader/...
      outbound/<lab>/        released labs        exchange/docklab/outbound   read-only (everyone)
      learners/NAME/inbound/ NAME's submissions   exchange/docklab/inbound    read-write
      learners/NAME/feedback/ NAME's feedback     exchange/docklab/feedback   read-only
      learners/NAME/cache/   nbgrader's own copy  cache                       read-write
                             of what NAME handed in (``fetch_feedback`` reads it)

``classroom/learner/nbgrader_config.py`` points nbgrader there (``Exchange.root``, ``.cache``, the
course id, the learner's name as student id), so ``nbgrader fetch_assignment``, ``submit`` and
``fetch_feedback`` and the Assignments tab work in the learner's JupyterLab unchanged.

Why a folder per learner: every learner's container runs as uid 1000, so nbgrader's own guard
(one inbound for the class, mode 0733, each student's files unreadable by other Unix users)
separates nobody. The mounts do: a learner's container has no path to another learner's inbound,
feedback or cache, and the shared outbound is read-only in it.

The instructor's side runs on the host and treats the inbound as data a learner wrote:
:func:`collect` takes a learner's name from whose folder a submission is in (never from the name
the folder gives itself), copies regular files only (no symlink, fifo or device is followed or
opened), within bounds, into the course's ``submitted/``.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from docklab.errors import DocklabError

#: The course the learner image's nbgrader configuration names (grader/nbgrader_config.py's id).
COURSE_ID = "docklab"
#: The learner's uid in ``docklab/classroom-learner`` (its Dockerfile): owner of what it writes.
LEARNER_UID = 1000
#: Where nbgrader looks in a learner's container (classroom/learner/nbgrader_config.py).
CONTAINER_ROOT = "/srv/nbgrader/exchange"
CONTAINER_CACHE = "/srv/nbgrader/cache"

#: A learner's name as a folder: JupyterHub's names, without '+' (nbgrader's separator in
#: submission names) and without anything a path could make use of.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
#: What one submission may hold: a lab's notebook and the few files it hands out or writes.
MAX_FILES = 200
MAX_BYTES = 50 * 2**20


def exchange_path(settings) -> Path:
    """The classroom's exchange on the host (``STATE/exchange``)."""
    return settings.state_path / "exchange"


def learner_name(name: str) -> str:
    """``name`` if it can name a learner's folder; DocklabError otherwise."""
    if not _NAME.fullmatch(name):
        raise DocklabError(f"{name!r} cannot name a learner's folder in the exchange.",
                           "Learners' names are letters, digits and . _ @ - (no '+').")
    return name


def learner_mounts(settings, name: str) -> dict[str, dict[str, str]]:
    """The learner ``name``'s folders of the exchange (made if missing, the learner's own ones
    writable by the learner's uid), as DockerSpawner's ``volumes``: {host path: {bind, mode}}."""
    root = exchange_path(settings)
    outbound = root / "outbound"
    outbound.mkdir(parents=True, exist_ok=True)
    mine = root / "learners" / learner_name(name)
    folders = {"inbound": mine / "inbound", "cache": mine / "cache", "feedback": mine / "feedback"}
    for kind, folder in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        if kind != "feedback":
            _give_to_learner(folder)
    course = f"{CONTAINER_ROOT}/{COURSE_ID}"
    return {str(outbound): {"bind": f"{course}/outbound", "mode": "ro"},
            str(folders["inbound"]): {"bind": f"{course}/inbound", "mode": "rw"},
            str(folders["feedback"]): {"bind": f"{course}/feedback", "mode": "ro"},
            str(folders["cache"]): {"bind": CONTAINER_CACHE, "mode": "rw"}}


def _give_to_learner(folder: Path) -> None:
    """The learner's uid owns it (the hub runs as root), or anyone may write it (the hub runs as
    an instructor's user: the state folder above it, mode 0700, keeps other host users out)."""
    try:
        os.chown(folder, LEARNER_UID, LEARNER_UID)
        folder.chmod(0o700)
    except PermissionError:
        folder.chmod(0o777)


def learners(settings) -> list[str]:
    """The learners who have a folder in the exchange (who ever started a server)."""
    folder = exchange_path(settings) / "learners"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and _NAME.fullmatch(p.name))


def _course_id(api) -> str:
    if api.coursedir.course_id != COURSE_ID:
        raise DocklabError(f"The course's id is {api.coursedir.course_id!r}; the learners' "
                           f"JupyterLab looks for {COURSE_ID!r}.",
                           "Use the course's own grader/ (or set its course_id to docklab).")
    return COURSE_ID


# -- release --------------------------------------------------------------------------------------

def release(settings, course: Path, lab: str) -> Path:
    """``nbgrader generate_assignment LAB`` in ``course`` (the student version, and the lab in the
    gradebook), then that version into the exchange's outbound, replacing an earlier release.
    Returns the released folder."""
    from docklab.grader import ignored, nbgrader_api  # nbformat and nbgrader: only when asked

    api = nbgrader_api(course)
    _course_id(api)
    generated = api.generate_assignment(lab, force=True, create=True)
    if not generated.get("success"):
        raise DocklabError(f"nbgrader could not generate the lab {lab}.",
                           (generated.get("error") or generated.get("log") or "")[-2000:])
    outbound = exchange_path(settings) / "outbound"
    outbound.mkdir(parents=True, exist_ok=True)
    target, staging = outbound / lab, outbound / f".{lab}.new"
    shutil.rmtree(staging, ignore_errors=True)
    ignore = list(api.coursedir.ignore)
    released = Path(api.coursedir.root) / api.coursedir.release_directory / lab
    shutil.copytree(released, staging,
                    ignore=lambda _, names: [n for n in names if ignored(n, ignore)])
    for path in (staging, *staging.rglob("*")):  # readable by the learners' uid, nobody writes
        path.chmod(0o755 if path.is_dir() else 0o644)
    # Moved into place whole: a learner fetching meanwhile never gets a half-copied release.
    old = outbound / f".{lab}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


# -- collect --------------------------------------------------------------------------------------

@dataclass
class Collected:
    """What :func:`collect` did with one learner's inbound."""

    learner: str
    submission: str = ""  #: the folder taken (name+lab+timestamp+random), "" when none
    timestamp: str = ""
    files: list[str] = field(default_factory=list)
    #: What was left in the inbound, and why (another name's submission, a symlink, a bound).
    skipped: list[str] = field(default_factory=list)


def collect(settings, course: Path, lab: str, *, names: list[str] | None = None
            ) -> list[Collected]:
    """Each learner's latest submission of ``lab`` from their own inbound into
    ``course/submitted/NAME/LAB/`` (replaced), as ``nbgrader collect`` would, reading the inbound
    as data (see the module's docstring)."""
    from docklab.grader import nbgrader_api

    api = nbgrader_api(course)
    _course_id(api)
    ignore = list(api.coursedir.ignore)
    results = []
    for name in names or learners(settings):
        inbound = exchange_path(settings) / "learners" / learner_name(name) / "inbound"
        result = Collected(name)
        latest = _latest_submission(inbound, name, lab, result)
        if latest is not None:
            folder, timestamp = latest
            result.submission, result.timestamp = folder, timestamp
            target = course / "submitted" / name / lab
            staging = target.with_name(f".{lab}.collecting")
            shutil.rmtree(staging, ignore_errors=True)
            _copy_regular_files(inbound, folder, staging, ignore, result)
            # nbgrader reads the hand-in time from timestamp.txt: the one the folder's name gave
            # (what chose this submission), not whatever the learner left in the file.
            (staging / "timestamp.txt").write_text(timestamp)
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        results.append(result)
    return results


def _latest_submission(inbound: Path, name: str, lab: str, result: Collected
                       ) -> tuple[str, str] | None:
    """The newest ``NAME+LAB+TIMESTAMP[+RANDOM]`` folder in ``inbound`` (what nbgrader's submit
    makes); folders naming someone else are refused, whatever they claim."""
    from nbgrader.utils import parse_utc

    found = []
    for entry in os.scandir(inbound):
        parts = entry.name.rsplit("+", 3)
        if len(parts) < 3 or parts[1] != lab:
            continue
        if parts[0] != name:
            result.skipped.append(f"{entry.name}: in {name}'s inbound, names {parts[0]!r}")
            continue
        if not entry.is_dir(follow_symlinks=False):
            result.skipped.append(f"{entry.name}: not a folder")
            continue
        try:
            found.append((parse_utc(parts[2]), entry.name, parts[2]))
        except (ValueError, OverflowError):
            result.skipped.append(f"{entry.name}: its timestamp does not read as one")
    if not found:
        return None
    _, folder, timestamp = max(found)
    return folder, timestamp


def _copy_regular_files(inbound: Path, folder: str, target: Path, ignore: list[str],
                        result: Collected) -> None:
    """Copy ``inbound/folder`` to ``target``: regular files only, opened without following a
    symlink at any step (the learner's container may change the folder while this reads it), at
    most :data:`MAX_FILES` files and :data:`MAX_BYTES` bytes."""
    from docklab.grader import ignored

    total = 0
    target.mkdir(parents=True)
    inbound_fd = os.open(inbound, os.O_RDONLY | os.O_DIRECTORY)
    try:
        walk = os.fwalk(folder, dir_fd=inbound_fd, follow_symlinks=False)
        for dirpath, dirnames, filenames, dir_fd in walk:
            rel = Path(dirpath).relative_to(folder)
            dirnames[:] = [d for d in dirnames if not ignored(d, ignore)]
            for filename in filenames:
                shown = str(rel / filename)
                if ignored(filename, ignore):
                    continue
                if len(result.files) >= MAX_FILES:
                    result.skipped.append(f"{shown}: more than {MAX_FILES} files")
                    continue
                data, why = _read_regular(filename, dir_fd, MAX_BYTES - total)
                if data is None:
                    result.skipped.append(f"{shown}: {why}")
                    continue
                total += len(data)
                (target / rel).mkdir(parents=True, exist_ok=True)
                (target / rel / filename).write_bytes(data)
                result.files.append(shown)
    finally:
        os.close(inbound_fd)


def _read_regular(name: str, dir_fd: int, budget: int) -> tuple[bytes | None, str]:
    """The file's bytes when it is a regular file within ``budget``; else None and why."""
    try:
        # O_NOFOLLOW: a symlink is refused, not followed to the host's files; O_NONBLOCK: a fifo
        # does not hang the instructor's command.
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as exc:
        return None, "a symlink" if exc.errno == errno.ELOOP else f"unreadable ({exc.strerror})"
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, "not a regular file"
        data = handle.read(budget + 1)
    if len(data) > budget:
        return None, f"over the submission's {MAX_BYTES // 2**20} MiB"
    return data, ""


# -- feedback -------------------------------------------------------------------------------------

def return_feedback(settings, course: Path, lab: str) -> dict[str, list[str]]:
    """``nbgrader generate_feedback LAB``, then each learner's feedback into their own feedback
    folder, named as ``nbgrader fetch_feedback`` looks for it (a hash of the submission's secret
    and the notebook's name). Returns {learner: feedback files returned}."""
    from nbgrader.utils import notebook_hash

    from docklab.grader import nbgrader_api

    api = nbgrader_api(course)
    _course_id(api)
    generated = api.generate_feedback(lab)
    if not generated.get("success"):
        raise DocklabError(f"nbgrader could not generate the feedback of {lab}.",
                           (generated.get("error") or generated.get("log") or "")[-2000:])
    returned: dict[str, list[str]] = {}
    for name in learners(settings):
        pages = sorted((course / "feedback" / name / lab).glob("*.html"))
        secret_file = course / "submitted" / name / lab / "submission_secret.txt"
        if not pages or not secret_file.is_file():
            continue
        secret = secret_file.read_text(errors="replace")
        folder = exchange_path(settings) / "learners" / name / "feedback"
        returned[name] = []
        for page in pages:
            # An md5 hex digest: whatever the learner's secret holds, a plain file name.
            target = folder / f"{notebook_hash(secret=secret, notebook_id=page.stem)}.html"
            shutil.copyfile(page, target)
            target.chmod(0o644)
            returned[name].append(target.name)
    return returned
