"""Build and run untrusted work on the engine, bounded, and remove everything afterwards.

Grading builds and runs whatever a learner handed in, which may never finish (``RUN sleep 1000``),
print forever (``ENTRYPOINT ["yes"]``), fork without end or try to read files outside its folder.
A :class:`Sandbox` bounds each of those and always cleans up:

- **the builder**: BuildKit, as the learner's ``docker build`` on a current engine (``docker
  buildx build``, :mod:`docklab.checks.buildkit_build`), where the grading host's CLI has buildx
  and the engine can be named to it; the engine's legacy builder elsewhere (``builder=`` or
  ``DOCKLAB_GRADE_BUILDER=buildkit|legacy`` choose; ``details["builder"]`` says which ran);
- **time**: a build is cancelled at ``build_timeout`` (legacy: the connection is shut, which makes
  the engine kill and remove the step's container; the step's container, known from the build
  output, is also killed and removed here; BuildKit: the CLI is interrupted, then killed); a
  container is killed at ``run_timeout``;
- **memory, CPU, pids**: every container gets limits. On cgroup v1 engines with the cgroupfs
  driver, the build's step containers are also placed under a small limited "parent" container
  (``cgroupparent``, BuildKit's ``--cgroup-parent``), so the whole build shares one pids, memory
  and CPU budget (the parent is kept and lent to the next build, :mod:`docklab.checks.build_bounds`,
  as BuildKit's cache holds only under the same parent); elsewhere a legacy build is bounded by
  memory, CPU and time, a BuildKit one by time (``details["build_pids_bounded"]`` says which; a
  sealed engine bounds them as a whole);
- **output**: a build that prints more than ``build_log_bytes`` is stopped; a container that
  prints more than ``output_bytes`` is killed; only that much is kept (and the json-file log
  of each container is capped on disk);
- **files**: the build context is a capped tar made by :mod:`docklab.checks.answer`;
- **cleanup**: everything carries the course labels with a session of its own
  (``labels_for(lesson)`` with a per-run session), and ``close()`` removes it by label, pass or
  fail. The step images of a build stay as the engine's layer cache (as after ``docker build``),
  so grading the same steps again is fast; ``keep_cache=False`` removes them too.

Equivalent CLI of a grading build: ``docker buildx build --label ... --cgroup-parent ... -``, or
with the legacy builder ``docker build --rm --force-rm --memory 512m --label ... .``
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field

import docker
import docker.errors
import requests.exceptions
from docker.types import LogConfig
from docker.types.daemon import CancellableStream

from docklab import labels as L
from docklab.checks import build_bounds, buildkit_build

MiB = 1024 * 1024
_RUNNING_IN = re.compile(r"Running in ([0-9a-f]{12,64})")
_STEP_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12,64})\s*$", re.MULTILINE)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STEP = re.compile(r"^Step \d+/\d+ : (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Limits:
    """Bounds for grading one answer. ``Limits.from_env()`` reads DOCKLAB_GRADE_* overrides."""

    # A graded notebook cell gets 300 s (grader/nbgrader_config.py): a build that times out,
    # then the runs, still report within it.
    build_timeout: float = 200.0
    run_timeout: float = 15.0
    memory: int = 512 * MiB
    pids: int = 256
    cpus: float = 1.0
    output_bytes: int = 64 * 1024
    build_log_bytes: int = 2 * MiB
    context_bytes: int = 16 * MiB
    file_bytes: int = 1 * MiB

    @classmethod
    def from_env(cls, **overrides) -> Limits:
        env = {
            "build_timeout": os.environ.get("DOCKLAB_GRADE_BUILD_TIMEOUT"),
            "run_timeout": os.environ.get("DOCKLAB_GRADE_RUN_TIMEOUT"),
        }
        values = {k: float(v) for k, v in env.items() if v}
        values.update(overrides)
        return cls(**values)


@dataclass
class BuildResult:
    """What a bounded build gave: an image id, or why not."""

    image_id: str | None = None
    error: str = ""
    log: str = ""
    timed_out: bool = False
    flooded: bool = False
    seconds: float = 0.0
    #: (instruction, image id of that step) for every step the engine reported; with BuildKit,
    #: (instruction, vertex digest) of every Dockerfile step it built, in Dockerfile order.
    steps: list[tuple[str, str]] = field(default_factory=list)
    #: (stage name, its instructions) of every stage built, the image's own stage last. BuildKit
    #: builds only the stages the image needs, and a stage FROM scratch has no FROM step.
    stages: list[tuple[str, list[str]]] = field(default_factory=list)
    #: "buildkit" or "legacy": the builder that ran.
    builder: str = "legacy"
    #: BuildKit: what the last step that printed (the failed one, when one failed) printed.
    step_output: str = ""
    #: BuildKit: its note that it clipped a step's output ("" when it did not): a flood.
    log_clipped: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.image_id) and not (self.error or self.timed_out or self.flooded)

    @property
    def base(self) -> str:
        """The image the image's own stage starts FROM, as the build named it (``debian:12``);
        "" when unknown, or FROM scratch. BuildKit records no parent image, so this is how a
        judge learns what an image was built on."""
        instructions = self.stages[-1][1] if self.stages else []
        words = instructions[0].split() if instructions else []
        if len(words) < 2 or words[0].upper() != "FROM":
            return ""
        name = words[1]
        for prefix in ("docker.io/library/", "docker.io/"):
            name = name.removeprefix(prefix)
        # BuildKit names "debian:12@sha256:…" when the image has a registry digest.
        return name.split("@", 1)[0] if ":" in name.split("@", 1)[0] else name


@dataclass
class RunResult:
    """What a bounded container run gave."""

    output: str = ""
    exit_code: int | None = None
    error: str = ""              # the engine refused to create or start it
    timed_out: bool = False
    flooded: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not (self.error or self.timed_out or self.flooded)


class _BuildState:
    def __init__(self, cap: int):
        self.cap = cap
        self.size = 0
        self.tail = ""
        self.steps: list[list[str]] = []
        self.containers: set[str] = set()
        self.image_id: str | None = None
        self.error = ""
        self.flooded = False
        self.crashed: BaseException | None = None

    def add(self, text: str) -> None:
        text = _ANSI.sub("", text)  # the legacy builder colours a step's stderr
        self.size += len(text)
        self.tail = (self.tail + text)[-64 * 1024:]
        for match in _RUNNING_IN.finditer(text):
            self.containers.add(match.group(1))
        for match in _STEP.finditer(text):
            self.steps.append([match.group(1).strip(), ""])
        for match in _STEP_IMAGE.finditer(text):
            if self.steps:
                self.steps[-1][1] = match.group(1)
        if self.size > self.cap:
            self.flooded = True


def legacy_stages(steps: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """The legacy builder's steps grouped by stage (each FROM starts one), in Dockerfile order:
    it builds every stage, and the last one is the image."""
    stages: list[tuple[str, list[str]]] = []
    for instruction, _ in steps:
        words = instruction.split()
        if words and words[0].upper() == "FROM" or not stages:
            name = words[3] if len(words) >= 4 and words[2].upper() == "AS" else ""
            stages.append((name or f"stage-{len(stages)}", []))
        stages[-1][1].append(instruction)
    return stages


def is_course_label_step(instruction: str) -> bool:
    """Whether a build step is the course's own LABEL (added to every graded build)."""
    return instruction.replace('"', "").startswith(f"LABEL {L.PREFIX}.")


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def with_label_instruction(context: io.BytesIO, labels: dict[str, str]) -> io.BytesIO | None:
    """The context with one ``LABEL`` line appended to its Dockerfile, or None when unsafe.

    The engine adds build labels as one LABEL step per label; one line is one step. When the
    Dockerfile ends in a line continuation or changes its escape character, the line could
    merge with the learner's last instruction: then the labels go the usual way (None).
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(context.getvalue())) as source:
            members = [(m, source.extractfile(m).read() if m.isfile() else None)
                       for m in source.getmembers()]
    except tarfile.TarError:
        return None
    index = next((i for i, (m, _) in enumerate(members)
                  if m.name in ("Dockerfile", "./Dockerfile") and m.isfile()), None)
    if index is None:
        return None
    text = members[index][1].decode("utf-8", "replace")
    if re.search(r"^\s*#\s*escape\s*=", text, re.MULTILINE | re.IGNORECASE):
        return None
    lines = [line for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines or lines[-1].rstrip().endswith("\\"):
        return None
    label = "LABEL " + " ".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(labels.items()))
    data = (text.rstrip("\n") + "\n" + label + "\n").encode()
    info = members[index][0]
    info.size = len(data)
    members[index] = (info, data)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as target:
        for member, content in members:
            target.addfile(member, io.BytesIO(content) if content is not None else None)
    out.seek(0)
    return out


@functools.cache
def _cli_has_buildkit() -> bool:
    """This machine's docker CLI has buildx >= 0.15 (asked once a process: ~0.1 s)."""
    from docklab.buildkit import buildkit_available, buildx_plugin

    return buildx_plugin() is not None and buildkit_available()


