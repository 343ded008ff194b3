"""Checks for the volumes lab: the notes app keeps its data when its container is replaced.

The lab hands out a tiny notes app (``notes.sh``, built by ``app.Dockerfile`` FROM busybox, which
declares ``VOLUME /data``). It keeps its notes in ``/data/notes/`` and counts its starts in
``/data/starts``. The learner writes the **run configuration** for it, the keyword arguments of
the SDK's ``containers.run`` (what ``docker run`` options would say):

    RUN = {"image": "notes", "name": "notes", "volumes": ["notes-data:/data"]}

``volumes`` takes ``docker run -v`` strings (``name:/path[:ro]``; a ``/host/path`` or ``./path``
source is a bind mount, a lone ``/path`` an anonymous volume) or the SDK's dict form
(``{"notes-data": {"bind": "/data", "mode": "rw"}}``); ``mounts`` takes ``--mount`` strings
(``type=volume,source=notes-data,target=/data``) or dicts with type, source and target.

**The answer path** (``docklab check volumes <path>``) is a folder holding ``run.json`` (that dict
as JSON; the notebook's ``volumes.record_run(RUN)`` cell writes it), or the lab notebook, whose
``RUN = {...}`` cell is read as a literal (never executed).

How it is judged, on the engine: the app's image is built from the lab's files; every named
volume of the configuration is created under a name of the grading run's own (labelled, so the
learner's real volumes are never touched); a container is run with the configuration's mounts, a
note is added with ``docker exec``, the container is stopped and removed with ``docker rm -v``;
a second container is run with the same configuration and asked for its notes; its mounts are
read from ``docker inspect``; when both are gone, a helper container looks into the volume
itself. Bind mounts are never mounted while grading: a configuration is untrusted, and a host
folder is not what this lab asks for. The graded tests' hidden test (:func:`all_data_kept`) is
judged from the start count the second container printed.

**Graded on a sealed engine** (:mod:`docklab.grading`): the judge talks only to the engine it is
given, so when a submission is graded, the app is built, its volumes created and its containers
run in the submission's own rootless engine, never on the grading host; the configuration itself
is only ever read as data. busybox is the one course image it uses: the app's recipe and the
helper that looks into the volume use it by the ID the grader loaded (``FROM <id>``). A rootless
engine on a cgroup v1 host has no cgroup controllers of its own (``CgroupDriver: none``), so the
memory, pids and CPU limits given to each container are not enforced there: the sealed engine as
a whole is bounded instead. Named volumes, ``docker rm -v`` and the image's ``VOLUME`` behave there
as on any engine (the volumes live on the sealed engine's own data root, a tmpfs).

    from docklab.checks import volumes
    volumes.grade(".")

Equivalent CLI: ``docklab check volumes <folder or notebook> [--json]``.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker.errors
import requests.exceptions
from docker.types import Mount

from docklab.checks.base import Criterion, Lab, Verdict, failed, not_judged, passed, unjudged
from docklab.checks.recorded import notebook_literals
from docklab.checks.sandbox import Sandbox
from docklab.errors import ImageError

BASE_IMAGE = "busybox"
APP_FILES = ("notes.sh", "app.Dockerfile")
RUN_FILE = "run.json"
IMAGE_NAMES = ("notes", "notes:latest")
DATA = "/data"
NOTES = "/data/notes/notes.txt"
READY = "ready:"
#: How long the app may take to say it is ready: generous, since a grading host may be busy (a
#: right answer is ready in under a second; only one that never gets ready waits this long).
READY_WITHIN_SECONDS = 30.0
KEYS = {"image", "name", "volumes", "mounts", "detach"}
LESSON = "03-volumes"
TOPICS = {
    "config_valid": "docker run -v and --mount",
    "named_volume": "named volumes (section 2), anonymous volumes (section 5)",
    "data_survives": "named volumes: data that outlives a container",
    "volume_outlives_containers": "named volumes, and what docker rm -v removes",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")
_STARTS = re.compile(r"started (\d+) time")
_FROM_BASE = re.compile(rf"^FROM\s+{BASE_IMAGE}(?::latest)?\s*$", re.MULTILINE | re.IGNORECASE)

CRITERIA = [
    Criterion("config_valid", 1, "RUN is a run configuration of the lab's notes image",
              needs_image=False),
    Criterion("named_volume", 2, f"the app's {DATA} is a named volume (not anonymous, not a bind "
              "mount)"),
    Criterion("data_survives", 3, "a note added in one container is there in the next one"),
    Criterion("volume_outlives_containers", 1, "the notes are still in the volume after "
              "docker rm -v of every container"),
]


# -- the configuration --------------------------------------------------------------------------

@dataclass
class MountSpec:
    kind: str                # volume, anonymous, bind, tmpfs
    source: str
    target: str
    read_only: bool = False
    raw: str = ""


@dataclass
class RunSpec:
    image: str = ""
    mounts: list[MountSpec] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def record_run(run: dict, folder: str | os.PathLike = ".") -> Path:
    """Write the run configuration next to the notebook (``run.json``), where grading reads it."""
    path = Path(folder) / RUN_FILE
    path.write_text(json.dumps(run, indent=2) + "\n")
    return path


def recorded_run(answer) -> tuple[dict | None, str]:
    """The learner's configuration (a dict), or (None, why not)."""
    if answer.kind == "notebook":
        values, why = notebook_literals(Path(answer.source), ("RUN",))
        return (values.get("RUN"), why) if values else (None, why)
    data = answer.files.get(RUN_FILE)
    if data is None:
        return None, (f"There is no {RUN_FILE} in {answer.source}: run the notebook's cell "
                      "volumes.record_run(RUN), which writes it.")
    try:
        return json.loads(data.decode("utf-8", "replace")), ""
    except ValueError:
        return None, f"{RUN_FILE} is not valid JSON."


