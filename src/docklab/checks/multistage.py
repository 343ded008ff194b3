"""Checks for the multi-stage lab: the same program, in an image without its compiler.

The lab hands out ``hello.c`` (a greeter: ``hello`` prints ``Hello, multi-stage! (a static C
program)``, ``hello Moby`` prints ``Hello, Moby! ...``) and a single-stage Dockerfile that installs
gcc on debian:12, compiles the program and ships compiler and program together (~200 MB). The
learner rewrites it as a multi-stage build: a build stage that compiles, and a final stage that
gets only the program with ``COPY --from``.

The answer is a build-context folder (``Dockerfile`` and ``hello.c``; the lab folder, where the
notebook's ``%%writefile Dockerfile`` cell writes), or the notebook itself.

Judged through the engine: the answer is built (bounded, see :mod:`docklab.checks.sandbox`); the
build's own steps (several ``FROM``, a ``COPY --from`` in the last stage) and the final image's
history (that ``COPY`` is one of its layers), the image's size, the files inside it (no ``gcc``,
``cc`` or ``/usr/lib/gcc``) and what the program prints with and without an argument.

The build stage of the solution is the lesson's (09-multi-stage) step for step, so on the learner's
engine the layer that installs gcc is built once and then comes from the engine's build cache.

Equivalent CLI: ``docklab check multistage <folder or notebook> [--json]``.

Graded (``nbgrader autograde``), this runs on a sealed engine (:mod:`docklab.grading`): a fresh
rootless dockerd holding debian:12 and busybox (the bases a final stage may use, with scratch),
loaded by image ID; the judge talks only to ``sandbox.client`` and compares sizes with debian:12
by that ID. That engine has no build cache, so every graded build installs gcc again, through
the allow-list proxy to Debian's mirror (:data:`~docklab.grading.proxy.DEBIAN_MIRROR`, given to
the build as http_proxy). Measured on a 2-core host: the solution's graded build takes 15-17 s
and its whole judgement (engine start ~0.7 s, images loaded ~2.5 s, build, runs) 19-21 s, up to
~40 s while the host is busy (load ~10), against a 0.2 s build from the learner engine's cache.
Per-container memory and pids limits are discarded there (rootless dockerd on a cgroup v1 host
runs without cgroups); this lab judges no limit, and the sandbox as a whole is bounded instead.

Hidden test (when graded): ``takes_argument`` also needs a name with a space to reach the
program as one argument (:func:`greets_as_one_argument`, from what the judge recorded).
"""

from __future__ import annotations

import os
import re

import docker.errors
import requests.exceptions

from docklab.checks.base import Criterion, Lab, Verdict, failed, not_judged, passed, unjudged
from docklab.checks.feedback import BuildLab, build_failed
from docklab.checks.sandbox import BuildResult, RunResult, Sandbox
from docklab.errors import ImageError
from docklab.grading.proxy import DEBIAN_MIRROR

BASE_IMAGE = "debian:12"
#: The small base a final stage may start FROM (besides scratch): a course image.
SMALL_IMAGE = "busybox"
SOURCE = "hello.c"
MAX_BYTES = 20 * 1000 * 1000
DEFAULT_NAME = "multi-stage"
LESSON = "09-multi-stage"
TOPICS = {
    "multi_stage": "3. Three stages: build, test, release (COPY --from)",
    "small_image": "3. The sizes side by side",
    "no_compiler": "2. One stage: the compiler ships with the program",
    "runs": "3. Three stages (the release stage)",
    "takes_argument": "ENTRYPOINT and CMD, exec form (08-building)",
}
#: Where a compiler would be in the image (Debian's gcc, its driver links, its internals).
COMPILER_PATHS = ("/usr/bin/gcc", "/usr/bin/cc", "/usr/bin/x86_64-linux-gnu-gcc-12",
                  "/usr/bin/aarch64-linux-gnu-gcc-12", "/usr/local/bin/gcc", "/usr/lib/gcc",
                  "/usr/libexec/gcc")
#: A name the hidden test greets, with a space (it must reach the program as one argument).
PROBE_NAME = "Docklab grader"
#: The words of this lab's build feedback.
BUILD = BuildLab(base=BASE_IMAGE, files=(SOURCE,), packages="gcc libc6-dev",
                 images=(BASE_IMAGE, SMALL_IMAGE), hosts=DEBIAN_MIRROR)

CRITERIA = [
    Criterion("builds", 1, "the Dockerfile builds into an image", needs_image=False),
    Criterion("multi_stage", 2, "a multi-stage build: the last stage takes the program with "
                                "COPY --from"),
    Criterion("small_image", 2, f"the final image is smaller than {MAX_BYTES // 1000 // 1000} MB"),
    Criterion("no_compiler", 2, "no compiler in the final image (no gcc, no cc)"),
    Criterion("runs", 2, "`docker run` prints the greeting for multi-stage"),
    Criterion("takes_argument", 1, "`docker run <image> Moby` greets Moby"),
]