def preferred_builder() -> str:
    """The builder grading asks for on an engine that has both: DOCKLAB_GRADE_BUILDER, else
    BuildKit where this machine's CLI has buildx >= 0.15. (A seed of a lab's sealed engines holds
    one builder's cache, so it is made per builder.)"""
    chosen = os.environ.get("DOCKLAB_GRADE_BUILDER") or "auto"
    if chosen == "auto":
        return "buildkit" if _cli_has_buildkit() else "legacy"
    return chosen


#: Engine ID → whether its BuildKit honours --cgroup-parent (Sandbox.buildkit_is_bounded).
_cgroup_parent_honoured: dict[str, bool] = {}


def _one_file_context(dockerfile: str) -> io.BytesIO:
    """A build context holding only ``dockerfile``."""
    data = dockerfile.encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    out.seek(0)
    return out


def _buildkit_can_build(client) -> bool:
    """Whether a BuildKit build of this machine's CLI can run on the engine of ``client``."""
    if buildkit_build.engine_address(client) is None or not _cli_has_buildkit():
        return False
    try:
        version = client.version()
    except (docker.errors.APIError, requests.exceptions.RequestException):
        return False
    api = tuple(int(n) for n in re.findall(r"\d+", version.get("ApiVersion", "0"))[:2])
    return version.get("Os") == "linux" and api >= (1, 39)


