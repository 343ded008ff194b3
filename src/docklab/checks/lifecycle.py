"""Checks for the lifecycle lab: debug a container that exits, then fix its Dockerfile.

The lab hands out a small web app (``start.sh``, which serves ``greeting.txt`` on port 8080 with
busybox's httpd) and the recipe it came with, ``broken.Dockerfile``: the image builds, but every
container from it exits at once. The learner

1. runs it and finds out why with ``docker logs`` and ``docker inspect``, and records what the
   engine says: ``EXIT_CODE`` (``State.ExitCode``) and ``MISSING_FILE`` (the file the logs say is
   missing);
2. writes a fixed ``Dockerfile`` (the notebook's ``%%writefile Dockerfile`` cell) whose containers
   keep running, print the app's ready line and answer on port 8080.

**The answer path** (``docklab check lifecycle <path>``) is either

- a build-context folder: ``Dockerfile`` (the fix), ``start.sh``, ``greeting.txt`` and
  ``answers.json`` (``{"exit_code": ..., "missing_file": ...}``, which the notebook's
  ``lifecycle.record_answers(EXIT_CODE, MISSING_FILE)`` cell writes); or
- the lab notebook: the ``%%writefile Dockerfile`` cell is the fix, the lab's own ``start.sh`` and
  ``greeting.txt`` go next to it, and ``EXIT_CODE = ...``/``MISSING_FILE = ...`` are read from its
  code cells as literals (never executed).

Everything is judged from the engine: the recorded answers are compared with what the engine
reports for a container of the broken recipe, built and run while grading; the fix is built, run
detached (bounded: memory, pids, CPU, time, no network), its state and logs are read, and a probe
container from busybox joins its network and PID namespaces to fetch the page and to see which
process is PID 1, as ``docker run --network container:<app> --pid container:<app> busybox`` would.
The graded tests' hidden test (:func:`app_is_pid1`) is judged from that PID 1.

**Graded on a sealed engine** (:mod:`docklab.grading`): the judge talks only to the engine it is
given, so when a submission is graded, both recipes are built and every container runs in the
submission's own rootless engine, never on the grading host. busybox is the one course image it
uses: the broken recipe and the probe use it by the ID the grader loaded (``FROM <id>``, as a tag
inside an engine that built learner work proves nothing), and the learner's ``FROM busybox``
finds that same image. A rootless engine on a cgroup v1 host has no cgroup controllers of its own
(``CgroupDriver: none``), so the memory, pids and CPU limits given to each container are not
enforced there: the sealed engine as a whole is bounded instead (memory, pids, CPU, time), while
each container's run time and log size are still bounded here. The probe's ``--network
container:`` and ``--pid container:`` join namespaces inside that engine, as on any engine.

    from docklab.checks import lifecycle
    lifecycle.grade(".")                 # the report: one row per check, a score

Equivalent CLI: ``docklab check lifecycle <folder or notebook> [--json]``.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import time
from pathlib import Path

import docker.errors
import requests.exceptions

from docklab.checks.base import Criterion, Lab, Verdict, failed, not_judged, passed, unjudged
from docklab.checks.feedback import BuildLab, build_failed
from docklab.checks.recorded import notebook_literals
from docklab.checks.sandbox import RunResult, Sandbox
from docklab.errors import ImageError

BASE_IMAGE = "busybox"
APP_FILES = ("start.sh", "greeting.txt")
#: The words of this lab's build feedback (:mod:`docklab.checks.feedback`).
BUILD = BuildLab(base=BASE_IMAGE, files=APP_FILES)
BROKEN = "broken.Dockerfile"
ANSWERS_FILE = "answers.json"
APP_SCRIPT = "/app/start.sh"
PORT = 8080
READY = "ready:"
#: How long a fixed container must stay up, and how long it may take to say it is ready.
STAY_UP_SECONDS = 2.0
READY_WITHIN_SECONDS = 6.0
LESSON = "02-running"
TOPICS = {
    "exit_code_recorded": "docker inspect and exit codes",
    "cause_found": "docker logs",
    "builds": "docker build",
    "keeps_running": "a container lives as long as its main process",
    "ready_line": "docker logs",
    "serves_greeting": "a container lives as long as its main process",
    "app_unchanged": "docker logs and docker inspect: fix the cause, not the app",
}
_MISSING = re.compile(r"(/[^\s:'\"]+): No such file or directory")
_FROM_BASE = re.compile(rf"^FROM\s+{BASE_IMAGE}(?::latest)?\s*$", re.MULTILINE | re.IGNORECASE)

CRITERIA = [
    Criterion("exit_code_recorded", 1, "EXIT_CODE is the exit code the engine reports for the "
              "broken container", needs_image=False),
    Criterion("cause_found", 1, "MISSING_FILE is the file the broken container's logs say is "
              "missing", needs_image=False),
    Criterion("builds", 1, "the fixed Dockerfile builds into an image", needs_image=False),
    Criterion("keeps_running", 2, "a container of the fixed image is still running after "
              f"{STAY_UP_SECONDS:.0f} s"),
    Criterion("ready_line", 1, "its logs show the app's ready line"),
    Criterion("serves_greeting", 2, f"it answers on port {PORT} with the lab's greeting"),
    Criterion("app_unchanged", 1, f"{APP_SCRIPT} is the lab's start.sh, unchanged"),
]


# -- the recorded answers -----------------------------------------------------------------------

def record_answers(exit_code, missing_file, folder: str | os.PathLike = ".") -> Path:
    """Write the answers next to the notebook (``answers.json``), where grading reads them."""
    path = Path(folder) / ANSWERS_FILE
    path.write_text(json.dumps({"exit_code": exit_code, "missing_file": missing_file}) + "\n")
    return path


def recorded_answers(answer) -> tuple[dict, str]:
    """The learner's answers ({"exit_code": ..., "missing_file": ...}), or ({}, why not)."""
    if answer.kind == "notebook":
        return _answers_from_notebook(Path(answer.source))
    data = answer.files.get(ANSWERS_FILE)
    if data is None:
        return {}, (f"There is no {ANSWERS_FILE} in {answer.source}: run the notebook's cell "
                    "lifecycle.record_answers(EXIT_CODE, MISSING_FILE), which writes it.")
    try:
        values = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        return {}, f"{ANSWERS_FILE} is not valid JSON."
    if not isinstance(values, dict):
        return {}, f"{ANSWERS_FILE} should hold an object with exit_code and missing_file."
    return values, ""


