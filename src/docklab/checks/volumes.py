"""Checks for the volumes lab: the notes app keeps its data when its container is replaced.

The lab hands out a tiny notes app (``notes.sh``, built by ``app.Dockerfile`` FROM busybox, which
declares ``VOLUME /data``). It keeps its notes in ``/data/notes/`` and counts its starts in
``/data/starts``. The learner builds it (``docker build -f app.Dockerfile -t notes .``) and writes
the **commands that run it**, ``run.sh`` (the notebook's ``%%writefile run.sh`` cell): the app's
data must survive its container being removed and started again with the same commands, so it is
kept in a named volume mounted on ``/data``, not an anonymous volume nor a host folder. The
reference answer is in ``grader/source/volumes/`` (instructors only: the learner's image holds no
solution).

``-v`` takes ``name:/path[:ro]`` (a ``/host/path`` or ``./path`` source is a bind mount, a lone
``/path`` an anonymous volume), ``--mount`` takes ``type=volume,source=notes-data,target=/data``
(``src``/``dst`` too), ``--tmpfs /path`` a tmpfs.

**The answer path** (``docklab check volumes <path>``) is a folder holding ``run.sh``, or the lab
notebook, whose last ``%%writefile run.sh`` cell is the script.

The script is data (:mod:`docklab.checks.commands`): it never reaches a shell. Only blank lines,
comments, ``\\`` continuations and ``docker volume create`` / ``docker network create`` /
``docker run`` lines are accepted; anything else (another program, ``;``, ``$(...)``, ``-H``
before the command ...) refuses the whole script, naming the line, and nothing of it runs. Of the
accepted commands, grading runs what the lab is about and leaves out the rest, saying so in
``config_valid``: ``docker run`` of the lab's app ``notes`` with ``-v``/``--mount``/``--tmpfs``
(plus harmless ``-d``, ``--name``, ``--rm``, ``-e``, ``--read-only``, ``-it``, ``--restart``,
``--label``); no bind mount (a host folder, ``-v /:/host``), no privileges, no host namespaces,
no other image, no volume driver options (``-o type=none,o=bind`` is a bind mount too).

How it is judged, on the engine: the app's image is built from the lab's files; the script's
commands run with the real docker CLI (the course image ``docklab/docker-cli``, in a container on
the engine being judged, with that engine's socket only), rewritten: names of the grading run's
own (``docklab-grade-<run>-notes-data``: the learner's own volumes are never touched), the course
labels, limits (memory, pids, CPU, no capabilities, no network), the app by the ID of the image
just built. A note is added in the app's container with ``docker exec``, every container of the
script is removed with ``docker rm -f -v``, the script runs again, and the new container is asked
for its notes; its mounts are read from ``docker inspect``; when both are gone, a helper container
looks into the volume itself. The graded tests' hidden test (:func:`all_data_kept`) is judged from
the start count the second container printed.

**Graded on a sealed engine** (:mod:`docklab.grading`): the judge talks only to the engine it is
given, so when a submission is graded, the app is built and the script's commands run in the
submission's own rootless engine, never on the grading host. busybox and docklab/docker-cli are
used by the IDs the grader loaded. A rootless engine on a cgroup v1 host has no cgroup controllers
of its own (``CgroupDriver: none``), so the memory, pids and CPU limits given to each container
are not enforced there: the sealed engine as a whole is bounded instead.

    from docklab.checks import volumes
    volumes.grade(".")

Equivalent CLI: ``docklab check volumes <folder or notebook> [--json]``.
"""

from __future__ import annotations

import io
import os
import random
import re
import tarfile
import time
from dataclasses import dataclass, field

import docker.errors
import requests.exceptions
from docker.types import Mount

from docklab.checks import commands as cmd
from docklab.checks.base import Criterion, Lab, Verdict, failed, not_judged, passed, unjudged
from docklab.checks.inside import ToolContainer
from docklab.checks.sandbox import Sandbox
from docklab.engine import exec_output
from docklab.errors import ImageError

