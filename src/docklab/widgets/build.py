"""Build progress: per-step progress, cache hits and misses, and a progress bar.

    from docklab.widgets.build import BuildView
    view = BuildView(lesson.client, lesson=lesson)
    view                                               # show it, then build (in the background):
    view.build(path="app", tag="my-app:1")             # docker build -t my-app:1 app
    image_id = view.wait()                             # optional: block until it is done

Two builders, as an engine has them:

``buildkit`` (what ``docker build`` runs on a current engine)
    ``docker buildx build --progress=rawjson``, the real CLI against the lesson's engine: BuildKit
    reports its build graph as *vertexes* (one per Dockerfile step, ``[stage n/N] INSTRUCTION``,
    plus its own ``[internal]`` work), each started, completed, ``cached`` or failed, and the
    output of each. Needs the CLI's buildx plugin 0.15 or newer (``make lab`` installs it).
``legacy`` (the engine's old builder, which the SDK's ``images.build`` uses)
    the low-level ``client.api.build(decode=True)``: each ``Step n/N`` of its log becomes a row,
    "cache" when it reused a layer (``---> Using cache``), "built" when it ran a container.

``BuildView(builder="auto")`` (the default) takes BuildKit where the CLI has it, else the legacy
builder. The build runs in a daemon thread, so the kernel stays free. With a lesson, the image
carries the lesson's labels and is removed by its cleanup.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import threading
from pathlib import Path

import docker
import ipywidgets as w
import traitlets as t

from docklab.buildkit import BuildKitModel, buildkit_available, buildx_command, lost_a_layer
from docklab.widgets._base import COLORS, ENGINE_ERRORS, EngineView, badge, esc, table

__all__ = ["BuildKitModel", "BuildModel", "BuildView", "buildkit_available"]

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_DONE_ID = re.compile(r"^ ---> ([0-9a-f]{12})$")
_RUNNING = re.compile(r"^ ---> Running in ([0-9a-f]{12})$")
_BUILT = re.compile(r"^Successfully built ([0-9a-f]{12})$")
_TAGGED = re.compile(r"^Successfully tagged (\S+)$")


class BuildModel:
    """Folds the legacy builder's JSON messages into steps. No engine, no widget."""

    def __init__(self):
        self.steps: list[dict] = []
        self.total = 0
        self.image_id = ""
        self.tags: list[str] = []
        self.error = ""
        self.finished = False

    @property
    def current(self) -> dict | None:
        return self.steps[-1] if self.steps else None

    def feed(self, chunk: dict) -> None:
        """Apply one decoded message of ``client.api.build(decode=True)``."""
        if "error" in chunk:
            self.error = chunk.get("error", "").strip()
            if self.current:
                self.current["status"] = "failed"
            self.finished = True
            return
        if "aux" in chunk and isinstance(chunk["aux"], dict) and chunk["aux"].get("ID"):
            self.image_id = chunk["aux"]["ID"]
            return
        if "status" in chunk and "stream" not in chunk:  # pulling the base image
            if self.current:
                self._output(f"{chunk.get('status')} {chunk.get('progress', '')}".strip())
            return
        for line in (chunk.get("stream") or "").splitlines():
            self._line(line.rstrip())

    def _line(self, line: str) -> None:
        if not line.strip():
            return
        step = _STEP.match(line)
        if step:
            self._close_step()
            self.total = int(step.group(2))
            instruction = step.group(3)
            self.steps.append({"n": int(step.group(1)), "instruction": instruction,
                               "status": "running", "cache": None, "output": []})
            return
        current = self.current
        if line == " ---> Using cache" and current:
            current["status"], current["cache"] = "cached", True
            return
        running = _RUNNING.match(line)
        if running and current:
            current["cache"] = False
            current["container"] = running.group(1)
            return
        done = _DONE_ID.match(line)
        if done and current:
            current["layer"] = done.group(1)
            if current["instruction"].upper().startswith("FROM"):
                current["status"] = "base"
            elif current["status"] != "cached":
                current["status"] = "built"
            return
        built = _BUILT.match(line)
        if built:
            self._close_step()
            self.image_id = self.image_id or built.group(1)
            self.finished = True
            return
        tagged = _TAGGED.match(line)
        if tagged:
            self.tags.append(tagged.group(1))
            return
        if line.startswith("Removing intermediate container"):
            return
        self._output(line)

    def _output(self, line: str) -> None:
        if self.current is not None:
            self.current["output"] = (self.current["output"] + [line])[-5:]

    def _close_step(self) -> None:
        if self.current and self.current["status"] == "running":
            self.current["status"] = "built"

    def snapshot(self) -> dict:
        done = sum(step["status"] in ("cached", "built", "base") for step in self.steps)
        return {
            "steps": [dict(step, output=list(step["output"])) for step in self.steps],
            "total": self.total, "done": done,
            "cache_hits": sum(step["status"] == "cached" for step in self.steps),
            "cache_misses": sum(step.get("cache") is False for step in self.steps),
            "image_id": self.image_id, "tags": list(self.tags), "error": self.error,
            "finished": self.finished, "builder": "legacy",
        }


