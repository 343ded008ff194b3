"""A grading build with BuildKit, the builder learners use: ``docker buildx build``, bounded.

:class:`~docklab.checks.sandbox.Sandbox` builds with this when the grading host's docker CLI has
buildx (:func:`docklab.buildkit.buildkit_available`) and the judged engine can be named to it
(``DOCKER_HOST``: a sealed engine's unix socket, or the learner's engine). What it keeps of the
legacy builder's bounds, and how:

- **time**: at ``build_timeout`` the CLI gets SIGINT (buildx cancels the solve: BuildKit kills the
  step's process), then SIGKILL if it is still there; closing its connection cancels the build
  too. BuildKit's steps are not engine containers, so none can be left in ``docker ps``;
- **output**: the steps' output (``--progress=rawjson`` logs) is counted, and the build stopped
  the same way past ``build_log_bytes``, or as soon as BuildKit clips a step's output itself
  ("[output clipped, log limit 200KiB/s reached]": it passes on at most 200 KiB/s and 2 MiB a
  step, so a flood would otherwise run on, unseen, until the time limit);
- **memory, CPU, pids**: ``--cgroup-parent`` puts every RUN under the sandbox's limited helper
  container, as the legacy builder's ``cgroupparent`` does (BuildKit has no ``--memory``);
- **network**: the proxy build arguments, as for the legacy builder; BuildKit keeps them out of
  the image's history;
- **what the CLI sees**: only the engine it is pointed at, the context as a tar on its stdin (no
  file of the answer is written on the grading host) and an empty configuration of its own (no
  registry credentials for the engine to ask for, :func:`docklab.buildkit.isolated_cli_env`).

Equivalent CLI: ``docker buildx build --progress=rawjson --iidfile ID --label ... --build-arg
http_proxy=... --cgroup-parent /docker/<helper> - < context.tar``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from docklab.buildkit import (
    BuildKitModel,
    buildx_command,
    dockerfile_stages,
    is_cancellation,
    isolated_cli_env,
)

#: How long a cancelled CLI gets to end the build itself (SIGINT) before it is killed.
CANCEL_GRACE = 10.0
#: What BuildKit writes in a step's output when it stops passing it on (speed or size).
_CLIPPED = re.compile(r"\[output clipped, log limit [^\]]*\]")


def engine_address(client) -> str | None:
    """``DOCKER_HOST`` for the CLI to reach the engine ``client`` talks to, or None when the CLI
    could not be pointed at it the same way (an ssh:// engine: the CLI's own ssh setup is not
    ours to lend)."""
    api = client.api
    base = api.base_url
    if base.startswith("http+docker://"):
        adapter = api.get_adapter(base)
        path = getattr(adapter, "socket_path", None)
        return f"unix://{path}" if path else None
    if base.startswith("http://"):
        return "tcp://" + base.removeprefix("http://")
    if base.startswith("https://") and os.environ.get("DOCKER_CERT_PATH"):
        return "tcp://" + base.removeprefix("https://")
    return None


@dataclass
class _Progress:
    """What the CLI printed so far: BuildKit's steps, their output, and its own other lines."""

    cap: int
    model: BuildKitModel = field(default_factory=BuildKitModel)
    size: int = 0
    tail: str = ""
    flooded: bool = False
    other: list[str] = field(default_factory=list)
    #: The output of each step, by vertex digest (the last 64 KiB of each).
    outputs: dict[str, str] = field(default_factory=dict)
    last_vertex: str = ""
    started: set[str] = field(default_factory=set)
    #: BuildKit's note that it clipped a step's output, if it did.
    clipped: str = ""

    def feed(self, status: dict) -> None:
        self.model.feed(status)
        for vertex in status.get("vertexes") or []:
            digest = vertex.get("digest", "")
            if vertex.get("started") and digest not in self.started:
                self.started.add(digest)
                self._text(f"#{len(self.started)} {vertex.get('name', '')}\n")
            if vertex.get("error"):
                self._text(f"ERROR: {vertex['error'].strip()}\n")
                if not is_cancellation(vertex["error"]):
                    self.last_vertex = digest or self.last_vertex
        for log in status.get("logs") or []:
            text = base64.b64decode(log.get("data") or "").decode(errors="replace")
            self.size += len(text)
            digest = log.get("vertex", "")
            self.outputs[digest] = (self.outputs.get(digest, "") + text)[-64 * 1024:]
            self.last_vertex = digest
            self._text(text)
            clipped = _CLIPPED.search(text)
            if clipped:
                self.clipped = clipped.group(0)
            if self.size > self.cap or clipped:
                self.flooded = True

    def _text(self, text: str) -> None:
        self.tail = (self.tail + text)[-64 * 1024:]

    def error(self) -> str:
        """The build's error: the failed step's, else what the CLI said last."""
        if self.model.error:
            return self.model.error
        said = [line.removeprefix("ERROR: ") for line in self.other if line.startswith("ERROR")]
        return (said or self.other or [""])[-1]