def _target(path) -> str:
    return os.path.normpath(str(path)) if str(path).startswith("/") else ""


def _from_v(text: str) -> MountSpec:
    parts = text.split(":")
    if len(parts) == 1:
        return MountSpec("anonymous", "", _target(parts[0]), raw=text)
    source, target, mode = parts[0], parts[1], (parts[2] if len(parts) > 2 else "rw")
    read_only = "ro" in mode.split(",")
    if source.startswith(("/", ".", "~")) or "/" in source:
        return MountSpec("bind", source, _target(target), read_only, text)
    return MountSpec("volume", source, _target(target), read_only, text)


def _from_mount(item) -> MountSpec:
    if isinstance(item, str):
        fields = dict(part.split("=", 1) if "=" in part else (part, "true")
                      for part in item.split(",") if part)
    elif isinstance(item, dict):
        fields = {str(k).lower(): v for k, v in item.items()}
    else:
        return MountSpec("unknown", "", "", raw=repr(item))
    kind = str(fields.get("type", "volume")).lower()
    source = str(fields.get("source") or fields.get("src") or "")
    target = _target(fields.get("target") or fields.get("destination") or fields.get("dst") or "")
    read_only = str(fields.get("read_only", fields.get("readonly", fields.get("ro", "false")))
                    ).lower() in ("true", "1")
    if kind == "volume" and not source:
        kind = "anonymous"
    return MountSpec(kind, source, target, read_only, repr(item))