BASE_IMAGE = "busybox"
APP_FILES = ("notes.sh", "app.Dockerfile")
SCRIPT = "run.sh"
IMAGE_NAMES = ("notes", "notes:latest")
#: What the check's `notes.sh list` prints after the list, so that its output is never empty.
_LISTED = "docklab: listed"
DATA = "/data"
NOTES = "/data/notes/notes.txt"
READY = "ready:"
#: How long the app may take to say it is ready: generous, since a grading host may be busy (a
#: right answer is ready in under a second; only one that never gets ready waits this long).
READY_WITHIN_SECONDS = 30.0
#: ``docker run`` options grading keeps for the app (beside ``--name``, which it renames).
KEPT = {"--volume", "--mount", "--tmpfs", "--rm", "--env", "--read-only"}
#: Options that change nothing grading looks at: dropped without a word (grading runs the app
#: detached, with no terminal, labels and a restart policy of its own).
DROPPED = {"--detach", "--interactive", "--tty", "--restart", "--label", "--name"}
LESSON = "03-volumes"
TOPICS = {
    "config_valid": "docker run -v and --mount",
    "named_volume": "named volumes (section 2), anonymous volumes (section 5)",
    "data_survives": "named volumes: data that outlives a container",
    "volume_outlives_containers": "named volumes, and what docker rm -v removes",
}
_ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")
_CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$", re.MULTILINE)
_STARTS = re.compile(r"started (\d+) time")
_FROM_BASE = re.compile(rf"^FROM\s+{BASE_IMAGE}(?::latest)?\s*$", re.MULTILINE | re.IGNORECASE)

CRITERIA = [
    Criterion("config_valid", 1, "run.sh runs the lab's notes image with docker commands "
              "grading runs as written", needs_image=False),
    Criterion("named_volume", 2, f"the app's {DATA} is a named volume (not anonymous, not a bind "
              "mount)"),
    Criterion("data_survives", 3, "a note added in one container is there in the next one"),
    Criterion("volume_outlives_containers", 1, "the notes are still in the volume after "
              "docker rm -v of every container"),
]


# -- the script ---------------------------------------------------------------------------------

@dataclass
class MountSpec:
    kind: str                # volume, anonymous, bind, tmpfs
    source: str
    target: str
    read_only: bool = False
    raw: str = ""


@dataclass
class RunSpec:
    """The app's ``docker run`` as the learner wrote it, and the commands grading runs."""

    image: str = ""
    mounts: list[MountSpec] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: The script's commands as grading runs them (docker argv, without ``docker``).
    argvs: list[list[str]] = field(default_factory=list)
    #: Index in ``argvs`` of the app's ``docker run`` (the first one of notes).
    app: int | None = None
    #: The app's container name as grading runs it ("" when the script gives none).
    app_name: str = ""


def _target(path) -> str:
    return os.path.normpath(str(path)) if str(path).startswith("/") else ""


def _from_v(text: str) -> MountSpec:
    parts = text.split(":")
    if len(parts) == 1:
        return MountSpec("anonymous", "", _target(parts[0]), raw=f"-v {text}")
    source, target, mode = parts[0], parts[1], (parts[2] if len(parts) > 2 else "rw")
    read_only = "ro" in mode.split(",")
    if source.startswith(("/", ".", "~")) or "/" in source:
        return MountSpec("bind", source, _target(target), read_only, f"-v {text}")
    return MountSpec("volume", source, _target(target), read_only, f"-v {text}")


def _mount_fields(text: str) -> dict[str, str]:
    return dict((part.split("=", 1) if "=" in part else (part, "true"))
                for part in text.split(",") if part)


def _from_mount(text: str) -> MountSpec:
    fields = {k.lower(): v for k, v in _mount_fields(text).items()}
    kind = fields.get("type", "volume").lower()
    source = fields.get("source") or fields.get("src") or ""
    target = _target(fields.get("target") or fields.get("destination") or fields.get("dst")
                     or "")
    read_only = str(fields.get("readonly", fields.get("ro", "false"))).lower() in ("true", "1")
    if kind == "volume" and not source:
        kind = "anonymous"
    return MountSpec(kind, source, target, read_only, f"--mount {text}")


