"""Checks for the mobysay lab: a Dockerfile that makes Moby the whale say things.

The lab asks for an image that

- starts FROM debian:12, with ``ARG DEBIAN_FRONTEND=noninteractive``;
- runs ``apt-get update`` and ``apt-get install cowsay`` in ONE ``RUN``;
- copies the lab's ``moby.cow`` into ``/usr/share/cowsay/cows/`` and adds ``/usr/games`` to PATH;
- runs ``cowsay -f moby.cow`` from an exec-form ENTRYPOINT, with "Whale hello there" in CMD as
  the default message that ``docker run mobysay <message>`` replaces.

The reference answer is in ``grader/source/mobysay/`` (instructors only: the learner's image holds
no solution, and this feedback names what is expected without writing the answer's lines).

Everything is judged through the engine, not by reading the Dockerfile's text: the answer is built
(bounded, see :mod:`docklab.checks.sandbox`), then the image's config (Env, Entrypoint, Cmd), its
history (one entry per step), its layers (compared with debian:12's), the cowfile inside it, and
what it prints when run with and without a message.

    from docklab.checks import mobysay
    mobysay.grade(".")                  # the report: one row per check, a score
    mobysay.grade(".").assert_passed("builds", "base_debian")

Equivalent CLI: ``docklab check mobysay <folder or notebook> [--json]``.
"""

from __future__ import annotations

import json
import os
import random
import re
from concurrent.futures import ThreadPoolExecutor

import docker.errors

from docklab.checks.base import Criterion, Lab, Verdict, failed, not_judged, passed, unjudged
from docklab.checks.feedback import BuildLab, build_failed
from docklab.checks.history import legacy_form
from docklab.checks.sandbox import RunResult, Sandbox
from docklab.errors import ImageError
from docklab.grading.proxy import DEBIAN_MIRROR

BASE_IMAGE = "debian:12"
COWFILE = "moby.cow"
COWFILE_PATH = "/usr/share/cowsay/cows/moby.cow"
DEFAULT_MESSAGE = "Whale hello there"
#: Lines of Moby's drawing (grader/source/mobysay/moby.cow) that any other cow lacks.
WHALE_MARKS = ("[==][==][==]", "~~~^~~~^~~~^~~~^")
#: The lesson that teaches what this lab practises, and its topic behind each check.
LESSON = "08-building"
TOPICS = {
    "base_debian": "FROM and base images",
    "frontend_is_arg": "ARG and ENV",
    "apt_chained": "the build cache",
    "cowfile_installed": "COPY and the build context",
    "path_has_games": "ENV",
    "default_message": "ENTRYPOINT and CMD",
    "custom_message": "ENTRYPOINT and CMD, exec and shell form",
    "entrypoint_exec_form": "exec and shell form",
}
#: Messages the image is also run with while grading, beyond the visible checks' own: words a
#: shell would change (``$5``, a lone ``*``), which must reach cowsay untouched.
PROBES = (("Costs", "$5", "&", "`more`"), ("*", "$(id)", "'quoted'"))
#: debian:12's own PATH: extending PATH keeps these.
DEBIAN_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")

CRITERIA = [
    Criterion("builds", 1, "the Dockerfile builds into an image", needs_image=False),
    Criterion("base_debian", 1, "the image starts FROM debian:12"),
    Criterion("frontend_is_arg", 1, "DEBIAN_FRONTEND=noninteractive is a build ARG, not an ENV"),
    Criterion("apt_chained", 1, "apt-get update and apt-get install cowsay share one RUN"),
    Criterion("cowfile_installed", 1, "moby.cow is in /usr/share/cowsay/cows/, unchanged"),
    Criterion("path_has_games", 1, "PATH still has debian's folders and gains /usr/games"),
    Criterion("default_message", 1, "`docker run mobysay` shows Moby saying Whale hello there"),
    Criterion("custom_message", 2, "`docker run mobysay <message>` shows Moby saying <message>"),
    Criterion("entrypoint_exec_form", 1, "ENTRYPOINT is the exec form of cowsay -f moby.cow"),
]