def parse_run(run) -> RunSpec:
    """The configuration's image and mounts, with what is wrong with it."""
    spec = RunSpec()
    if not isinstance(run, dict):
        spec.problems.append("RUN should be a dict of docker run settings, not "
                             f"{type(run).__name__}.")
        return spec
    unknown = sorted(set(map(str, run)) - KEYS)
    if unknown:
        spec.problems.append(f"RUN has keys this lab does not use: {', '.join(unknown)} (it "
                             f"takes {', '.join(sorted(KEYS))}); grading leaves them out.")
    spec.image = str(run.get("image") or "")
    volumes = run.get("volumes") or []
    if isinstance(volumes, str):
        volumes = [volumes]
    if isinstance(volumes, dict):
        for source, bind in volumes.items():
            bind = bind if isinstance(bind, dict) else {"bind": bind}
            mode = str(bind.get("mode", "rw"))
            spec.mounts.append(_from_v(f"{source}:{bind.get('bind', '')}:{mode}"))
    elif isinstance(volumes, list):
        spec.mounts += [_from_v(str(v)) for v in volumes]
    else:
        spec.problems.append("volumes should be a list of docker run -v strings.")
    mounts = run.get("mounts") or []
    spec.mounts += [_from_mount(m) for m in (mounts if isinstance(mounts, list) else [mounts])]
    for mount in spec.mounts:
        if mount.kind == "unknown" or not mount.target:
            spec.problems.append(f"{mount.raw} does not say where to mount (an absolute path "
                                 "inside the container).")
        elif mount.kind not in ("volume", "anonymous", "bind", "tmpfs"):
            spec.problems.append(f"{mount.raw}: unknown mount type {mount.kind!r}.")
        elif mount.kind == "volume" and not _NAME.match(mount.source):
            spec.problems.append(f"{mount.source!r} is not a valid volume name (letters, digits, "
                                 "_ . -).")
    spec.mounts = [m for m in spec.mounts if m.target and m.kind in
                   ("volume", "anonymous", "bind", "tmpfs")
                   and (m.kind != "volume" or _NAME.match(m.source))]
    return spec


def _data_mount(mounts):
    """The mount that holds the notes: the deepest one at or above /data/notes."""
    best = None
    for mount in mounts:
        target = mount.target if isinstance(mount, MountSpec) else mount.get("Destination", "")
        if NOTES.startswith(target.rstrip("/") + "/") and (
                best is None or len(target) > len(best[0])):
            best = (target, mount)
    return best[1] if best else None


# -- running it ---------------------------------------------------------------------------------

def _app_context(lab: Lab, base_id: str) -> io.BytesIO:
    """The notes app's recipe as a build context: app.Dockerfile as Dockerfile (FROM the course's
    busybox by its ID), notes.sh."""
    buffer = io.BytesIO()
    with tarfile.open(mode="w", fileobj=buffer) as tar:
        for name, target in (("app.Dockerfile", "Dockerfile"), ("notes.sh", "notes.sh")):
            data = lab.lab_file(name).read_bytes()
            if name == "app.Dockerfile":
                data = _FROM_BASE.sub(f"FROM {base_id}", data.decode()).encode()
            info = tarfile.TarInfo(target)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


@dataclass
class Generation:
    """One container of the configuration: what it said and how its storage was mounted."""

    error: str = ""
    logs: str = ""
    ready: bool = False
    exit_code: int | None = None
    starts: int | None = None
    notes: str = ""
    added: bool = False
    data_mount: dict | None = None
    mounts: list = field(default_factory=list)