_COPY_FROM = re.compile(r"^COPY\s+(?:--\S+\s+)*--from[= ]\S+", re.IGNORECASE)


def expected(name: str = DEFAULT_NAME) -> str:
    return f"Hello, {name}! (a static C program)"


def _mb(size: int) -> str:
    return f"{size / 1000 / 1000:.1f} MB"


def _exists(sandbox: Sandbox, image_id: str, paths: tuple[str, ...]) -> tuple[list[str], str]:
    """Which of ``paths`` exist in the image (a created, never started container; ``docker cp``)."""
    try:
        container = sandbox.client.containers.create(
            image_id, ["true"], labels=sandbox.labels("container"), network_disabled=True)
    except docker.errors.APIError as exc:
        return [], exc.explanation or str(exc)
    api = sandbox.client.api
    found = []
    try:
        for path in paths:
            # HEAD of the archive endpoint: the file's stat, without its bytes (docker cp).
            response = api.head(api._url("/containers/{0}/archive", container.id),
                                 params={"path": path})
            if response.status_code == 404:
                continue
            api._raise_for_status(response)
            found.append(path)
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        return found, str(exc)
    finally:
        sandbox.remove_container(container.id)
    return found, ""


def _verdict_stages(build: BuildResult, history: list[str]) -> Verdict:
    # Stages as the builder built them: BuildKit skips a stage the image does not need, and a
    # stage FROM scratch has no FROM step there.
    stages = build.stages
    if len(stages) < 2:
        return failed("The Dockerfile has one stage (one FROM): the compiler, apt's files and the "
                      "source all end up in the image you ship. Add a second FROM for the final "
                      "stage (scratch, or a small base like busybox) and COPY --from=<build stage> "
                      "only the compiled program into it.")
    copies = [text for text in stages[-1][1] if _COPY_FROM.match(text)]
    if not copies:
        return failed("There are several FROM lines, but the last stage copies nothing from an "
                      "earlier one: each FROM starts over from its base, so the program must be "
                      "brought across with COPY --from=<stage name> <path> <path>.")
    if not any("#(nop) COPY" in line or line.startswith("COPY") for line in history):
        return failed("The build shows a COPY --from, but the final image's history has no COPY "
                      "layer: the final image is not the stage that received the program.")
    return passed(f"{len(stages)} stages; the last one runs {copies[0]!r}.")


def _verdict_size(size: int, base_size: int) -> Verdict:
    if size >= MAX_BYTES:
        extra = ""
        if size > base_size * 1.3:
            extra = (" That is more than debian:12 alone: the final stage still holds the build "
                     "stage's compiler (FROM the build stage, or one stage only).")
        elif size >= base_size * 0.9:
            extra = (" That is about debian:12's own size: the final stage starts FROM debian:12, "
                     "a whole operating system for one program.")
        return failed(f"The final image is {_mb(size)}, over the {_mb(MAX_BYTES)} bound.{extra} "
                      "A static program needs no operating system: FROM scratch gives an image "
                      "the size of the program; FROM busybox adds a shell for a few MB.")
    return passed(f"The final image is {_mb(size)} (debian:12 alone is {_mb(base_size)}).")


def _verdict_compiler(found: list[str], why: str) -> Verdict:
    if why and not found:
        return unjudged(f"the image's files could not be looked at ({why}).")
    if found:
        return failed(f"The final image still holds a compiler: {', '.join(found)}. Install gcc "
                      "only in the build stage; the final stage's FROM starts from a base without "
                      "it, and COPY --from brings only the program across.")
    return passed("no gcc, cc or /usr/lib/gcc in the final image.")


def _run_problem(run: RunResult, limits) -> str:
    if "no such file or directory" in (run.error + run.output).lower():
        return (f"did not start: {(run.error or run.output).strip()[:300]}. The program (or, if "
                "it is not static, the C library it needs) is not where ENTRYPOINT says in the "
                "final image. Build it with -static for FROM scratch, and check the path in "
                "COPY --from and ENTRYPOINT.")
    if run.error:
        return f"did not start: {run.error}."
    if run.timed_out:
        return f"was still running after {limits.run_timeout:.0f} s, so grading stopped it."
    if run.flooded:
        return f"printed more than {limits.output_bytes // 1024} KiB, so grading stopped it."
    if run.exit_code != 0:
        return f"exited with status {run.exit_code}. It printed:\n{run.output.strip()[:500]}"
    return ""


def _verdict_run(run: RunResult, name: str | None, limits) -> Verdict:
    command = "`docker run <image>" + (f" {name}`" if name else "`")
    want = expected(name or DEFAULT_NAME)
    problem = _run_problem(run, limits)
    if problem:
        return failed(f"{command} {problem}")
    if run.output.strip() != want:
        hint = ""
        if name and expected() in run.output:
            hint = (" The argument did not reach the program: with an exec-form ENTRYPOINT "
                    "[\"/path/to/hello\"], docker run's arguments are appended to it.")
        return failed(f"{command} printed {run.output.strip()[:300]!r}, not {want!r}.{hint}")
    return passed(f"{command} printed {want!r}.")