def _answers_from_notebook(notebook: Path) -> tuple[dict, str]:
    values, why = notebook_literals(notebook, ("EXIT_CODE", "MISSING_FILE"))
    names = {"EXIT_CODE": "exit_code", "MISSING_FILE": "missing_file"}
    return {names[k]: v for k, v in values.items()}, why


# -- building and running -----------------------------------------------------------------------

def _broken_context(lab: Lab, base_id: str) -> io.BytesIO:
    """The lab's broken recipe as a build context: broken.Dockerfile as Dockerfile (FROM the
    course's busybox by its ID), the app."""
    buffer = io.BytesIO()
    with tarfile.open(mode="w", fileobj=buffer) as tar:
        for name, target in ((BROKEN, "Dockerfile"), *((f, f) for f in APP_FILES)):
            data = lab.lab_file(name).read_bytes()
            if name == BROKEN:
                data = _FROM_BASE.sub(f"FROM {base_id}", data.decode()).encode()
            info = tarfile.TarInfo(target)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def _limits(sandbox: Sandbox) -> dict:
    return sandbox.container_limits()  # the same bounds as every grading container


class _Observed:
    """What a detached container of the fixed image did: state, logs, page, PID 1."""

    def __init__(self):
        self.error = ""
        self.running = False
        self.exit_code: int | None = None
        self.restarts = 0
        self.logs = ""
        self.seconds = 0.0
        self.ready_seconds: float | None = None
        self.page: str | None = None
        self.probe_error = ""
        self.pid1 = ""


def _logs(container, cap: int) -> str:
    try:
        return container.logs(tail=200)[-cap:].decode("utf-8", "replace")
    except (docker.errors.APIError, requests.exceptions.RequestException):
        return ""