#: The words of this lab's build feedback (:mod:`docklab.checks.feedback`).
BUILD = BuildLab(base=BASE_IMAGE, files=(COWFILE,), packages="cowsay", hosts=DEBIAN_MIRROR)

_NOP = "#(nop)"
_ARG_PREFIX = re.compile(r"^\|\d+\s+")
_UPDATE = re.compile(r"\bapt(?:-get)?\s+(?:-\S+\s+)*update\b")
_INSTALL = re.compile(r"\bapt(?:-get)?\s+(?:-\S+\s+)*install\b[^;&|]*?\bcowsay\b")


# -- what the engine tells about the image ------------------------------------------------------

def _steps(image, base) -> list[str]:
    """``created_by`` of every step the answer added on top of its base, oldest first (as the
    legacy builder words it, whichever builder made the image)."""
    history = [legacy_form(entry.get("CreatedBy") or "") for entry in image.history()]
    base_count = len(base.history()) if base is not None else 0
    ours = history[: max(len(history) - base_count, 0)] if base_count else history
    return list(reversed(ours))


def _run_command(created_by: str) -> str:
    """The shell command of a RUN step as history shows it, without the ARG values prefix."""
    text = created_by
    if _ARG_PREFIX.match(text):
        text = text[text.find("/bin/sh -c ") :] if "/bin/sh -c " in text else text
    return text.removeprefix("/bin/sh -c ").strip()


def _nearest_tagged_ancestor(client, image, build=None):
    """The image a build started FROM: the first tagged image up the chain of step images (the
    legacy builder's), else the image the build's FROM named (BuildKit records no parent)."""
    if not image.attrs.get("Parent") and build is not None and build.base:
        try:
            return client.images.get(build.base)
        except (docker.errors.ImageNotFound, docker.errors.APIError):
            return None
    seen = 0
    parent_id = image.attrs.get("Parent")
    while parent_id and seen < 500:
        try:
            parent = client.images.get(parent_id)
        except docker.errors.NotFound:
            return None
        if parent.tags:
            return parent
        parent_id = parent.attrs.get("Parent")
        seen += 1
    return None


def _env(image) -> dict[str, str]:
    pairs = (item.partition("=") for item in image.attrs.get("Config", {}).get("Env") or [])
    return {key: value for key, _, value in pairs}


# -- the verdicts -------------------------------------------------------------------------------

def _verdict_base(image, base, ancestor) -> Verdict:
    base_layers = base.attrs["RootFS"].get("Layers") or []
    layers = image.attrs["RootFS"].get("Layers") or []
    named = (ancestor.tags[0] if ancestor is not None else None)
    if ancestor is not None and ancestor.id != base.id:
        return failed(f"Your image starts FROM {named}; this lab builds on {BASE_IMAGE}: its "
                      "apt-get, /usr/games and the cowsay package are Debian's.")
    if layers[: len(base_layers)] != base_layers:
        return failed(f"Your image's first layers are not those of {BASE_IMAGE}: FROM must name "
                      f"{BASE_IMAGE} (a tag picks a major version, and gets its security "
                      "updates).")
    return passed(f"built on {BASE_IMAGE}: your layers sit on top of its "
                  f"{len(base_layers)} layer(s).")