def judge(*, sandbox: Sandbox, answer, lab: Lab) -> dict[str, Verdict]:
    """Build the answer and judge every criterion (see the module docstring)."""
    client = sandbox.client
    limits = sandbox.limits
    verdicts: dict[str, Verdict] = {}
    if answer.dockerfile is None:
        reason = " ".join(answer.problems) or (
            f"There is no Dockerfile in the folder {answer.source}: run the %%writefile "
            "Dockerfile cell, which writes it next to the notebook.")
        verdicts["builds"] = failed(reason)
        verdicts.update(not_judged(lab, "there is no Dockerfile to build."))
        return verdicts
    if answer.has_placeholder:
        verdicts["builds"] = failed(
            "The Dockerfile cell still holds the placeholder `raise NotImplementedError()`: "
            "replace it with your multi-stage Dockerfile.")
        verdicts.update(not_judged(lab, "the image did not build."))
        return verdicts
    if answer.files.get(SOURCE) != lab.lab_file(SOURCE).read_bytes():
        verdicts["builds"] = failed(
            f"{SOURCE} is missing from the folder or is not the lab's own: keep the program "
            "handed out with the lab next to the Dockerfile, unchanged.")
        verdicts.update(not_judged(lab, "the program is not the lab's."))
        return verdicts
    try:
        base = sandbox.reference(BASE_IMAGE)  # by its recorded ID: a build could move the tag
    except docker.errors.ImageNotFound as exc:
        raise ImageError(f"The course image {BASE_IMAGE} is not on this engine, so the "
                         "multi-stage lab cannot be judged.",
                         "Run `docklab images prepare`.") from exc

    build = sandbox.build(answer.tar())
    if not build.ok:
        feedback = build_failed(build, limits, BUILD)
        if answer.problems:
            feedback = " ".join(answer.problems) + " " + feedback
        verdicts["builds"] = failed(feedback)
        verdicts.update(not_judged(lab, "the image did not build, so there is nothing to "
                                   "inspect or run."))
        sandbox.details["build_log_tail"] = build.log[-4000:]
        return verdicts
    verdicts["builds"] = passed(f"built in {build.seconds:.1f} s.")
    image = client.images.get(build.image_id)
    history = [entry.get("CreatedBy") or "" for entry in image.history()]
    size = int(image.attrs.get("Size") or 0)
    sandbox.details["size"] = size
    verdicts["multi_stage"] = _verdict_stages(build, history)
    verdicts["small_image"] = _verdict_size(size, int(base.attrs.get("Size") or 0))
    verdicts["no_compiler"] = _verdict_compiler(*_exists(sandbox, build.image_id, COMPILER_PATHS))
    default = sandbox.run(build.image_id)
    verdicts["runs"] = _verdict_run(default, None, limits)
    moby = sandbox.run(build.image_id, ["Moby"])
    verdicts["takes_argument"] = _verdict_run(moby, "Moby", limits)
    probe = sandbox.run(build.image_id, [PROBE_NAME])
    sandbox.details["greeted"] = {PROBE_NAME: probe.output if probe.ok else ""}
    return verdicts


def greets_as_one_argument(details: dict) -> Verdict:
    """A name with a space reached the program as one argument (no shell split it): the hidden
    test of ``takes_argument``, from the run the judge recorded."""
    if PROBE_NAME not in (details.get("greeted") or {}):
        return unjudged(f"`docker run <image> {PROBE_NAME!r}` was not run.")
    said = details["greeted"][PROBE_NAME].strip()
    if said != expected(PROBE_NAME):
        return failed(f"`docker run <image> {PROBE_NAME!r}` printed {said[:300]!r}, not "
                      f"{expected(PROBE_NAME)!r}: the name must reach the program as one "
                      "argument, which the exec form ENTRYPOINT [\"/path/to/hello\"] does and a "
                      f"shell in between does not. (Lesson {LESSON}: {TOPICS['takes_argument']}.)")
    return passed(f"{PROBE_NAME!r} reached the program as one argument.")


LAB = Lab("multistage", "multi-stage: the program without its compiler", CRITERIA, judge,
          files=(SOURCE,), base_image=BASE_IMAGE, images=(SMALL_IMAGE,), network=DEBIAN_MIRROR,
          hidden={"takes_argument": greets_as_one_argument}, sealed_ready=True,
          lesson=LESSON, topics=TOPICS)


grade = LAB.grade
self_check = LAB.self_check


def assert_greets_as_one_argument(answer: str | os.PathLike = ".") -> None:
    """A name with a space reaches the program as one argument (no shell in between)."""
    verdict = greets_as_one_argument(grade(answer).details)
    assert verdict.passed, verdict.feedback