def _observe(sandbox: Sandbox, image_id: str, probe_image: str) -> _Observed:
    """``docker run -d`` the fixed image (bounded, no network), watch it, probe it, remove it."""
    seen = _Observed()
    client = sandbox.client
    cap = sandbox.limits.output_bytes
    try:
        app = client.containers.run(image_id, detach=True, labels=sandbox.labels("container"),
                                    network_mode="none", stdin_open=False, tty=False,
                                    **_limits(sandbox))
    except docker.errors.APIError as exc:
        seen.error = exc.explanation or str(exc)
        return seen
    started = time.monotonic()
    try:
        probed = False
        while True:
            app.reload()
            state = app.attrs.get("State") or {}
            seen.logs = _logs(app, cap)
            elapsed = time.monotonic() - started
            if seen.ready_seconds is None and READY in seen.logs:
                seen.ready_seconds = elapsed
            if not state.get("Running"):
                break
            if not probed and (seen.ready_seconds is not None or elapsed >= STAY_UP_SECONDS):
                # Probe as soon as it says it is ready; whether it stays up is seen afterwards.
                seen.page, seen.pid1, seen.probe_error = _probe(sandbox, app.id, probe_image)
                probed = True
                continue
            if probed and elapsed >= STAY_UP_SECONDS and (
                    seen.ready_seconds is not None or elapsed >= READY_WITHIN_SECONDS):
                break
            time.sleep(0.25)
        seen.running = bool(state.get("Running"))
        seen.exit_code = None if seen.running else state.get("ExitCode")
        seen.restarts = app.attrs.get("RestartCount") or 0
        seen.seconds = time.monotonic() - started
    finally:
        sandbox.remove_container(app.id)
    return seen


def _probe(sandbox: Sandbox, app_id: str, probe_image: str) -> tuple[str | None, str, str]:
    """Fetch the page from inside the app's network namespace and read its PID 1 → (page, pid1,
    why no page). The probe is the course's busybox (``probe_image``, its ID) and its wget, not a
    program of the learner's image."""
    script = (f"timeout 5 wget -q -O /tmp/page http://127.0.0.1:{PORT}/ 2>/tmp/err; "
              "echo \"wget=$?\"; tr '\\0' ' ' < /proc/1/cmdline; echo; "
              "echo '--- page'; head -c 4096 /tmp/page; echo '--- err'; head -c 512 /tmp/err")
    try:
        probe = sandbox.client.containers.run(
            probe_image, ["sh", "-c", script], detach=True, labels=sandbox.labels("container"),
            network_mode=f"container:{app_id}", pid_mode=f"container:{app_id}",
            **_limits(sandbox))
    except docker.errors.APIError as exc:
        return None, "", exc.explanation or str(exc)
    try:
        try:
            probe.wait(timeout=15)
        except (requests.exceptions.RequestException, docker.errors.APIError):
            return None, "", "the probe did not finish"
        text = _logs(probe, 16 * 1024)
    finally:
        sandbox.remove_container(probe.id)
    head, _, rest = text.partition("--- page\n")
    page, _, err = rest.partition("--- err\n")
    lines = head.splitlines()
    status = lines[0] if lines else ""
    pid1 = lines[1].strip() if len(lines) > 1 else ""
    if status != "wget=0":
        return None, pid1, err.strip() or "nothing answered"
    return page.removesuffix("\n"), pid1, ""


# -- the verdicts -------------------------------------------------------------------------------

def _verdict_exit_code(recorded: dict, why: str, broken: RunResult) -> Verdict:
    if why:
        return failed(why)
    value = recorded.get("exit_code")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        return failed(f"EXIT_CODE is {value!r}: record the number the engine reports, "
                      "container.attrs['State']['ExitCode'] (docker inspect -f "
                      "'{{.State.ExitCode}}' <container>).")
    if value == broken.exit_code:
        return passed(f"the broken container exited with code {broken.exit_code}.")
    hint = ""
    if value in (0, 1, 125, 126, 127, 137, 143):
        hint = (f" {value} is a code worth knowing (see the exit code table), but it is not "
                "what this container reported.")
    return failed(f"EXIT_CODE is {value}, but the engine reports a different exit code for a "
                  "container of the broken recipe. Read it from the container's state after it "
                  f"stopped: container.reload(); container.attrs['State']['ExitCode'].{hint}")


def _verdict_cause(recorded: dict, why: str, missing: str | None) -> Verdict:
    if why:
        return failed(why)
    value = recorded.get("missing_file")
    if not isinstance(value, str) or not value.strip():
        return failed(f"MISSING_FILE is {value!r}: record the path of the file that the "
                      "broken container's logs say is missing, as a string.")
    if missing is None:
        return failed("The broken container did not report a missing file while grading; "
                      "tell the instructor.")
    if value.strip() == missing:
        return passed(f"the logs say {missing} is missing.")
    if os.path.basename(value.strip()) == os.path.basename(missing):
        return failed(f"MISSING_FILE is {value!r}: the right file name, but the app looks for "
                      "it somewhere else. The logs give its full path inside the container; "
                      "read them with container.logs() (docker logs <container>).")
    return failed(f"MISSING_FILE is {value!r}, which is not the file the logs name. Read the "
                  "broken container's output with container.logs() (docker logs <container>): "
                  "the app says what it could not find.")