def _verdict_frontend(env: dict, steps: list[str]) -> Verdict:
    if "DEBIAN_FRONTEND" in env:
        return failed("DEBIAN_FRONTEND is set with ENV, so it stays in the image: every "
                      "container started from mobysay, even an interactive shell, still has "
                      "DEBIAN_FRONTEND=noninteractive. ARG DEBIAN_FRONTEND=noninteractive only "
                      "lasts during the build, which is the only time apt needs it.")
    args = [s for s in steps if _NOP in s and re.search(r"\bARG\s+DEBIAN_FRONTEND\b", s)]
    runs = [s for s in steps if _NOP not in s]
    apt_runs = [s for s in runs if re.search(r"\bapt(-get)?\b", s)]
    saw_arg = [s for s in apt_runs
               if _ARG_PREFIX.match(s) and "DEBIAN_FRONTEND=noninteractive" in s.split("/bin/sh")[0]]
    if args:
        if not any("DEBIAN_FRONTEND=noninteractive" in a for a in args):
            return failed("ARG DEBIAN_FRONTEND is declared without the value apt needs: write "
                          "ARG DEBIAN_FRONTEND=noninteractive.")
        if apt_runs and len(saw_arg) < len(apt_runs):
            return failed("ARG DEBIAN_FRONTEND=noninteractive comes after the RUN with apt-get, "
                          "so apt never saw it: a build argument counts only from its line "
                          "down. Put the ARG right after FROM.")
        return passed("ARG DEBIAN_FRONTEND=noninteractive: apt ran without questions, and the "
                      "variable is gone from containers.")
    if any("DEBIAN_FRONTEND=noninteractive" in _run_command(s) for s in apt_runs):
        return failed("DEBIAN_FRONTEND=noninteractive is set inside the RUN command: that works "
                      "for that one command, but the lab asks for ARG DEBIAN_FRONTEND="
                      "noninteractive after FROM, so every RUN of the build gets it and no "
                      "container does.")
    return failed("There is no ARG DEBIAN_FRONTEND=noninteractive: without it apt-get may stop a "
                  "build to ask questions nobody can answer. Declare it with ARG (not ENV), "
                  "right after FROM.")


def _verdict_apt(steps: list[str]) -> Verdict:
    runs = [_run_command(s) for s in steps if _NOP not in s]
    for command in runs:
        update, install = _UPDATE.search(command), _INSTALL.search(command)
        if update and install and update.start() < install.start():
            return passed("apt-get update and apt-get install cowsay run in one RUN, so the "
                          "package lists are always fresh for the install.")
    updates = [c for c in runs if _UPDATE.search(c)]
    installs = [c for c in runs if _INSTALL.search(c)]
    if updates and installs:
        return failed("apt-get update runs in its own RUN: that layer is cached, so a later "
                      "build reuses old package lists while the install step runs again, and "
                      "apt-get install can fetch stale or vanished versions. Chain the two with "
                      "&& in one RUN.")
    if installs:
        return failed("cowsay is installed without apt-get update in the same RUN; debian:12 "
                      "ships without package lists. Chain the update and the install with && in "
                      "one RUN.")
    return failed("No RUN installs cowsay with apt-get: the lab installs Debian's cowsay "
                  "package, apt-get update and apt-get install -y chained with && in one RUN.")


def _verdict_cowfile(sandbox: Sandbox, image_id: str, expected: bytes) -> Verdict:
    data, why = sandbox.read_file(image_id, COWFILE_PATH)
    if data is None:
        return failed(f"moby.cow is not at {COWFILE_PATH}: {why}. cowsay -f looks for cowfiles "
                      "in that folder. COPY the lab's file into it (a COPY destination that ends "
                      "in / is a folder, and the file keeps its name).")
    if data != expected:
        return failed(f"{COWFILE_PATH} is not the lab's moby.cow ({len(data)} bytes instead of "
                      f"{len(expected)}): copy the file handed out with the lab, unchanged.")
    return passed(f"{COWFILE_PATH} is the lab's moby.cow.")


def _verdict_path(env: dict) -> Verdict:
    path = env.get("PATH")
    if path is None:
        return failed("The image has no PATH at all: extend the one debian:12 sets (an ENV "
                      "line can refer to it as $PATH).")
    folders = path.split(":")
    if "/usr/games" not in folders:
        return failed(f"PATH is {path}, without /usr/games, where Debian puts cowsay: add it "
                      "with ENV, which can refer to the PATH debian:12 sets as $PATH (an ENV "
                      "lasts into every container).")
    missing = [f for f in DEBIAN_PATH if f not in folders]
    if missing:
        return failed(f"PATH is {path}: it lost {', '.join(missing)}. ENV PATH=/usr/games "
                      "replaces PATH; to extend the one debian:12 sets, refer to it as $PATH in "
                      "the same line.")
    return passed(f"PATH={path}")