def _mount_of(option: str, value: str) -> MountSpec:
    if option == "--volume":
        return _from_v(value)
    if option == "--tmpfs":
        return MountSpec("tmpfs", "", _target(value.split(":", 1)[0]), raw=f"--tmpfs {value}")
    return _from_mount(value)


def _graded_mount(rewrite: cmd.Rewrite, command: cmd.Command, option: str, value: str,
                  spec: RunSpec) -> list[str]:
    """One of the app's mounts as grading gives it (a named volume renamed), or [] when it is
    left out (a bind mount, a volume with driver options)."""
    mount = _mount_of(option, value)
    if mount.kind not in ("volume", "anonymous", "bind", "tmpfs") or not mount.target:
        rewrite.leave_out(command, f"`{mount.raw}`", "it does not say where to mount (an "
                          "absolute path inside the container) or has an unknown type.")
        return []
    if mount.kind == "bind":
        rewrite.leave_out(command, f"`{mount.raw}`", "it mounts a folder of the engine's host "
                          "(a bind mount); grading never mounts host folders, and this lab "
                          "keeps its data in a named volume.")
        spec.mounts.append(mount)  # judged as what it is (see named_volume)
        return []
    if option == "--mount" and set(_mount_fields(value)) - {
            "type", "source", "src", "target", "destination", "dst", "readonly", "ro"}:
        rewrite.leave_out(command, f"`{mount.raw}`", "grading mounts only type, source, target "
                          "and readonly (volume drivers and their options can mount host "
                          "folders).")
        return []
    if mount.kind == "volume" and not cmd.valid_name(mount.source):
        rewrite.leave_out(command, f"`{mount.raw}`", f"{mount.source!r} is not a valid volume "
                          "name (letters, digits, _ . -).")
        return []
    spec.mounts.append(mount)
    if mount.kind == "volume":
        graded = rewrite.volume(mount.source)
        if option == "--volume":
            return ["--volume", f"{graded}:{mount.target}{':ro' if mount.read_only else ''}"]
        return ["--mount", f"type=volume,source={graded},target={mount.target}"
                + (",readonly" if mount.read_only else "")]
    if mount.kind == "anonymous":
        return ["--volume", mount.target] if option == "--volume" else \
            ["--mount", f"type=volume,target={mount.target}"]
    return ["--tmpfs", f"{mount.target}:size=16m"]


def plan(script: cmd.Script, rewrite: cmd.Rewrite, app_image: str) -> RunSpec:
    """The script as grading runs it: the app's ``docker run`` with its mounts renamed, the
    volumes it creates, and what is left out (``rewrite.left_out``)."""
    spec = RunSpec()
    for command in script.commands:
        if command.kind == "network create":
            rewrite.leave_out(command, "the command", "this lab needs no network of its own.")
            continue
        if command.kind == "volume create":
            argv = rewrite.create(command)
            if argv is not None:
                spec.argvs.append(argv)
            continue
        if command.image not in IMAGE_NAMES:
            rewrite.leave_out(command, "the command", f"it runs {command.image!r}; grading runs "
                              "only the lab's app, the image notes.")
            continue
        if spec.app is not None:
            rewrite.leave_out(command, "the command", "the app runs once; grading runs the first "
                              "docker run of notes only.")
            continue
        spec.image = command.image
        argv = rewrite.run_head(command)
        spec.app_name = rewrite.containers.get(command.name, "")
        for option, value in command.options:
            if option in DROPPED:
                continue
            if option in ("--volume", "--mount", "--tmpfs"):
                argv += _graded_mount(rewrite, command, option, value or "", spec)
            elif option in KEPT:
                argv += [option] if value is None else [option, value]
            else:
                rewrite.leave_out(command, f"`{option}`", "this lab's app needs only -v, "
                                  "--mount or --tmpfs (and -d, --name, --rm, -e); grading runs "
                                  "no privileges, host namespaces or devices.")
        spec.app = len(spec.argvs)
        spec.argvs.append([*argv, app_image, *command.args])
    # A volume that -v names is created by docker run when it does not exist yet, without
    # labels: grading creates every one first, labelled (creating one that exists changes
    # nothing), so cleanup finds it.
    creates = [["volume", "create", *rewrite.labels(None), graded]
               for graded in rewrite.volumes.values()]
    spec.argvs[:0] = creates
    if spec.app is not None:
        spec.app += len(creates)
    spec.problems = list(rewrite.left_out)
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
    """One run of the script: what the app said and how its storage was mounted."""

    error: str = ""
    logs: str = ""
    ready: bool = False
    exit_code: int | None = None
    starts: int | None = None
    notes: str | None = ""   # None: the list could not be read (docker exec said nothing)
    added: bool = False
    data_mount: dict | None = None
    mounts: list = field(default_factory=list)
    commands: list = field(default_factory=list)