def build(client, context: io.BytesIO, *, limits, labels: dict[str, str] | None,
          build_args: dict[str, str], cgroup_parent: str | None):
    """Build the tar ``context`` on the engine of ``client`` with BuildKit → BuildResult."""
    from docklab.checks.sandbox import BuildResult

    result = BuildResult(builder="buildkit")
    started = time.monotonic()
    address = engine_address(client)
    if address is None:
        result.error = "the docker CLI cannot be pointed at this engine for a BuildKit build"
        return result
    progress = _Progress(limits.build_log_bytes)
    with tempfile.TemporaryDirectory(prefix="docklab-buildkit-") as folder:
        iidfile, metadata = str(Path(folder) / "iid"), Path(folder) / "metadata.json"
        command = buildx_command({"fileobj": context, "custom_context": True,
                                  "buildargs": build_args, "labels": labels,
                                  "cgroup_parent": cgroup_parent}, iidfile)
        command[-1:-1] = ["--metadata-file", str(metadata)]
        try:
            # Its own session: the CLI's signals are ours to send, not the terminal's.
            process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, env=isolated_cli_env(address, Path(folder) / "config"),
                start_new_session=True)
        except OSError as exc:
            result.error = f"docker buildx build could not start: {exc}"
            return result
        threading.Thread(target=_send, args=(process, context.getvalue()), daemon=True).start()
        reader = threading.Thread(target=_read, args=(process, progress), daemon=True)
        reader.start()
        try:
            deadline = started + limits.build_timeout
            while reader.is_alive() and not progress.flooded and time.monotonic() < deadline:
                reader.join(0.2)
        except BaseException:  # e.g. the kernel interrupted: do not leave the build running
            _cancel(process, reader)
            raise
        if reader.is_alive() or progress.flooded:
            result.timed_out = not progress.flooded
            _cancel(process, reader)
        code = _wait(process)
        result.flooded = progress.flooded
        result.log_clipped = progress.clipped
        result.log = progress.tail
        result.steps = [(step["instruction"], step["digest"])
                        for step in progress.model.ordered_steps()]
        dockerfile = _dockerfile_of(context)
        result.stages = (dockerfile_stages(dockerfile) if dockerfile is not None
                         else progress.model.stages())
        result.step_output = progress.outputs.get(progress.last_vertex, "")
        if not (result.timed_out or result.flooded):
            image = _image_id(metadata) or (
                Path(iidfile).read_text().strip() if Path(iidfile).is_file() else "")
            if code == 0 and image:
                result.image_id = image
            else:
                result.error = progress.error() or f"docker buildx build exited {code}"
    result.seconds = time.monotonic() - started
    return result


def _dockerfile_of(context: io.BytesIO) -> str | None:
    """The Dockerfile in the tar ``context``, or None."""
    try:
        with tarfile.open(fileobj=io.BytesIO(context.getvalue())) as tar:
            member = next((m for m in tar.getmembers()
                           if m.name in ("Dockerfile", "./Dockerfile") and m.isfile()), None)
            return tar.extractfile(member).read().decode("utf-8", "replace") if member else None
    except tarfile.TarError:
        return None


def _image_id(metadata: Path) -> str:
    """The built image's ID as the engine names it: the metadata's ``containerimage.digest``.
    With no attestations the iidfile holds the config digest, which is the image ID only in the
    graph-driver store; the containerd image store names an image by its manifest's digest
    (measured on Engine 28.5: ``No such image`` for the iidfile's)."""
    try:
        return str(json.loads(metadata.read_text()).get("containerimage.digest") or "")
    except (OSError, ValueError, AttributeError):
        return ""


def _send(process: subprocess.Popen, data: bytes) -> None:
    """The build context, a tar, on the CLI's stdin (``docker buildx build -``)."""
    with contextlib.suppress(OSError):  # the CLI stopped early: its error says why
        process.stdin.write(data)
    with contextlib.suppress(OSError):
        process.stdin.close()


def _read(process: subprocess.Popen, progress: _Progress) -> None:
    """Fold the CLI's stderr (BuildKit's progress, one JSON object a line) until it ends; past
    the output's cap, only drain it."""
    for raw in process.stderr:
        if progress.flooded:
            continue  # keep draining: a CLI blocked on a full pipe would not hear SIGINT
        line = raw.decode(errors="replace").strip()
        try:
            status = json.loads(line)
        except ValueError:
            if line:
                progress.other = (progress.other + [line])[-10:]
            continue
        if isinstance(status, dict):
            progress.feed(status)


def _cancel(process: subprocess.Popen, reader: threading.Thread) -> None:
    """Stop the build: SIGINT makes buildx cancel the solve (BuildKit then kills the running
    step's process) and exit; a CLI still there after :data:`CANCEL_GRACE` is killed, which
    closes its connection to the engine, and BuildKit cancels a build whose client is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(CANCEL_GRACE)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    reader.join(5)


def _wait(process: subprocess.Popen) -> int | None:
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return process.wait(5)
    finally:
        with contextlib.suppress(OSError):
            process.stderr.close()