def _has_whale(output: str) -> bool:
    return all(mark in output for mark in WHALE_MARKS)


def bubble(output: str) -> str:
    """The words in cowsay's speech bubble (wrapped lines joined by a space), or ""."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("_")), None)
    if start is None:
        return ""
    words = []
    for line in lines[start + 1:]:
        if line.strip().startswith("-"):
            break
        inner = line.strip()
        if len(inner) >= 2 and inner[0] in "<|/\\" and inner[-1] in ">|/\\":
            inner = inner[1:-1]
        words.append(inner.strip())
    return " ".join(w for w in words if w)


def _shown(output: str, lines: int = 8) -> str:
    text = "\n".join(output.rstrip().splitlines()[:lines])
    return text if text else "(nothing)"


def _entrypoint_problem(config: dict) -> str:
    entrypoint = config.get("Entrypoint") or []
    if not entrypoint:
        return ("The image has no ENTRYPOINT, only CMD: a message given to docker run replaces "
                "the whole CMD, so Docker tries to run the message itself as a program. Put "
                "cowsay -f moby.cow in ENTRYPOINT and only the default message in CMD.")
    if entrypoint[:2] == ["/bin/sh", "-c"] and len(entrypoint) == 3:
        if entrypoint[2].lstrip().startswith("["):
            return ("ENTRYPOINT looks like JSON but is not valid JSON (double quotes only, "
                    "commas between items), so Docker ran the text as a shell command: "
                    f"{entrypoint[2]!r}. Write it as a JSON array: ENTRYPOINT [\"prog\", \"arg\", "
                    "...], each item in double quotes.")
        return ("ENTRYPOINT is in shell form (ENTRYPOINT cowsay ...): Docker runs it as "
                "/bin/sh -c '...', and a shell-form ENTRYPOINT ignores CMD and docker run "
                "arguments, so the message cannot be changed. Use the exec form, a JSON array "
                "of the program and its arguments: ENTRYPOINT [\"prog\", \"arg\", ...].")
    program = os.path.basename(entrypoint[0])
    flags = " ".join(entrypoint[1:])
    if program != "cowsay" or "moby.cow" not in flags or "-f" not in flags:
        return (f"ENTRYPOINT runs {entrypoint}; the lab's ENTRYPOINT runs cowsay -f "
                "moby.cow, in exec form, with the message left to CMD.")
    return ""


def _verdict_default(run: RunResult, config: dict, limits) -> Verdict:
    problem = _run_problem(run, limits)
    if problem:
        return failed(f"`docker run mobysay` {problem} {_entrypoint_problem(config)}".strip())
    if not _has_whale(run.output):
        return failed("`docker run mobysay` printed something, but not Moby: cowsay needs "
                      f"-f moby.cow to draw the whale. It printed:\n{_shown(run.output)}")
    if DEFAULT_MESSAGE not in bubble(run.output):
        hint = _entrypoint_problem(config) or (
            "CMD, in exec form, gives cowsay its default message.")
        return failed(f"Moby appeared without saying '{DEFAULT_MESSAGE}'. {hint} It printed:\n"
                      f"{_shown(run.output)}")
    return passed(f"Moby says '{DEFAULT_MESSAGE}'.")


def _verdict_custom(run: RunResult, message: str, config: dict, limits) -> Verdict:
    asked = f"`docker run mobysay \"{message}\"`"
    problem = _run_problem(run, limits)
    if problem:
        return failed(f"{asked} {problem} {_entrypoint_problem(config)}".strip())
    said = bubble(run.output)
    hint = _entrypoint_problem(config)
    if message in said and _has_whale(run.output):
        if DEFAULT_MESSAGE in said:
            return failed(f"{asked} made Moby say '{said}': the message was added to "
                          f"'{DEFAULT_MESSAGE}' instead of replacing it. Keep the default "
                          "message in CMD, which docker run arguments replace, and only "
                          "cowsay -f moby.cow in ENTRYPOINT.")
        return passed(f"Moby says whatever docker run passes ('{message}').")
    if DEFAULT_MESSAGE in said:
        return failed(f"{asked} still said '{DEFAULT_MESSAGE}': the message given to docker run "
                      f"did not reach cowsay. {hint}".strip())
    return failed(f"{asked} did not show Moby saying '{message}'. {hint} It printed:\n"
                  f"{_shown(run.output)}".strip())


def _run_problem(run: RunResult, limits) -> str:
    if run.error and 'exec: "cowsay": executable file not found' in run.error:
        return ("did not start: Docker found no cowsay on PATH. Debian installs it in "
                "/usr/games, which is not on debian:12's PATH: add it with "
                "ENV, keeping the folders PATH already has ($PATH).")
    if run.error:
        return f"did not start: {run.error}."
    if run.timed_out:
        return (f"was still running after {limits.run_timeout:.0f} s, so grading stopped it: "
                "mobysay should print its whale and exit (a command like sleep never ends).")
    if run.flooded:
        return (f"printed more than {limits.output_bytes // 1024} KiB, so grading stopped it: "
                "mobysay should print one whale and exit.")
    if run.exit_code != 0:
        return (f"exited with status {run.exit_code}. It printed:\n{_shown(run.output)}")
    return ""


def judge(*, sandbox: Sandbox, answer, lab: Lab) -> dict[str, Verdict]:
    """Build the answer and judge every criterion (see the module docstring)."""
    client = sandbox.client
    limits = sandbox.limits
    verdicts: dict[str, Verdict] = {}
    if answer.dockerfile is None:
        where = "notebook" if answer.kind == "notebook" else f"folder {answer.source}"
        reason = " ".join(answer.problems) or (
            f"There is no Dockerfile in the {where}: run the %%writefile Dockerfile cell, which "
            "writes it next to the notebook.")
        verdicts["builds"] = failed(reason)
        verdicts.update(not_judged(lab, "there is no Dockerfile to build."))
        return verdicts
    if answer.has_placeholder:
        verdicts["builds"] = failed(
            "The Dockerfile cell still holds the placeholder `raise NotImplementedError()`: "
            "replace it with your Dockerfile's instructions.")
        verdicts.update(not_judged(lab, "the image did not build."))
        return verdicts
    try:
        base = sandbox.reference(BASE_IMAGE)
    except docker.errors.ImageNotFound as exc:
        raise ImageError(f"The course image {BASE_IMAGE} is not on this engine, so mobysay "
                         "cannot be judged.", "Run `docklab images prepare`.") from exc

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
    config = image.attrs.get("Config") or {}
    env = _env(image)
    ancestor = _nearest_tagged_ancestor(client, image, build)
    steps = _steps(image, ancestor if ancestor is not None else base)

    verdicts["base_debian"] = _verdict_base(image, base, ancestor)
    verdicts["frontend_is_arg"] = _verdict_frontend(env, steps)
    verdicts["apt_chained"] = _verdict_apt(steps)
    verdicts["path_has_games"] = _verdict_path(env)
    # The containers are independent: run them side by side (each has its own limits).
    message = f"Ahoy from the grader {random.randint(1000, 9999)}"
    argument_lists = {(): None, (message,): [message],
                      **{words: list(words) for words in PROBES}}
    expected_cow = lab.lab_file(COWFILE).read_bytes()
    with ThreadPoolExecutor(max_workers=3) as pool:
        cowfile = pool.submit(_verdict_cowfile, sandbox, build.image_id, expected_cow)
        runs = {words: pool.submit(sandbox.run, build.image_id, args)
                for words, args in argument_lists.items()}
        results = {words: future.result() for words, future in runs.items()}
        verdicts["cowfile_installed"] = cowfile.result()
    verdicts["default_message"] = _verdict_default(results[()], config, limits)
    verdicts["custom_message"] = _verdict_custom(results[(message,)], message, config, limits)
    # What Moby said to the probes (no verdict here): says() answers from these, so tests that
    # ask about the same answer need not build it again.
    sandbox.details["said"] = {_probe_key(words): (run.output if run.ok else "")
                               for words, run in results.items() if words != (message,)}
    problem = _entrypoint_problem(config)
    verdicts["entrypoint_exec_form"] = (failed(problem) if problem else passed(
        f"ENTRYPOINT {json.dumps(config.get('Entrypoint'))}, in exec form: docker run "
        "arguments replace only CMD."))
    return verdicts


def said_exactly(details: dict, *words: str) -> Verdict:
    """Whether Moby said exactly ``words`` (the default message when none) in the probe runs the
    judge recorded; the hidden tests of default_message and custom_message."""
    message = " ".join(words) or DEFAULT_MESSAGE
    command = f"docker run mobysay {' '.join(words)}".strip()
    output = (details.get("said") or {}).get(_probe_key(words))
    if output is None:
        return unjudged(f"`{command}` was not run.")
    if not _has_whale(output):
        return failed(f"`{command}` did not show Moby.")
    said = bubble(output)
    if said != message:
        return failed(f"`{command}` made Moby say {said!r} instead of {message!r}: the message "
                      "must reach cowsay as given, untouched by any shell.")
    return passed(f"Moby said exactly {message!r}.")


def _hidden_custom(details: dict) -> Verdict:
    for words in PROBES:
        verdict = said_exactly(details, *words)
        if not verdict.passed:
            return verdict
    return passed("every probe message reached cowsay untouched.")


LAB = Lab("mobysay", "mobysay: Moby the whale says what you tell it", CRITERIA, judge,
          files=(COWFILE,), base_image=BASE_IMAGE, network=DEBIAN_MIRROR,
          hidden={"default_message": said_exactly, "custom_message": _hidden_custom},
          sealed_ready=True, lesson=LESSON, topics=TOPICS)


grade = LAB.grade
self_check = LAB.self_check


def _probe_key(words) -> str:
    return "\0".join(words)


def says(answer: str | os.PathLike, *words: str) -> str:
    """What ``docker run mobysay <words...>`` prints for the answer ("" when it fails).

    When this answer was graded in this process, the image was already run with :data:`PROBES`:
    those come from that report. Otherwise the answer is built again (from the layer cache), run
    and removed.
    """
    from docklab.checks.answer import open_answer
    from docklab.checks.sandbox import Limits
    from docklab.engine import connect

    report = LAB.cached(answer)
    if report is not None:
        said = report.details.get("said") or {}
        if _probe_key(words) in said:
            return said[_probe_key(words)]
        if not report["builds"].passed:
            return ""
    limits = Limits.from_env()
    with open_answer(answer, {COWFILE: LAB.lab_file(COWFILE)}, limits=limits) as prepared, \
            Sandbox(connect(), f"grade-{LAB.id}", limits, helper_image=BASE_IMAGE) as sandbox:
        if prepared.dockerfile is None:
            return ""
        build = sandbox.build(prepared.tar())
        if not build.ok:
            return ""
        run = sandbox.run(build.image_id, list(words) or None)
        return run.output if run.ok else ""


def assert_says(answer: str | os.PathLike, *words: str) -> None:
    """Moby says exactly ``words`` (joined by spaces), however odd the characters.

    With no words: ``docker run mobysay`` says exactly the default message.
    """
    message = " ".join(words) or DEFAULT_MESSAGE
    command = f"docker run mobysay {' '.join(words)}".strip()
    output = says(answer, *words)
    assert _has_whale(output), f"`{command}` did not show Moby."
    said = bubble(output)
    assert said == message, (f"`{command}` made Moby say {said!r} instead of {message!r}: the "
                             "message must reach cowsay as given, untouched by any shell.")
