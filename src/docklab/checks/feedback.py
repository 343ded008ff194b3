"""Feedback shared by the labs that build a learner's Dockerfile: why the build failed.

Every such lab reads the same engine messages (a step timed out, COPY found nothing, apt-get asked
a question, the base image is not there); what differs is the lab's own vocabulary: the image it
builds FROM, the files it hands out, the packages it installs, the course images and hosts a
graded build can reach. A lab describes those once in a :class:`BuildLab` and asks
:func:`build_failed` for the feedback, instead of borrowing another lab's text:

    SECURITY_BUILD = BuildLab(base="python:3.11-slim", files=("app.py",))
    verdicts["builds"] = failed(build_failed(build, sandbox.limits, SECURITY_BUILD))
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: BuildKit's COPY of a missing file: 'failed to compute cache key: ... "/x": not found' (Engine
#: 20.10's BuildKit: '"/x" not found: not found').
_BUILDKIT_NOT_FOUND = re.compile(r'"[^"]*":? not found')


@dataclass(frozen=True)
class BuildLab:
    """What a lab's Dockerfile builds on, copies and installs: the words of its feedback."""

    #: The image the lab builds FROM (``debian:12``).
    base: str
    #: The files handed out with the lab that the Dockerfile copies (``hello.c``).
    files: tuple[str, ...] = ()
    #: What the lab installs with apt-get (``gcc libc6-dev``); "" when it installs nothing.
    packages: str = ""
    #: The images a graded build may start FROM (besides ``scratch``); the base when empty.
    images: tuple[str, ...] = ()
    #: The hosts a graded build may reach (Debian's mirror); none when empty.
    hosts: tuple[str, ...] = ()

    @property
    def context(self) -> str:
        return ", ".join(("the Dockerfile", *self.files))

    @property
    def bases(self) -> str:
        return ", ".join(self.images or (self.base,))


def last_lines(build, count: int = 6) -> str:
    """What the last step of a build printed: its own output, not the engine's bookkeeping."""
    error = build.error.strip()
    if getattr(build, "builder", "legacy") == "buildkit":
        printed = [line for line in build.step_output.splitlines() if line.strip()]
        return "\n".join(printed[-count:]) or "(nothing)"
    last_step = build.log.rsplit("\nStep ", 1)[-1].splitlines()
    printed = [line for line in last_step[1:]
               if line.strip() and line.strip() != error and not line.startswith(" ---> ")
               and not line.startswith("Removing intermediate container")]
    return "\n".join(printed[-count:]) or "(nothing)"


def _network(lab: BuildLab) -> str:
    if lab.hosts:
        return (f"when graded, a build reaches only {', '.join(lab.hosts)} (through a proxy it "
                "is given as http_proxy), nothing else on the internet")
    return ("when graded, a build reaches no network at all (this lab's Dockerfile needs none: "
            "everything it uses is in the base image and the lab's files)")


def build_failed(build, limits, lab: BuildLab) -> str:
    """Why ``build`` (a :class:`~docklab.checks.sandbox.BuildResult`) gave no image."""
    if build.timed_out:
        return (f"The build did not finish within {limits.build_timeout:.0f} s, so grading "
                "stopped it and removed its container. A RUN that never ends (say `sleep 1000`, "
                "or a command waiting for an answer on its input) holds the whole build.")
    if build.flooded and getattr(build, "log_clipped", ""):
        return (f"The build printed more than BuildKit passes on ({build.log_clipped}), so "
                "grading stopped it. A RUN that prints without end (like `yes`) never finishes.")
    if build.flooded:
        return (f"The build printed more than {limits.build_log_bytes // 1024 // 1024} MiB, so "
                "grading stopped it. A RUN that prints without end (like `yes`) never finishes.")
    error = build.error.strip()
    lowered = error.lower()
    log = build.log
    tail = last_lines(build)
    first = lab.files[0] if lab.files else "your file"
    if "outside the build context" in error or "outside of the build context" in error:
        return (f"The engine refused to copy a file: {error}. COPY and ADD only see the build "
                f"context, the folder sent to the engine (here: {lab.context}); ../ paths and "
                "links that point outside it cannot be copied. Keep "
                f"{first} next to the Dockerfile and write COPY {first} ...")
    if "/bin/sh" in error and "no such file or directory" in lowered:
        return (f"A RUN step found no shell: {error}. RUN needs /bin/sh in the stage it runs in, "
                "and scratch (or an image without a shell) has none: run commands in a stage "
                "that has one and COPY --from the result into the last stage.")
    if ("not found in build context" in error or "no such file or directory" in lowered
            or _BUILDKIT_NOT_FOUND.search(error)):
        return (f"COPY found no such file: {error}. A plain COPY reads the build context (here: "
                f"{lab.context}); COPY --from=<stage> reads that stage's files. A link pointing "
                "outside the context leads nowhere inside it.")
    if "Do you want to continue?" in log:
        packages = lab.packages or "<package>"
        return ("apt-get install stopped to ask 'Do you want to continue? [Y/n]' and, with "
                f"nobody to answer during a build, gave up. Add -y: apt-get install -y "
                f"{packages}.")
    if "apt-get: not found" in log or "apt-get: command not found" in log:
        return ("The image this RUN runs in has no apt-get, so nothing can be installed with it: "
                f"this lab builds FROM {lab.base}, whose package manager is apt. Last lines:\n"
                + tail)
    if any(sign in log for sign in ("Failed to fetch", "Temporary failure resolving",
                                    "Could not resolve", "403  Forbidden", "403 Forbidden")):
        return (f"A download in the build failed: {_network(lab)}. Last lines:\n{tail}")
    if "Unable to locate package" in log:
        what = lab.packages or "the package"
        return (f"apt-get could not find {what}: its package lists were empty or stale. Run "
                "apt-get update in the same RUN, just before apt-get install. Last lines:\n"
                + tail)
    if "unknown instruction" in lowered:
        return (f"The Dockerfile has a line Docker does not know: {error}. Every line starts "
                "with an instruction (FROM, ARG, RUN, COPY, ENV, ENTRYPOINT, CMD ...); a "
                "command that goes on over several lines needs a \\ at the end of each line.")
    if ("pull access denied" in error or "manifest" in error and "not found" in lowered
            or "manifest unknown" in lowered or "registry-1.docker.io" in error
            or "no such host" in lowered):
        return (f"The base image could not be found: {error}. A graded build has only the "
                f"course's images to start FROM ({lab.bases}, and scratch); it cannot pull from "
                "a registry.")
    # The legacy builder, BuildKit (current), BuildKit in Engine 20.10.
    if any(sign in error for sign in ("returned a non-zero code", "did not complete successfully",
                                      "executor failed running")):
        return f"A RUN command failed: {error}. The last lines it printed:\n{tail}"
    if not error:
        error = "the engine reported no image"
    return f"The image did not build: {error}\nLast lines of the build:\n{tail}"