class Runner:
    """Runs containers of one configuration in a sandbox, its named volumes renamed for grading."""

    def __init__(self, sandbox: Sandbox, image_id: str, spec: RunSpec, helper_image: str):
        self.sandbox = sandbox
        self.image_id = image_id
        self.spec = spec
        self.helper_image = helper_image    # the course's busybox, by ID
        self.volumes: dict[str, str] = {}   # the configuration's name → the graded volume

    def create_volumes(self) -> None:
        for mount in self.spec.mounts:
            if mount.kind == "volume" and mount.source not in self.volumes:
                name = f"docklab-grade-{self.sandbox.run_id}-{mount.source}"[:120]
                self.sandbox.client.volumes.create(name=name,
                                                   labels=self.sandbox.labels("volume"))
                self.volumes[mount.source] = name

    def mounts(self) -> list[Mount]:
        result = []
        for m in self.spec.mounts:
            if m.kind == "volume":
                result.append(Mount(m.target, self.volumes[m.source], type="volume",
                                    read_only=m.read_only))
            elif m.kind == "anonymous":
                result.append(Mount(m.target, None, type="volume", read_only=m.read_only))
            elif m.kind == "tmpfs":
                result.append(Mount(m.target, None, type="tmpfs"))
            # bind mounts are never mounted while grading
        return result

    def generation(self, note: str | None) -> Generation:
        """``docker run -d`` the configuration, add ``note`` or list the notes, then
        ``docker stop`` and ``docker rm -v``."""
        seen = Generation()
        client = self.sandbox.client
        try:
            app = client.containers.run(
                self.image_id, detach=True, labels=self.sandbox.labels("container"),
                network_mode="none", mounts=self.mounts(),
                **self.sandbox.container_limits())
        except docker.errors.APIError as exc:
            seen.error = exc.explanation or str(exc)
            return seen
        try:
            started = time.monotonic()
            while time.monotonic() - started < READY_WITHIN_SECONDS:
                app.reload()
                seen.logs = _logs(app)
                if READY in seen.logs or app.status != "running":
                    break
                time.sleep(0.2)
            seen.ready = READY in seen.logs and app.status == "running"
            match = _STARTS.search(seen.logs)
            seen.starts = int(match.group(1)) if match else None
            seen.mounts = app.attrs.get("Mounts") or []
            seen.data_mount = _data_mount(seen.mounts)
            if seen.ready:
                if note is not None:
                    result = app.exec_run(["sh", "/app/notes.sh", "add", note])
                    seen.added = result.exit_code == 0
                listed = app.exec_run(["sh", "/app/notes.sh", "list"])
                seen.notes = listed.output[-16384:].decode("utf-8", "replace")
                app.stop(timeout=3)
            app.reload()
            seen.exit_code = app.attrs.get("State", {}).get("ExitCode")
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            seen.error = getattr(exc, "explanation", None) or str(exc)
        finally:
            self.sandbox.remove_container(app.id)   # docker rm -f -v
        return seen

    def look_into(self, mount: dict) -> str | None:
        """The notes in the volume a container had on ``mount``, read by a helper container."""
        name = mount.get("Name")
        try:
            self.sandbox.client.volumes.get(name)
        except docker.errors.NotFound:
            return None
        target = mount.get("Destination", DATA)
        try:
            helper = self.sandbox.client.containers.run(
                self.helper_image, ["cat", NOTES], detach=True, labels=self.sandbox.labels("container"),
                network_mode="none", mounts=[Mount(target, name, type="volume", read_only=True)],
                **self.sandbox.container_limits())
        except docker.errors.APIError:
            return None
        try:
            helper.wait(timeout=15)
            return _logs(helper)
        except (requests.exceptions.RequestException, docker.errors.APIError):
            return None
        finally:
            self.sandbox.remove_container(helper.id)


def _logs(container) -> str:
    try:
        return container.logs(tail=100)[-16384:].decode("utf-8", "replace")
    except (docker.errors.APIError, requests.exceptions.RequestException):
        return ""


# -- the verdicts -------------------------------------------------------------------------------

def _describe(mount: MountSpec | None) -> str:
    if mount is None:
        return f"nothing of yours is mounted on {DATA}"
    return {"anonymous": f"{mount.raw} is an anonymous volume (no name before the colon)",
            "bind": f"{mount.raw} is a bind mount of a folder of the engine's host",
            "tmpfs": f"{mount.raw} is a tmpfs mount, kept in memory only",
            "volume": f"{mount.raw} mounts the named volume {mount.source}"}[mount.kind]


def _verdict_named(spec: RunSpec, first: Generation) -> Verdict:
    wanted = _data_mount(spec.mounts)
    if wanted is None:
        return failed(f"Nothing of the configuration is mounted on {DATA}, where the app keeps "
                      "its data: the image's VOLUME /data then gives every container a fresh "
                      "anonymous volume, and a new container starts empty. Mount a named volume "
                      f"there: \"volumes\": [\"notes-data:{DATA}\"].")
    if wanted.kind == "bind":
        return failed(f"{_describe(wanted)}: that keeps data, but ties it to one host's folder "
                      "(and its owner and permissions); this lab asks for a named volume, which "
                      f"the engine manages: \"notes-data:{DATA}\". Grading does not mount host "
                      "folders.")
    if wanted.kind != "volume":
        return failed(f"{_describe(wanted)}: the engine gives it a random 64-digit name, so the "
                      f"next container cannot find it. Name it: \"notes-data:{DATA}\".")
    mount = first.data_mount
    if first.error or mount is None:
        return unjudged(f"the container did not start ({first.error or 'no mounts'}).")
    name = mount.get("Name", "")
    if mount.get("Type") != "volume" or _ANONYMOUS.match(name or ""):
        return failed(f"docker inspect shows {mount.get('Type')} {name or ''} on "
                      f"{mount.get('Destination')}, not the named volume {wanted.source}.")
    return passed(f"docker inspect: the named volume {wanted.source} is mounted on "
                  f"{mount.get('Destination')} ({'read-only' if not mount.get('RW') else 'rw'}).")