def _exit_story(seen: _Observed, broken_code: int | None) -> str:
    code = seen.exit_code
    tail = "\n".join(seen.logs.strip().splitlines()[-5:]) or "(nothing)"
    meaning = ""
    if code == 0:
        meaning = (" Exit code 0 means its main process finished without error: a container "
                   "lives only as long as its main process, so a server that goes into the "
                   "background (or a script that ends) ends the container.")
    elif code in (126, 127):
        meaning = (f" Exit code {code} means the command could not be run "
                   f"({'not executable' if code == 126 else 'not found'}): check CMD.")
    elif broken_code is not None and code == broken_code:
        # Compared with the broken recipe's run, not written here: the code is an answer of the lab.
        meaning = (f" Exit code {code} is the one the broken recipe's containers exit with: the "
                   "app still cannot find what its logs name.")
    elif code == 137:
        meaning = " Exit code 137 is 128 + 9: it was killed (SIGKILL), perhaps out of memory."
    return (f"A container of the fixed image stopped after {seen.seconds:.1f} s with exit code "
            f"{code}.{meaning} Its last log lines:\n{tail}")


def _verdict_running(seen: _Observed, broken_code: int | None = None) -> Verdict:
    if seen.error:
        return failed(f"A container of the fixed image did not start: {seen.error}")
    if not seen.running:
        return failed(_exit_story(seen, broken_code))
    return passed(f"still running after {seen.seconds:.1f} s.")


def _verdict_ready(seen: _Observed) -> Verdict:
    if seen.error:
        return unjudged("the container did not start.")
    if seen.ready_seconds is not None:
        line = next((ln for ln in seen.logs.splitlines() if READY in ln), READY)
        return passed(f"the logs say {line.strip()!r}.")
    tail = "\n".join(seen.logs.strip().splitlines()[-5:]) or "(nothing)"
    return failed(f"The container's logs never showed the app's ready line ({READY} ...), "
                  f"which start.sh prints just before it starts serving. Its logs:\n{tail}")


def _verdict_serves(seen: _Observed, greeting: str) -> Verdict:
    if seen.error:
        return unjudged("the container did not start.")
    if not seen.running and seen.page is None:
        return failed("Nothing to ask: the container had stopped (see keeps_running).")
    if seen.page is None:
        return failed(f"Nothing answered on port {PORT} inside the container "
                      f"({seen.probe_error}). start.sh serves there once it finds its greeting.")
    if seen.page.strip() != greeting.strip():
        shown = seen.page.strip()[:200] or "(an empty page)"
        return failed(f"Port {PORT} answered, but not with the lab's greeting.txt: it said "
                      f"{shown!r}. Copy greeting.txt to where start.sh looks for it.")
    return passed(f"port {PORT} answers {greeting.strip()!r}.")


def _verdict_app(data: bytes | None, why: str, expected: bytes) -> Verdict:
    if data is None:
        return failed(f"{APP_SCRIPT} is not in the image ({why}): keep the recipe's "
                      "COPY start.sh /app/start.sh, the app itself was never the problem.")
    if data != expected:
        return failed(f"{APP_SCRIPT} differs from the lab's start.sh. The app was not the "
                      "problem: its logs told you what it needs. Fix the Dockerfile, and leave "
                      "start.sh as it came.")
    return passed(f"{APP_SCRIPT} is the lab's start.sh.")


def _missing_from_logs(output: str) -> str | None:
    match = _MISSING.search(output)
    return match.group(1) if match else None