class Runner:
    """Runs the script's commands (as grading rewrote them) with the docker CLI in ``tool``."""

    def __init__(self, sandbox: Sandbox, tool: ToolContainer, spec: RunSpec, helper_image: str):
        self.sandbox = sandbox
        self.tool = tool
        self.spec = spec
        self.helper_image = helper_image    # the course's busybox, by ID

    def _app(self, done: list[dict]):
        """The app's container: by its graded name, or by the ID its docker run printed."""
        result = done[self.spec.app]
        if result["status"] != 0:
            return None, (result["stderr"].strip() or result["stdout"].strip())[-600:] or \
                f"docker run exited with status {result['status']}"
        ids = _CONTAINER_ID.findall(result["stdout"])
        try:
            return self.sandbox.client.containers.get(self.spec.app_name or ids[-1]), ""
        except (docker.errors.NotFound, IndexError):
            return None, "the app's container is gone (docker run --rm, and it stopped?)"

    def generation(self, note: str | None) -> Generation:
        """Run the script, add ``note`` or list the notes in the app's container, then
        ``docker rm -f -v`` every container the script started."""
        seen = Generation()
        done = cmd.run_commands(self.tool, self.spec.argvs)
        seen.commands = [{"argv": " ".join(d["argv"][:2]), "status": d["status"],
                          "stderr": d["stderr"][-300:]} for d in done]
        started_ids = [i for d in done if d["argv"][:1] == ["run"]
                       for i in _CONTAINER_ID.findall(d["stdout"])]
        try:
            app, seen.error = self._app(done)
            if app is not None:
                self._watch(app, seen, note)
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            seen.error = getattr(exc, "explanation", None) or str(exc)
        finally:
            for container_id in started_ids:
                self.sandbox.remove_container(container_id)   # docker rm -f -v
        return seen

    def _watch(self, app, seen: Generation, note: str | None) -> None:
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
            # An empty list is an answer too, so the command always says it has run: an exec
            # that comes back with no output at all (the engine's attach race) is then not taken
            # for "no notes" (exec_output tries again; None: still nothing, not judged).
            code, listed = exec_output(app, ["sh", "-c", f"sh /app/notes.sh list; echo {_LISTED}"])
            seen.notes = None if code is None else listed.replace(_LISTED, "")[-16384:]
            app.stop(timeout=3)
        try:
            app.reload()
            seen.exit_code = app.attrs.get("State", {}).get("ExitCode")
        except docker.errors.NotFound:
            seen.exit_code = None   # --rm removed it on stop

    def look_into(self, mount: dict) -> tuple[bool, str | None]:
        """(whether the volume a container had on ``mount`` is still there, the notes in it),
        read by a helper container; the notes are None when the helper could not read them.

        The helper says when it has read them: a run whose output the engine lost (seen on a
        loaded host) comes back empty, which :meth:`Sandbox.run` runs once more, and is never
        taken for "no note"."""
        name = mount.get("Name")
        try:
            self.sandbox.client.volumes.get(name)
        except docker.errors.NotFound:
            return False, None
        read = self.sandbox.run(
            self.helper_image, ["sh", "-c", f"cat {NOTES}; echo {_LISTED}"],
            mounts=[Mount(mount.get("Destination", DATA), name, type="volume", read_only=True)])
        if _LISTED not in read.output:
            return True, None
        return True, read.output.replace(_LISTED, "")


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
        return failed(f"Nothing of the script is mounted on {DATA}, where the app keeps "
                      "its data: the image's VOLUME /data then gives every container a fresh "
                      "anonymous volume, and a new container starts empty. Mount a named volume "
                      f"there: docker run -v notes-data:{DATA} notes.")
    if wanted.kind == "bind":
        return failed(f"{_describe(wanted)}: that keeps data, but ties it to one host's folder "
                      "(and its owner and permissions); this lab asks for a named volume, which "
                      f"the engine manages: -v notes-data:{DATA}. Grading does not mount host "
                      "folders.")
    if wanted.kind == "tmpfs":
        return failed(f"{_describe(wanted)}: it goes with its container, and the next "
                      f"container starts empty. Use a named volume: -v notes-data:{DATA}.")
    if wanted.kind != "volume":
        return failed(f"{_describe(wanted)}: the engine gives it a random 64-digit name, so the "
                      f"next container cannot find it. Name it: -v notes-data:{DATA}.")
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
    if second.notes is None:
        return unjudged("docker exec of notes.sh list in the second container gave no output.")
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
    if wanted is None or wanted.kind != "volume":
        return failed(f"{_describe(wanted)}; docker rm -v removes a container's anonymous "
                      "volumes (and its tmpfs) with it, and nothing else holds the notes "
                      "afterwards.")
    if mount is None or second.error:
        return unjudged("the second container did not start.")
    there, notes = runner.look_into(mount)
    if not there:
        return failed(f"The volume {wanted.source} was gone once its containers were removed.")
    if notes is None:
        return unjudged(f"a helper container could not read the volume {wanted.source}.")
    if note not in notes:
        return failed(f"The volume {wanted.source} is still there, but the note is not in it.")
    return passed(f"after docker rm -v of both containers, the volume {wanted.source} still "
                  "holds the note: a named volume lives until docker volume rm.")


