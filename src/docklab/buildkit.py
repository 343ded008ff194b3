"""BuildKit through the docker CLI: the builder ``docker build`` runs on a current engine.

The SDK's ``images.build`` only speaks to the engine's legacy builder; BuildKit (cache and secret
mounts, heredocs, ``--check``, stage skipping) is driven here by the real CLI, ``docker buildx build
--progress=rawjson``, which prints BuildKit's build graph as JSON, one object per line:

- :class:`BuildKitModel` folds that progress into steps (one per Dockerfile step: its vertex,
  ``[stage n/N] INSTRUCTION``), each cached, built or failed, with its last lines of output;
- :func:`buildx_command` turns ``client.api.build``'s keyword arguments into the CLI's words;
- :func:`buildkit_available` says whether this machine's CLI has a buildx that can do it;
- :func:`isolated_cli_env` is the environment of a CLI that sees one engine and nothing of the
  user's docker configuration (used by grading, :mod:`docklab.checks.sandbox`);
- :func:`lost_a_layer` tells the containerd image store's lost-layer race (a failure of the
  engine, worth one more run) from a build's own failure.

The lessons' build view (:mod:`docklab.widgets.build`) and grading both use these.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
from pathlib import Path

__all__ = ["LOST_LAYER", "LOST_LAYER_NOTE", "BuildKitModel", "buildkit_available", "buildx_command",
           "buildx_plugin", "dockerfile_stages", "is_cancellation", "isolated_cli_env",
           "lost_a_layer"]

#: A Dockerfile step's vertex: "[2/3] RUN ...", "[build 2/5] RUN ..." in a named stage, and
#: "[ 2/12] RUN ..." (BuildKit pads the number when a stage has ten steps or more).
_VERTEX_STEP = re.compile(
    r"^\[(?:(?P<stage>[^\s\d\]][^\s\]]*) +)?\s*(?P<n>\d+)/(?P<total>\d+)\] (?P<instruction>.*)$")


class BuildKitModel:
    """Folds BuildKit's progress (``--progress=rawjson``: one JSON object per line, with
    ``vertexes``, ``statuses`` and ``logs``) into the steps the legacy builder's model makes, so
    the build view draws either. Only the Dockerfile's steps become rows; BuildKit's ``[internal]``
    vertexes (loading the Dockerfile, the context, metadata) are left out. No engine, no widget."""

    def __init__(self):
        self._steps: dict[str, dict] = {}  # vertex digest → step
        self._stages: dict[str, int] = {}  # stage name ("" when unnamed) → the order first seen
        self._inputs: set[str] = set()     # digests some vertex builds on
        self.image_id = ""
        self.tags: list[str] = []
        self.error = ""
        self.finished = False

    def feed(self, status: dict) -> None:
        """Apply one line of ``--progress=rawjson`` (decoded)."""
        for vertex in status.get("vertexes") or []:
            self._inputs.update(vertex.get("inputs") or [])
            step = self._step(vertex)
            if vertex.get("error"):
                # When one step fails, BuildKit cancels the steps running beside it: their
                # "context canceled" must not hide the error that stopped the build.
                if not self.error or is_cancellation(self.error):
                    self.error = vertex["error"].strip()
                if step is not None:
                    step["status"] = "failed"
            if step is None or step["status"] == "failed":
                continue
            if step["instruction"].upper().startswith("FROM") and vertex.get("completed"):
                step["status"] = "base"
            elif vertex.get("cached"):
                step["status"], step["cache"] = "cached", True
            elif vertex.get("completed"):
                step["status"], step["cache"] = "built", False
            elif vertex.get("started"):
                step["status"] = "running"
        for log in status.get("logs") or []:
            step = self._steps.get(log.get("vertex", ""))
            if step is not None:
                text = base64.b64decode(log.get("data") or "").decode(errors="replace")
                step["output"] = (step["output"] + [line for line in text.splitlines()
                                                    if line.strip()])[-5:]

    def _step(self, vertex: dict) -> dict | None:
        step = self._steps.get(vertex.get("digest", ""))
        if step is None:
            match = _VERTEX_STEP.match(vertex.get("name", ""))
            if match is None:
                return None
            stage = match["stage"] or ""
            self._stages.setdefault(stage, len(self._stages))
            step = self._steps[vertex["digest"]] = {
                "n": int(match["n"]), "stage": stage, "instruction": match["instruction"],
                "label": f"{stage + ' ' if stage else ''}{match['n']}/{match['total']}",
                "status": "pending", "cache": None, "output": [], "digest": vertex["digest"]}
        return step

    def ordered_steps(self) -> list[dict]:
        """The steps in Dockerfile order within a stage, stages as BuildKit first named them (it
        may name a later step's vertex before the FROM's)."""
        return sorted(self._steps.values(), key=lambda st: (self._stages[st["stage"]], st["n"]))

    def final_stage(self) -> str:
        """The stage the image is made of: the one whose step no other step builds on (the
        build's sink). "" for a build of one stage, or when no step was seen."""
        sinks = [step for step in self._steps.values() if step["digest"] not in self._inputs]
        if not sinks:
            return ""
        return max(sinks, key=lambda st: (self._stages[st["stage"]], st["n"]))["stage"]

    def stages(self) -> list[tuple[str, list[str]]]:
        """(stage name, its instructions) for every stage BuildKit built, the image's stage last.

        BuildKit builds only the stages the image needs; a stage ``FROM scratch`` has no FROM
        step (there is nothing to load)."""
        grouped: dict[str, list[str]] = {}
        for step in self.ordered_steps():
            grouped.setdefault(step["stage"], []).append(step["instruction"])
        final = self.final_stage()
        order = [name for name in grouped if name != final]
        if final in grouped:
            order.append(final)
        return [(name, grouped[name]) for name in order]

    def snapshot(self) -> dict:
        steps = self.ordered_steps()
        done = sum(step["status"] in ("cached", "built", "base") for step in steps)
        return {
            "steps": [{**{k: v for k, v in step.items() if k != "digest"},
                       "output": list(step["output"])} for step in steps],
            "total": len(steps), "done": done,
            "cache_hits": sum(step["status"] == "cached" for step in steps),
            "cache_misses": sum(step["status"] == "built" for step in steps),
            "image_id": self.image_id, "tags": list(self.tags), "error": self.error,
            "finished": self.finished, "builder": "buildkit",
        }


#: A heredoc's opening (``RUN <<EOF``, ``<<-"EOF"``): its body lines are no instructions.
_HEREDOC = re.compile(r"<<-?\s*([\"']?)([A-Za-z_]\w*)\1")
#: Where an instruction takes files from another stage: ``COPY --from=build``, and a RUN's
#: ``--mount=type=cache,from=build,...``.
_STAGE_REFERENCE = re.compile(r"--from=(\S+)|--mount=\S*?\bfrom=([^,\s]+)", re.IGNORECASE)


def dockerfile_stages(dockerfile: str) -> list[tuple[str, list[str]]]:
    """The stages a build of ``dockerfile``'s last stage is made of, as :meth:`BuildKitModel.stages`
    gives them (stage name, its instructions; the image's own stage last; only the stages it
    needs; no FROM step for ``FROM scratch`` or ``FROM <stage>``), read from the Dockerfile.

    A check reads them here rather than from the build's progress: BuildKit runs a step that a
    concurrent build on the same engine also runs once for both, and reports it under that
    build's stage name (measured on Engine 26.1: a one-stage build showed ``[build 2/2] RUN``
    of another's), which made a one-stage answer look like two stages."""
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(fileobj=io.BytesIO(dockerfile.encode()))
    images = iter(parser.parent_images)  # each FROM's image, its ARGs filled in
    stages: list[tuple[str, str, list[str]]] = []  # name, image, instructions
    heredoc_ends: list[str] = []
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"].strip()
        image = next(images, "") if instruction == "FROM" else ""
        if heredoc_ends:  # a line of a heredoc's body, or its end
            if instruction == heredoc_ends[0].upper() and not value:
                heredoc_ends.pop(0)
            continue
        if instruction == "COMMENT" or (instruction != "FROM" and not stages):
            continue
        if instruction == "FROM":
            words = [word for word in value.split() if not word.startswith("--")]  # --platform
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else ""
            stages.append((name.lower(), image, []))
            known = {stage[0] for stage in stages[:-1]}
            if image.lower() not in known | {"scratch"}:
                stages[-1][2].append(f"FROM {image}")
            continue
        stages[-1][2].append(f"{instruction} {value}")
        heredoc_ends += [match.group(2) for match in _HEREDOC.finditer(value)]
    if not stages:
        return []

    def stage_index(reference: str) -> int | None:
        reference = reference.strip("\"'").lower()
        if reference.isdigit():
            return int(reference) if int(reference) < len(stages) else None
        return next((i for i, stage in enumerate(stages) if stage[0] == reference), None)

    needed, todo = set(), [len(stages) - 1]
    while todo:
        index = todo.pop()
        if index in needed:
            continue
        needed.add(index)
        _, image, instructions = stages[index]
        references = [image] + [group for text in instructions
                                for match in _STAGE_REFERENCE.finditer(text)
                                for group in match.groups() if group]
        todo += [i for i in map(stage_index, references) if i is not None and i < index]
    several = len(stages) > 1  # BuildKit names an unnamed stage by its index then
    return [(stages[i][0] or (f"stage-{i}" if several else ""), stages[i][2])
            for i in sorted(needed)]


def is_cancellation(error: str) -> bool:
    """Whether a vertex's error only says BuildKit cancelled it (another step failed first, or
    the client went away)."""
    return error.strip().lower().endswith(("context canceled", "canceled"))


#: What the engine says when its garbage collector removed a layer while an image was being
#: unpacked onto it (a build's "exporting to image", a pull): a race of the containerd image store
#: (moby/buildkit#6521, fixed upstream in moby/buildkit#6558, March 2026; Engine 28.5 still has
#: it). The same command run again succeeds: nothing of the learner's is wrong.
LOST_LAYER = re.compile(r"parent snapshot \S+ does not exist")
LOST_LAYER_NOTE = ("\n↻ The engine lost a layer while it unpacked an image (a known race of the "
                   "containerd image store, moby/buildkit#6521), not a mistake of yours. "
                   "Running it once more.\n\n")


def lost_a_layer(output: str) -> bool:
    """Whether a failed command's output shows :data:`LOST_LAYER`'s race, worth one more try."""
    return bool(LOST_LAYER.search(output))


def buildkit_available() -> bool:
    """Can this machine's ``docker`` CLI build with BuildKit and report its graph as JSON?
    (buildx 0.15 or newer: ``--progress=rawjson``.)"""
    from docklab.doctor import buildx_version

    numbers = re.findall(r"\d+", buildx_version())
    return bool(numbers) and tuple(int(n) for n in numbers[:2]) >= (0, 15)


def buildx_command(kwargs: dict, iidfile: str) -> list[str]:
    """``docker buildx build`` for the keyword arguments of ``client.api.build`` (those the course
    uses): ``path``, or ``fileobj`` (a Dockerfile on stdin, ``-``; with ``custom_context=True``
    a tar of the whole build context on stdin), ``dockerfile`` (relative to ``path``, as the SDK
    takes it), ``tag``, ``nocache``, ``pull``, ``buildargs``, ``target``, ``labels``,
    ``network_mode`` (``--network``), and ``cgroup_parent`` (``--cgroup-parent``, which the SDK
    lacks); ``rm``/``forcerm`` mean nothing to BuildKit (it runs no intermediate containers)."""
    kwargs = {key: value for key, value in kwargs.items() if key not in ("rm", "forcerm")}
    words = [shutil.which("docker") or "docker", "buildx", "build", "--progress=rawjson",
             "--iidfile", iidfile]
    path, fileobj = kwargs.pop("path", None), kwargs.pop("fileobj", None)
    kwargs.pop("custom_context", None)  # a tar or a Dockerfile on stdin: buildx tells them apart
    if kwargs.get("dockerfile"):
        dockerfile = kwargs.pop("dockerfile")
        words += ["-f", dockerfile if os.path.isabs(dockerfile) or path is None
                  else os.path.join(path, dockerfile)]
    if kwargs.get("tag"):
        words += ["-t", kwargs.pop("tag")]
    if kwargs.pop("nocache", False):
        words.append("--no-cache")
    if kwargs.pop("pull", False):
        words.append("--pull")
    for name, value in (kwargs.pop("buildargs", None) or {}).items():
        words += ["--build-arg", f"{name}={value}"]
    if kwargs.get("target"):
        words += ["--target", kwargs.pop("target")]
    for name, value in (kwargs.pop("labels", None) or {}).items():
        words += ["--label", f"{name}={value}"]
    if kwargs.get("network_mode"):
        words += ["--network", kwargs.pop("network_mode")]
    if kwargs.get("cgroup_parent"):
        words += ["--cgroup-parent", kwargs.pop("cgroup_parent")]
    unknown = sorted(key for key, value in kwargs.items() if value not in (None, False, ""))
    if unknown:
        raise TypeError(f"BuildKit builds here do not take {', '.join(unknown)}; "
                        "use the legacy builder for them")
    if fileobj is not None and path is None:
        return [*words, "-"]
    if path is None:
        raise TypeError("build() needs path= (a folder with a Dockerfile) or fileobj=")
    return [*words, str(path)]


#: Where the docker CLI looks for its plugins after the user's own folder (docker/cli's
#: cli-plugins/manager: the default system directories on Linux).
_SYSTEM_PLUGIN_DIRS = ("/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
                       "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")


def buildx_plugin() -> Path | None:
    """The buildx plugin's binary the docker CLI would run (``docker buildx``), or None."""
    config = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    for folder in (Path(config) / "cli-plugins", *map(Path, _SYSTEM_PLUGIN_DIRS)):
        candidate = folder / "docker-buildx"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.resolve()
    return None


def isolated_cli_env(docker_host: str, folder: Path) -> dict[str, str]:
    """The environment of a ``docker`` CLI that talks to ``docker_host`` and knows nothing else.

    Its configuration is ``folder`` (made here, holding only a link to the buildx plugin): no
    registry credentials of the user (BuildKit asks the client for them when a Dockerfile names
    a registry, and a graded build's engine must never get them), no contexts, no buildx builder
    chosen by the user. TLS settings of the engine are kept (``DOCKER_TLS_VERIFY``,
    ``DOCKER_CERT_PATH``)."""
    plugins = folder / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    plugin = buildx_plugin()
    if plugin is not None and not (plugins / "docker-buildx").exists():
        (plugins / "docker-buildx").symlink_to(plugin)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder),
           "DOCKER_CONFIG": str(folder), "DOCKER_HOST": docker_host,
           # The plain image, as on an engine without attestations: no provenance to make.
           "BUILDX_NO_DEFAULT_ATTESTATIONS": "1"}
    for name in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env