def _attempt(removed: L.Removed, kind: str, name: str, action) -> None:
    try:
        action()
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        removed.errors.append(f"{kind[:-1]} {name}: {exc.explanation or exc}")
        return
    getattr(removed, kind).append(name)


class Sandbox:
    """Bounded builds and runs for one grading run; a context manager that cleans up."""

    def __init__(self, client: docker.DockerClient, lesson: str, limits: Limits | None = None,
                 *, keep_cache: bool = True, helper_image: str | None = None,
                 references: dict[str, str] | None = None,
                 build_args: dict[str, str] | None = None, disposable: bool = False,
                 builder: str | None = None):
        self.client = client
        #: "auto" (BuildKit where it can run, else legacy), "buildkit" or "legacy".
        self.builder = builder or os.environ.get("DOCKLAB_GRADE_BUILDER") or "auto"
        if self.builder not in ("auto", "buildkit", "legacy"):
            raise ValueError(f"builder is 'auto', 'buildkit' or 'legacy', not {self.builder!r}")
        #: The engine itself is thrown away after this run (a sealed engine): images need no
        #: course LABEL step (one container commit less per build) and close() removes nothing.
        self.disposable = disposable
        #: Course image name → the image ID to judge against (a sealed engine's, loaded from the
        #: host's by ID): a tag inside an engine that built learner work may have been moved.
        self.references = dict(references or {})
        self.build_args = dict(build_args or {})
        self.lesson = lesson
        self.limits = limits or Limits()
        self.keep_cache = keep_cache
        self.helper_image = helper_image
        self.run_id = f"{L.session_id()}-{uuid.uuid4().hex[:8]}"
        self.details: dict = {"run_id": self.run_id}
        self._build_containers: set[str] = set()
        self._label_steps: list[str] = []
        self._parent: build_bounds.BoundParent | None = None
        self._parent_tried = False

    def reference(self, name: str):
        """The course image ``name`` to judge against: by its recorded ID where there is one."""
        return self.client.images.get(self.references.get(name, name))

    # -- labels and cleanup ---------------------------------------------------------------------

    def labels(self, kind: str) -> dict[str, str]:
        """The course labels, with a session of this run's own so cleanup takes only what it made."""
        labels = L.labels_for(self.lesson, kind=kind)
        labels[L.SESSION] = self.run_id
        return labels

    def __enter__(self) -> Sandbox:  # noqa: PYI034
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> L.Removed:
        """Remove every container, image, network and volume this run made; report what.

        Keeps going past errors (they are listed in ``details["cleanup_errors"]``).
        """
        removed = L.Removed()
        scope = {"lesson": self.lesson, "session": self.run_id}
        filters = {"label": L.label_filters(**scope)}

        def step(action) -> None:
            try:
                action()
            except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
                removed.errors.append(str(exc))

        self._retire_parent()
        if self.disposable:
            return removed
        for short_id in sorted(self._build_containers):
            step(lambda c=short_id: self.remove_container(c))

        def containers() -> None:
            for container in self.client.api.containers(all=True, filters=filters):
                _attempt(removed, "containers", container["Id"][:12],
                         lambda c=container["Id"]: self.client.api.remove_container(
                             c, force=True, v=True))

        def images() -> None:
            # The image first, without its parents when the layer cache is kept:
            # remove_labelled would prune the untagged step images, the cache the next
            # grading reuses.
            for image in self.client.api.images(filters=filters, quiet=True):
                _attempt(removed, "images", image[7:19],
                         lambda i=image: self.client.api.remove_image(
                             i, force=True, noprune=self.keep_cache))
            if self.keep_cache:
                # Newest first; a step image another build still builds on stays.
                for image_id in self._label_steps:
                    try:
                        self.client.api.remove_image(image_id, noprune=True)
                    except docker.errors.NotFound:
                        continue
                    except docker.errors.APIError:
                        break

        def rest() -> None:
            found = L.remove_labelled(self.client, **scope)
            for kind in ("containers", "services", "networks", "volumes", "images", "errors"):
                getattr(removed, kind).extend(getattr(found, kind))

        for action in (containers, images, rest):
            step(action)
        self.details["removed"] = removed.total()
        if removed.errors:
            self.details["cleanup_errors"] = removed.errors
        return removed

    def remove_container(self, container_id: str) -> None:
        """``docker rm -f -v`` of a container this run made; gone already is fine."""
        try:
            self.client.api.remove_container(container_id, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:  # e.g. removal already in progress
            if exc.status_code != 409:
                self.details.setdefault("cleanup_errors", []).append(str(exc))

    # -- bounded build --------------------------------------------------------------------------

    def _cgroup_parent(self) -> str | None:
        """A limited parent cgroup for the build's containers, where the engine allows one.

        A small container with the run's pids, memory and CPU limits is started (or one this
        process started earlier is borrowed, :mod:`docklab.checks.build_bounds`: BuildKit's
        cache of a RUN step holds only under the same parent), and the build places its step
        containers below that container's cgroup: with cgroup v1 the limits are hierarchical, so
        they bound the whole build (a fork bomb in a RUN stops at ``pids``).
        """
        if self._parent_tried:
            return self._parent.path if self._parent else None
        self._parent_tried = True
        info = self.client.info()
        bounded = (info.get("CgroupDriver") == "cgroupfs" and str(info.get("CgroupVersion")) == "1"
                   and self.helper_image is not None)
        if bounded:
            image = self.references.get(self.helper_image, self.helper_image)
            key = (info.get("ID"), image, self.limits)
            try:
                self._parent = build_bounds.borrow(
                    key, self.limits.build_timeout,
                    lambda: build_bounds.start_parent(self.client, key, image,
                                                      self.container_limits()))
            except (docker.errors.APIError, docker.errors.ImageNotFound, IndexError):
                self._parent = None
        self.details["build_pids_bounded"] = self._parent is not None
        return self._parent.path if self._parent else None

    def _retire_parent(self) -> None:
        """The limited parent is needed only while building: give it back for the next build."""
        parent, self._parent, self._parent_tried = self._parent, None, False
        if parent is not None:
            build_bounds.give_back(parent)

    def container_limits(self) -> dict:
        """The bounds of every container a judge starts, as ``containers.run`` keywords
        (``--memory``, ``--pids-limit``, ``--cpus``, ``--cap-drop ALL``, no-new-privileges, a
        capped json-file log)."""
        return {
            "mem_limit": self.limits.memory,
            "memswap_limit": self.limits.memory,   # no swap on top of the memory limit
            "pids_limit": self.limits.pids,
            "nano_cpus": int(self.limits.cpus * 1e9),
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "log_config": LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
        }

    def chosen_builder(self) -> str:
        """The builder this sandbox's builds use: "buildkit" or "legacy" (``builder="auto"``:
        BuildKit when the CLI has buildx >= 0.15 and can be pointed at this engine, a Linux one
        with API 1.39 or newer, and BuildKit's builds are bounded there, see
        :meth:`buildkit_is_bounded`)."""
        if self.builder == "auto":
            self.builder = ("buildkit" if _buildkit_can_build(self.client)
                            and self.buildkit_is_bounded() else "legacy")
        return self.builder

    def buildkit_is_bounded(self) -> bool:
        """Whether BuildKit's builds get the memory, pids and CPU bounds here that the legacy
        builder's get: on a disposable (sealed) engine, bounded as a whole, yes; elsewhere only
        if the engine's BuildKit puts RUN steps under the limited parent (``--cgroup-parent``).
        Engine 20.10's does not (measured: its steps run in ``/docker/buildkit/<id>`` whatever
        the CLI asks), so a one-line build asks each engine once a process."""
        if self.disposable:
            return True
        engine = str(self.client.info().get("ID"))
        if engine not in _cgroup_parent_honoured:
            parent = self._cgroup_parent()
            honoured = False
            if parent:
                base = self.references.get(self.helper_image, self.helper_image)
                probe = buildkit_build.build(
                    self.client, _one_file_context(
                        f"FROM {base}\nRUN cat /proc/self/cgroup # {uuid.uuid4().hex}\n"),
                    limits=self.limits, labels=self.labels("image"), build_args={},
                    cgroup_parent=parent)
                honoured = probe.ok and f"{parent.rstrip('/')}/" in probe.step_output
            _cgroup_parent_honoured[engine] = honoured
        self.details["buildkit_cgroup_parent"] = _cgroup_parent_honoured[engine]
        return _cgroup_parent_honoured[engine]

    def build(self, context: io.BytesIO, *, builder: str | None = None) -> BuildResult:
        """``docker build`` of a tar context, bounded; the image carries this run's labels.

        ``builder="legacy"`` for a course recipe that starts FROM an image ID (BuildKit takes
        only names, and a name could have been moved by learner work in the same engine)."""
        builder = builder or self.chosen_builder()
        self.details["builder"] = builder
        if builder == "buildkit":
            return self._build_buildkit(context)
        return self._build_legacy(context)

    def _build_buildkit(self, context: io.BytesIO) -> BuildResult:
        """``docker buildx build`` (:mod:`docklab.checks.buildkit_build`): labels are metadata
        to BuildKit, so they go as ``--label`` (no step); a disposable engine needs none."""
        build_args = {**self.client.api._proxy_configs.get_environment(), **self.build_args}
        result = buildkit_build.build(
            self.client, context, limits=self.limits,
            labels=None if self.disposable else self.labels("image"),
            build_args=build_args, cgroup_parent=self._cgroup_parent())
        self._retire_parent()
        self.details["build_seconds"] = round(result.seconds, 2)
        return result

    def _build_legacy(self, context: io.BytesIO) -> BuildResult:
        """``POST /build``: the engine's legacy builder, the SDK's ``images.build``."""
        api = self.client.api
        params = {
            "rm": True, "forcerm": True, "pull": False, "nocache": False, "q": False,
            "dockerfile": "Dockerfile",
            "memory": self.limits.memory, "memswap": self.limits.memory,
            "cpuperiod": 100_000, "cpuquota": int(100_000 * self.limits.cpus),
        }
        build_args = {**api._proxy_configs.get_environment(), **self.build_args}
        if build_args:
            params["buildargs"] = json.dumps(build_args)
        if not self.disposable:
            labelled = with_label_instruction(context, self.labels("image"))
            if labelled is not None:
                context = labelled  # one LABEL step instead of one step per label
            else:
                params["labels"] = json.dumps(self.labels("image"))
        parent = self._cgroup_parent()
        if parent:
            params["cgroupparent"] = parent
        result = BuildResult()
        started = time.monotonic()
        state = _BuildState(self.limits.build_log_bytes)
        try:
            # docker-py's build() has no cgroupparent/cpuquota: the same POST, with them.
            response = api._post(api._url("/build"), data=context, params=params,
                                 headers={"Content-Type": "application/tar"},
                                 stream=True, timeout=None)
            api._raise_for_status(response)
        except docker.errors.APIError as exc:
            result.error = exc.explanation or str(exc)
            result.seconds = time.monotonic() - started
            return result
        stream = CancellableStream(api._stream_helper(response, decode=True), response)
        worker = threading.Thread(target=self._read_build, args=(stream, state), daemon=True)
        worker.start()
        try:
            worker.join(self.limits.build_timeout)
        except BaseException:  # e.g. the kernel interrupted: do not leave the build running
            self._cancel_build(stream, state, worker)
            raise
        if worker.is_alive() or state.flooded:
            result.timed_out = worker.is_alive() and not state.flooded
            self._cancel_build(stream, state, worker)
        self._build_containers |= state.containers
        self.details.setdefault("build_containers", []).extend(sorted(state.containers))
        for short_id in state.containers:
            self.remove_container(short_id)
        self._retire_parent()
        result.flooded = state.flooded
        result.log = state.tail
        result.steps = [(instruction, image) for instruction, image in state.steps]
        result.stages = legacy_stages(result.steps)
        result.error = state.error or (f"the build stopped: {state.crashed}"
                                       if state.crashed else "")
        if not (result.timed_out or result.flooded or result.error):
            result.image_id = state.image_id
            if not result.image_id:
                result.error = "the engine reported no image"
        # The engine adds the build's labels as one LABEL step each, after the learner's steps.
        # Those step images are ours; close() removes them, and keeps the learner's as cache.
        for instruction, image in reversed(result.steps):
            if not is_course_label_step(instruction) or not image:
                break
            self._label_steps.append(image)
        result.seconds = time.monotonic() - started
        self.details["build_seconds"] = round(result.seconds, 2)
        return result

    @staticmethod
    def _read_build(stream, state: _BuildState) -> None:
        try:
            for chunk in stream:
                if not isinstance(chunk, dict):
                    continue
                if "stream" in chunk:
                    state.add(str(chunk["stream"]))
                if "aux" in chunk and isinstance(chunk["aux"], dict):
                    state.image_id = chunk["aux"].get("ID") or state.image_id
                if "error" in chunk:
                    detail = chunk.get("errorDetail") or {}
                    state.error = str(detail.get("message") or chunk["error"])
                    state.add(state.error + "\n")
                if state.flooded:
                    return
        except (requests.exceptions.RequestException, OSError, ValueError) as exc:
            state.crashed = exc

    def _cancel_build(self, stream: CancellableStream, state: _BuildState,
                      worker: threading.Thread) -> None:
        # Shutting the connection makes the engine cancel the build: it kills and removes the
        # running step's container. Kill it here too, in case the engine is slow to notice.
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(Exception):  # the socket may already be gone
                stream.close()
            for short_id in list(state.containers):
                try:
                    self.client.api.kill(short_id)
                except docker.errors.APIError:
                    pass
            worker.join(1)
            if not worker.is_alive() or time.monotonic() > deadline:
                break

    # -- bounded run ----------------------------------------------------------------------------

    def run(self, image_id: str, command: list[str] | None = None, *,
            mounts: list | None = None) -> RunResult:
        """``docker run --rm`` of the image with ``command`` as arguments (and ``mounts``,
        docker-py's Mount objects), bounded.

        A run that ends well having printed nothing at all is run once more: on a loaded host
        the engine has been seen to lose the whole output of a quick container (a right
        multi-stage answer's greeting came back as ''), as it loses an exec's. A program that
        really prints nothing prints nothing twice, for the cost of one more short run.
        """
        result = self._run_once(image_id, command, mounts)
        if result.ok and not result.output:
            result = self._run_once(image_id, command, mounts)
        return result

    def _run_once(self, image_id: str, command: list[str] | None,
                  mounts: list | None = None) -> RunResult:
        result = RunResult()
        started = time.monotonic()
        try:
            # No log driver: the output is read from the attached stream, up to a cap. A
            # json-file log of a flood (`yes`) keeps the engine busy writing and rotating it.
            container = self.client.containers.create(
                image_id, command, detach=True, labels=self.labels("container"),
                network_disabled=True, stdin_open=False, tty=False, mounts=mounts or [],
                **{**self.container_limits(), "log_config": LogConfig(type="none")})
        except docker.errors.APIError as exc:
            result.error = exc.explanation or str(exc)
            return result
        try:
            self._run_attached(container, result)
        finally:
            self.remove_container(container.id)
            result.seconds = time.monotonic() - started
        return result

    def _run_attached(self, container, result: RunResult) -> None:
        # Attached before it starts, so no output is missed.
        stream = container.attach(stdout=True, stderr=True, stream=True, logs=False)
        chunks: list[bytes] = []
        done = threading.Event()
        state = {"size": 0, "flooded": False}

        def read() -> None:
            try:
                for chunk in stream:
                    room = self.limits.output_bytes - state["size"]
                    chunks.append(chunk[:max(room, 0)])
                    state["size"] += len(chunk)
                    if state["size"] > self.limits.output_bytes:
                        state["flooded"] = True
                        break
            except (requests.exceptions.RequestException, OSError):
                pass
            finally:
                done.set()

        threading.Thread(target=read, daemon=True).start()
        try:
            container.start()
        except docker.errors.APIError as exc:
            result.error = exc.explanation or str(exc)
            stream.close()
            return
        finished = done.wait(self.limits.run_timeout)
        result.flooded = state["flooded"]
        result.timed_out = not finished
        # Detach first: the engine must not wait on a reader that stopped reading.
        with contextlib.suppress(Exception):
            stream.close()
        if result.flooded or result.timed_out:
            with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
                container.kill()
        try:
            result.exit_code = container.wait(timeout=15).get("StatusCode")
        except (requests.exceptions.RequestException, docker.errors.APIError):
            result.exit_code = None
        result.output = b"".join(chunks).decode("utf-8", "replace")

    def read_file(self, image_id: str, path: str) -> tuple[bytes | None, str]:
        """A file's bytes from inside the image (``docker cp``), or (None, why not)."""
        try:
            container = self.client.containers.create(
                image_id, ["true"], labels=self.labels("container"), network_disabled=True)
        except docker.errors.APIError as exc:
            return None, exc.explanation or str(exc)
        try:
            chunks, info = container.get_archive(path)
            if info.get("size", 0) > self.limits.file_bytes:
                return None, f"{path} is {info['size']} bytes, more than a cowfile needs"
            data = bytearray()
            for chunk in chunks:
                data += chunk
                if len(data) > self.limits.file_bytes + 64 * 1024:
                    return None, f"{path} is too large"
            with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
                member = tar.next()
                if member is None:
                    return None, f"{path} is empty"
                if member.issym() or member.islnk():
                    return None, f"{path} is a link to {member.linkname}, not the file itself"
                if not member.isfile():
                    return None, f"{path} is a folder, not a file"
                handle = tar.extractfile(member)
                return (handle.read() if handle else None), ""
        except docker.errors.NotFound:
            return None, f"there is no {path} in the image"
        except (docker.errors.APIError, tarfile.TarError) as exc:
            return None, f"{path} could not be read ({exc})"
        finally:
            self.remove_container(container.id)