def judge(*, sandbox: Sandbox, answer, lab: Lab) -> dict[str, Verdict]:
    """Run the broken recipe, build and run the fix, and judge every criterion."""
    try:
        base_id = sandbox.reference(BASE_IMAGE).id
    except docker.errors.ImageNotFound as exc:
        raise ImageError(f"The course image {BASE_IMAGE} is not on this engine, so the "
                         "lifecycle lab cannot be judged.",
                         "Run `docklab images prepare`.") from exc
    verdicts: dict[str, Verdict] = {}

    # 1. What the engine says about the broken recipe: the values the answers are graded against.
    # The course's own recipe, FROM the base by its ID: the legacy builder (BuildKit takes
    # only names). The learner's Dockerfile builds with the learner's builder.
    broken_build = sandbox.build(_broken_context(lab, base_id), builder="legacy")
    if not broken_build.ok:
        raise ImageError(f"The lab's broken recipe did not build: {broken_build.error}",
                         "Check the engine (`docklab doctor`) and the course images.")
    broken = sandbox.run(broken_build.image_id)
    missing = _missing_from_logs(broken.output)
    sandbox.details["broken"] = {"exit_code": broken.exit_code, "missing_file": missing}
    recorded, why = recorded_answers(answer)
    verdicts["exit_code_recorded"] = _verdict_exit_code(recorded, why, broken)
    verdicts["cause_found"] = _verdict_cause(recorded, why, missing)

    # 2. The fix.
    if answer.dockerfile is None:
        where = "notebook" if answer.kind == "notebook" else f"folder {answer.source}"
        reason = " ".join(p for p in answer.problems if "%%writefile" in p) or (
            f"There is no Dockerfile in the {where}: run the %%writefile Dockerfile cell, which "
            "writes your fixed recipe next to the notebook.")
        verdicts["builds"] = failed(reason)
        verdicts.update(not_judged(lab, "there is no fixed Dockerfile to build."))
        return verdicts
    if answer.has_placeholder:
        verdicts["builds"] = failed(
            "The Dockerfile cell still holds the placeholder `raise NotImplementedError()`: "
            "replace it with the fixed recipe.")
        verdicts.update(not_judged(lab, "the fixed image did not build."))
        return verdicts
    build = sandbox.build(answer.tar())
    if not build.ok:
        verdicts["builds"] = failed(build_failed(build, sandbox.limits, BUILD))
        verdicts.update(not_judged(lab, "the fixed image did not build, so there is nothing "
                                   "to run."))
        sandbox.details["build_log_tail"] = build.log[-4000:]
        return verdicts
    verdicts["builds"] = passed(f"built in {build.seconds:.1f} s.")
    seen = _observe(sandbox, build.image_id, base_id)
    sandbox.details["fixed"] = {"running": seen.running, "exit_code": seen.exit_code,
                                "pid1": seen.pid1, "page": seen.page,
                                "seconds": round(seen.seconds, 2)}
    verdicts["keeps_running"] = _verdict_running(seen, broken.exit_code)
    verdicts["ready_line"] = _verdict_ready(seen)
    greeting = lab.lab_file("greeting.txt").read_text()
    verdicts["serves_greeting"] = _verdict_serves(seen, greeting)
    data, why_not = sandbox.read_file(build.image_id, APP_SCRIPT)
    verdicts["app_unchanged"] = _verdict_app(data, why_not, lab.lab_file("start.sh").read_bytes())
    return verdicts


def app_is_pid1(details: dict) -> Verdict:
    """The fixed container's PID 1 is the app's server (httpd), not a keep-alive wrapper: the
    hidden test of keeps_running, from the PID 1 the judge's probe saw (``details["fixed"]``).

    ``docker stop`` signals PID 1 only: a ``tail -f /dev/null`` or ``sleep`` kept around to hold
    the container open gets the signal while the app never hears it.
    """
    pid1 = (details.get("fixed") or {}).get("pid1") or ""
    program = os.path.basename(pid1.split(" ", 1)[0]) if pid1 else ""
    if program == "httpd":
        return passed(f"PID 1 is the app's server: {pid1.strip()}.")
    return failed(
        f"PID 1 of the fixed container is {pid1.strip() or 'unknown'!r}, not the app's httpd: "
        "something else holds the container open. start.sh ends with exec httpd -f, so the "
        "server becomes PID 1 and gets docker stop's SIGTERM; run start.sh as CMD and nothing "
        f"around it. (Lesson {LESSON}: docker stop, PID 1 and signals.)")


LAB = Lab("lifecycle", "lifecycle: a container that exits, debugged and fixed", CRITERIA, judge,
          files=APP_FILES, base_image=BASE_IMAGE, hidden={"keeps_running": app_is_pid1},
          sealed_ready=True, lesson=LESSON, topics=TOPICS)


grade = LAB.grade
self_check = LAB.self_check


def assert_app_is_pid1(answer: str | os.PathLike = ".") -> None:
    """The fixed container's PID 1 is the app's server (httpd), not a keep-alive wrapper: the
    hidden test of keeps_running as an assert (:func:`app_is_pid1`, which grading applies)."""
    report = grade(answer)
    assert report["keeps_running"].passed, "The fixed container does not keep running."
    verdict = app_is_pid1(report.details)
    assert verdict.passed, verdict.feedback