_STATUS_COLOR = {"running": COLORS["accent"], "cached": COLORS["ok"], "built": COLORS["warn"],
                 "base": COLORS["muted"], "failed": COLORS["bad"], "pending": "#bbb"}
_STATUS_TEXT = {"running": "running…", "cached": "cache hit", "built": "built (cache miss)",
                "base": "base image", "failed": "failed"}


class BuildView(EngineView):
    """Live progress of one ``docker build``: steps, cache hits vs misses, a progress bar."""

    build_state = t.Dict(help="steps (n, instruction, status, cache, output), total, done, "
                         "cache_hits, cache_misses, image_id, tags, error, finished").tag(sync=True)
    _state_traits = ("build_state",)
    _title = "Build progress"

    def __init__(self, client: docker.DockerClient | None = None, *, lesson=None,
                 builder: str = "auto", **kwargs):
        if builder not in ("auto", "buildkit", "legacy"):
            raise ValueError(f"builder is 'auto', 'buildkit' or 'legacy', not {builder!r}")
        if builder == "auto":
            builder = "buildkit" if buildkit_available() else "legacy"
        #: "buildkit" (``docker buildx build``) or "legacy" (the SDK's ``client.api.build``).
        self.builder = builder
        self.progress = w.IntProgress(value=0, min=0, max=1, description="steps",
                                      bar_style="info", layout=w.Layout(width="420px"))
        super().__init__(client, lesson=lesson, controls=[self.progress], **kwargs)
        self.model = self._new_model()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._done.set()
        self._publish()

    def _new_model(self) -> BuildModel | BuildKitModel:
        return BuildKitModel() if self.builder == "buildkit" else BuildModel()

    def feed(self, chunk: dict) -> None:
        """Apply one message of the build stream and redraw (the thread calls this)."""
        self.model.feed(chunk)
        self._publish()

    def _publish(self) -> None:
        snap = self.model.snapshot()
        self.progress.max = max(snap["total"], 1)
        self.progress.value = snap["done"]
        self.progress.bar_style = ("danger" if snap["error"] else
                                   "success" if snap["finished"] else "info")
        self.build_state = snap

    def build(self, **kwargs) -> None:
        """Start ``docker build`` in the background; arguments as ``client.api.build``.

        ``path`` (a folder with a Dockerfile) or ``fileobj``, ``tag``, ``nocache``, ``buildargs``,
        ... (BuildKit takes those :func:`buildx_command` lists). With a lesson, its labels are
        added and intermediate containers are always removed.
        """
        if not self._done.is_set():
            raise RuntimeError("a build is still running in this view; wait() for it first")
        if self._lesson is not None:
            kwargs["labels"] = {**(kwargs.get("labels") or {}),
                                **self._lesson.labels(kind="image")}
        kwargs.setdefault("rm", True)
        kwargs.setdefault("forcerm", True)
        self.model = self._new_model()
        self._done.clear()
        self.status = "live"
        self._publish()
        run = self._run_buildkit if self.builder == "buildkit" else self._run
        self._thread = threading.Thread(target=run, args=(kwargs,), name="docklab-build",
                                        daemon=True)
        self._thread.start()

    def _run(self, kwargs: dict) -> None:
        try:
            for chunk in self.client.api.build(decode=True, **kwargs):
                if self._closed:
                    break
                self.feed(chunk)
            if not self.model.finished:
                self.model.finished = True
                self._publish()
            if not self._closed:
                self.status = "stopped"
        except ENGINE_ERRORS as exc:
            self._engine_failed(exc)
            self.model.error = self.model.error or str(exc).splitlines()[0][:200]
            self._publish()
        finally:
            self._done.set()

    def _run_buildkit(self, kwargs: dict) -> None:
        try:
            self._buildkit_once(kwargs)
            if lost_a_layer(self.model.error) and not self._closed:
                # The engine's own race, not the learner's Dockerfile: the view starts over.
                fileobj = kwargs.get("fileobj")
                if fileobj is not None:
                    fileobj.seek(0)
                self.model = self._new_model()
                self._publish()
                self._buildkit_once(kwargs)
        finally:
            self._done.set()

    def _buildkit_once(self, kwargs: dict) -> None:
        """``docker buildx build --progress=rawjson``: the CLI writes BuildKit's progress to
        stderr, one JSON object per line, and the image's ID to the ``--iidfile``."""
        fileobj = kwargs.get("fileobj")
        with tempfile.TemporaryDirectory(prefix="docklab-build-") as folder:
            iidfile = str(Path(folder) / "iid")
            try:
                command = buildx_command(kwargs, iidfile)
                process = subprocess.Popen(
                    command, stdin=subprocess.PIPE if fileobj is not None else subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            except (OSError, TypeError) as exc:
                self.model.error, self.model.finished = str(exc), True
                self._publish()
                return
            if fileobj is not None:
                threading.Thread(target=_send, args=(process, fileobj), daemon=True).start()
            other: list[str] = []  # what the CLI printed that is not progress: its error, if any
            try:
                for raw in process.stderr:
                    if self._closed:
                        process.kill()
                        break
                    line = raw.decode(errors="replace").strip()
                    try:
                        status = json.loads(line)
                    except ValueError:
                        other = (other + [line])[-5:] if line else other
                        continue
                    if isinstance(status, dict):
                        self.feed(status)
                code = process.wait()
                if code == 0 and Path(iidfile).is_file():
                    self.model.image_id = Path(iidfile).read_text().strip()
                    self.model.tags = [kwargs["tag"]] if kwargs.get("tag") else []
                elif not self.model.error:
                    self.model.error = " ".join(other)[-300:] or f"docker buildx build exited {code}"
                self.model.finished = True
                self._publish()
                if not self._closed:
                    self.status = "stopped"
            finally:
                if process.poll() is None:
                    process.kill()
                process.stderr.close()

    def wait(self, timeout: float | None = 600) -> str:
        """Block until the build is done; return the image id ("" if it failed)."""
        self._done.wait(timeout)
        return "" if self.model.error else self.model.image_id

    def _render(self) -> str:
        s = self.build_state or {}
        if not s.get("steps"):
            return "<i>No build yet: call .build(path=..., tag=...).</i>"
        rows = []
        for step in s["steps"]:
            status = step["status"]
            out = "<br>".join(esc(line[:120]) for line in step["output"][-2:])
            rows.append([esc(step.get("label") or f"{step['n']}/{s['total']}"),
                         f"<code>{esc(step['instruction'][:80])}</code>",
                         badge(_STATUS_TEXT.get(status, status), _STATUS_COLOR.get(status, "#999")),
                         f"<span style='color:#666;font-size:90%'>{out}</span>"])
        for n in range(len(s["steps"]) + 1, s["total"] + 1):
            rows.append([f"{n}/{s['total']}", "", badge("pending", _STATUS_COLOR["pending"]), ""])
        builder = ("BuildKit" if s.get("builder") == "buildkit" else "legacy builder")
        summary = (f"<p>{builder}: {s['done']} of {s['total']} steps done · "
                   f"{badge(str(s['cache_hits']) + ' cache hits', COLORS['ok'])} "
                   f"{badge(str(s['cache_misses']) + ' cache misses', COLORS['warn'])}")
        if s.get("image_id"):
            summary += f" · image <code>{esc(s['image_id'][:19])}</code> {esc(' '.join(s['tags']))}"
        summary += "</p>"
        if s.get("error"):
            summary += f"<p style='color:{COLORS['bad']}'><b>build failed:</b> {esc(s['error'])}</p>"
        return summary + table(["step", "instruction", "", "output"], rows, cls="docklab-build",
                               nowrap=3)


def _send(process: subprocess.Popen, fileobj) -> None:
    """Feed ``fileobj`` (a Dockerfile, ``docker build -``) to the CLI's stdin."""
    try:
        data = fileobj.read()
        process.stdin.write(data.encode() if isinstance(data, str) else data)
    except OSError:
        pass  # the CLI stopped early: its error says why
    finally:
        try:
            process.stdin.close()
        except OSError:
            pass