def _verdict_survives(note: str, first: Generation, second: Generation, spec: RunSpec) -> Verdict:
    for label, gen in (("first", first), ("second", second)):
        if gen.error:
            return failed(f"The {label} container did not start: {gen.error}")
        if not gen.ready:
            tail = "\n".join(gen.logs.strip().splitlines()[-4:]) or "(nothing)"
            extra = ""
            if "cannot write" in gen.logs:
                extra = (" The app cannot write its data: a read-only mount (:ro) on "
                         f"{DATA} is for data a container only reads.")
            return failed(f"The {label} container never said it was ready.{extra} Its logs:\n"
                          f"{tail}")
    if not first.added:
        return failed("The note could not be added in the first container.")
    if note in second.notes:
        return passed("the note added in the first container is listed by the second one, "
                      "after the first was removed.")
    wanted = _data_mount(spec.mounts)
    return failed(f"The note added in the first container is gone in the second one: "
                  f"{_describe(wanted)}, so the data went with the first container. (The new "
                  f"container listed: {second.notes.strip()[:200] or 'no notes'}.)")


def _verdict_outlives(runner: Runner, note: str, second: Generation, spec: RunSpec) -> Verdict:
    mount = second.data_mount
    wanted = _data_mount(spec.mounts)
    if mount is None or second.error:
        return unjudged("the second container did not start.")
    if wanted is None or wanted.kind != "volume":
        return failed(f"{_describe(wanted)}; docker rm -v removes a container's anonymous "
                      "volumes with it, and nothing else holds the notes afterwards.")
    notes = runner.look_into(mount)
    if notes is None:
        return failed(f"The volume {wanted.source} was gone once its containers were removed.")
    if note not in notes:
        return failed(f"The volume {wanted.source} is still there, but the note is not in it.")
    return passed(f"after docker rm -v of both containers, the volume {wanted.source} still "
                  "holds the note: a named volume lives until docker volume rm.")


def judge(*, sandbox: Sandbox, answer, lab: Lab) -> dict[str, Verdict]:
    try:
        base_id = sandbox.reference(BASE_IMAGE).id
    except docker.errors.ImageNotFound as exc:
        raise ImageError(f"The course image {BASE_IMAGE} is not on this engine, so the volumes "
                         "lab cannot be judged.", "Run `docklab images prepare`.") from exc
    verdicts: dict[str, Verdict] = {}
    run, why = recorded_run(answer)
    if run is None:
        verdicts["config_valid"] = failed(why)
        verdicts.update(not_judged(lab, "there is no run configuration."))
        return verdicts
    spec = parse_run(run)
    if spec.image not in IMAGE_NAMES:
        spec.problems.insert(0, f"image is {spec.image!r}: run the lab's app, \"notes\".")
    if not spec.mounts and not spec.problems:
        spec.problems.append("RUN mounts nothing: no volumes, no mounts.")
    verdicts["config_valid"] = (failed(" ".join(spec.problems)) if spec.problems
                                else passed(f"notes with {', '.join(m.raw for m in spec.mounts)}"))

    build = sandbox.build(_app_context(lab, base_id))
    if not build.ok:
        raise ImageError(f"The lab's notes app did not build: {build.error}",
                         "Check the engine (`docklab doctor`) and the course images.")
    runner = Runner(sandbox, build.image_id, spec, base_id)
    runner.create_volumes()
    note = f"grader note {random.randint(100000, 999999)}"
    first = runner.generation(note)
    second = runner.generation(None)
    sandbox.details["generations"] = [
        {"ready": g.ready, "starts": g.starts, "error": g.error, "exit_code": g.exit_code,
         "data_mount": {k: (g.data_mount or {}).get(k) for k in ("Type", "Destination", "RW")}}
        for g in (first, second)]
    verdicts["named_volume"] = _verdict_named(spec, first)
    verdicts["data_survives"] = _verdict_survives(note, first, second, spec)
    verdicts["volume_outlives_containers"] = _verdict_outlives(runner, note, second, spec)
    return verdicts