def judge(*, sandbox: Sandbox, answer, lab: Lab) -> dict[str, Verdict]:
    for image in (BASE_IMAGE, cmd.CLI_IMAGE):
        try:
            sandbox.reference(image)
        except docker.errors.ImageNotFound as exc:
            raise ImageError(f"The course image {image} is not on this engine, so the volumes "
                             "lab cannot be judged.", "Run `docklab images prepare`.") from exc
    base_id = sandbox.reference(BASE_IMAGE).id
    script, refused = cmd.script_or_verdicts(answer, lab, SCRIPT)
    if script is None:
        return refused
    verdicts: dict[str, Verdict] = {}

    # The course's own recipe (the lab has no Dockerfile of the learner's), FROM the base by
    # its ID: the legacy builder, as BuildKit takes only names.
    build = sandbox.build(_app_context(lab, base_id), builder="legacy")
    if not build.ok:
        raise ImageError(f"The lab's notes app did not build: {build.error}",
                         "Check the engine (`docklab doctor`) and the course images.")
    spec = plan(script, cmd.Rewrite(sandbox, network_mode="none"), build.image_id)
    if spec.app is None:
        missing = (f"{SCRIPT} has no docker run of the lab's app, notes (docker run -d --name "
                   "notes ... notes).")
        verdicts["config_valid"] = failed(" ".join([missing, *spec.problems]))
        verdicts.update(not_judged(lab, "the script runs no container of the app."))
        return verdicts
    if not spec.mounts and not spec.problems:
        spec.problems.append("docker run mounts nothing: no -v, no --mount.")
    verdicts["config_valid"] = (failed(" ".join(spec.problems)) if spec.problems
                                else passed(f"notes with {', '.join(m.raw for m in spec.mounts)}"))
    with ToolContainer(sandbox, cmd.CLI_IMAGE) as tool:
        runner = Runner(sandbox, tool, spec, base_id)
        note = f"grader note {random.randint(100000, 999999)}"
        first = runner.generation(note)
        second = runner.generation(None)
    sandbox.details["generations"] = [
        {"ready": g.ready, "starts": g.starts, "error": g.error, "exit_code": g.exit_code,
         "commands": g.commands,
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
          files=APP_FILES, base_image=BASE_IMAGE, images=(cmd.CLI_IMAGE,), hidden={"data_survives": all_data_kept},
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