def all_data_kept(details: dict) -> Verdict:
    """All of the app's data survives, not only the notes: the second container counted its
    second start (``/data/starts``), so the whole of /data is in the volume. The hidden test of
    data_survives, from the start counts the judge recorded (``details["generations"]``)."""
    generations = details.get("generations") or []
    starts = generations[1].get("starts") if len(generations) > 1 else None
    if starts == 2:
        return passed("the second container counted its second start: all of /data was kept.")
    return failed(
        f"The second container says it started {starts} time(s), not 2: the notes survived, "
        f"but not the rest of the app's data in {DATA} (its start counter). Mount the volume "
        f"on {DATA} itself, the folder the app keeps everything in, not on a folder below it. "
        f"(Lesson {LESSON}: anonymous volumes and VOLUME.)")


LAB = Lab("volumes", "volumes: data that survives container replacement", CRITERIA, judge,
          files=APP_FILES, base_image=BASE_IMAGE, hidden={"data_survives": all_data_kept},
          sealed_ready=True, lesson=LESSON, topics=TOPICS)


grade = LAB.grade
self_check = LAB.self_check


def assert_all_data_kept(answer: str | os.PathLike = ".") -> None:
    """All of the app's data survives, not only the notes: the hidden test of data_survives as
    an assert (:func:`all_data_kept`, which grading applies)."""
    report = grade(answer)
    assert report["data_survives"].passed, "The notes do not survive the container."
    verdict = all_data_kept(report.details)
    assert verdict.passed, verdict.feedback


def try_it(answer: str | os.PathLike = ".") -> None:
    """Replace a container of your configuration, as grading does, and show what happened.

    Equivalent CLI (for ``"volumes": ["notes-data:/data"]``): ``docker run -d --name notes -v
    notes-data:/data notes``, ``docker exec notes sh /app/notes.sh add ...``, ``docker rm -f -v
    notes``, then the same ``docker run`` again and ``docker exec notes sh /app/notes.sh list``.
    Volumes get names of their own here (labelled), and everything is removed afterwards.
    """
    from docklab.checks.answer import open_answer
    from docklab.checks.sandbox import Limits
    from docklab.engine import connect

    if os.environ.get("NBGRADER_EXECUTION") == "autograde":
        print("(skipped while autograding: the graded tests run the configuration)")
        return
    limits = Limits.from_env()
    with open_answer(answer, {name: LAB.lab_file(name) for name in APP_FILES},
                     limits=limits) as prepared, \
            Sandbox(connect(), LAB.id, limits, helper_image=BASE_IMAGE) as sandbox:
        run, why = recorded_run(prepared)
        if run is None:
            print(why)
            return
        spec = parse_run(run)
        for problem in spec.problems:
            print(problem)
        base_id = sandbox.reference(BASE_IMAGE).id
        build = sandbox.build(_app_context(LAB, base_id))
        runner = Runner(sandbox, build.image_id, spec, base_id)
        runner.create_volumes()
        shown = " ".join(f"-v {m.raw}" if m.kind != "tmpfs" else f"--tmpfs {m.target}"
                         for m in spec.mounts)
        for number, note in ((1, "my first note"), (2, None)):
            print(f"$ docker run -d --name notes {shown} notes".replace("  ", " "))
            gen = runner.generation(note)
            print(f"  {gen.error or gen.logs.strip() or '(no output)'}")
            if note:
                print(f"$ docker exec notes sh /app/notes.sh add {note}")
            print("$ docker exec notes sh /app/notes.sh list")
            print("  " + (gen.notes.strip().replace("\n", "\n  ") or "(no notes)"))
            mount = gen.data_mount or {}
            print(f"  ({mount.get('Type', 'nothing')} {mount.get('Name', '')[:20]} on "
                  f"{mount.get('Destination', DATA)})")
            print("$ docker rm -f -v notes\n")
