"""Checks for the security lab: a small web service, hardened, that still works.

The lab hands out ``app.py``, a Python web service on port 8080 that counts its visits in
``/tmp/visits``. The answer is a folder (the lab folder, where the notebook's ``%%writefile`` cells
write) holding:

- ``Dockerfile``: ``FROM python:3.11-slim``, the lab's ``app.py`` copied in unchanged, and a
  ``USER`` that is not root;
- ``run.json``: the options the container is started with, named like docker-py's
  ``containers.run`` keywords (and the ``docker run`` flags beside them)::

      {"user": "10001",                        --user            (optional: USER does it)
       "read_only": true,                      --read-only
       "tmpfs": {"/tmp": "size=16m"},          --tmpfs /tmp:size=16m
       "cap_drop": ["ALL"],                    --cap-drop ALL
       "cap_add": [],                          --cap-add ...
       "security_opt": ["no-new-privileges"]}  --security-opt no-new-privileges

A notebook may be given instead: its last ``%%writefile Dockerfile`` and ``%%writefile run.json``
cells are the answer.

Judged through the engine: the image is built (bounded, see :mod:`docklab.checks.sandbox`), a
container is started from it with the answer's options (and grading's own memory, CPU and pids
limits) on an internal network of its own, then

- its ``HostConfig`` and ``Config`` are inspected (ReadonlyRootfs, CapDrop/CapAdd, SecurityOpt,
  Tmpfs, User);
- from inside: the service process's ``/proc/1/status`` (Uid, CapEff, CapBnd, NoNewPrivs), a write
  to ``/`` (which must fail) and ``/proc/mounts`` (``/tmp`` a tmpfs);
- the service is asked for ``/`` twice by a helper container (python:3.11-slim) on that network: it
  must greet, and count to 2 (so it could write its counter).

Everything is labelled and removed afterwards. Equivalent CLI: ``docklab check security <folder or
notebook> [--json]``.

Graded (``nbgrader autograde``), this runs on a sealed engine (:mod:`docklab.grading`): a rootless
dockerd with python:3.11-slim loaded by its image ID and no network (the build needs none). The
judge talks only to ``sandbox.client``; the service and the probe are containers of that engine.
What a rootless engine changes, and how it is judged there:

- **user, capabilities, no-new-privileges, read-only root, tmpfs** are the container's own and show
  as on any engine: in ``docker inspect`` (User, CapDrop/CapAdd, SecurityOpt, ReadonlyRootfs,
  Tmpfs) and in the service's ``/proc/1/status`` (Uid, CapEff, CapBnd, NoNewPrivs), read in the
  container's own user namespace, so uid 10001 reads 10001. The write to ``/`` is tried as uid 0
  of the container (``exec --user 0``): a non-root user cannot write to ``/`` even when it is
  writable, so only root's failed write shows that the filesystem itself is read-only.
- **memory and pids limits** of the service's container are discarded (rootless dockerd on this
  cgroup v1 host runs without cgroups); the lab does not ask for them, and the sandbox as a whole
  is bounded instead (:class:`~docklab.grading.sealed.SealedLimits`).
- **ports**: none is published (a published port would bind inside the engine's own namespace,
  not on a host): a helper container asks the service on an internal network of their own, by
  name, on any engine.

Hidden test (when graded): ``runs_non_root`` also needs the image's own USER not to be root
(:func:`image_not_root`, from what the judge recorded), so that the image is safe without this
lab's run options.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from pathlib import Path

import docker.errors
import requests.exceptions

from docklab.checks.answer import writefile_cell
from docklab.checks.base import Criterion, Lab, Verdict, failed, not_judged, passed, unjudged
from docklab.checks.feedback import BuildLab, build_failed
from docklab.checks.sandbox import Sandbox
from docklab.errors import ImageError

BASE_IMAGE = "python:3.11-slim"
PROBE_IMAGE = BASE_IMAGE
APP = "app.py"
RUN_SPEC = "run.json"
PORT = 8080
GREETING = "hello from docklab"
LESSON = "06-security"
TOPICS = {
    "runs_non_root": "5. Not root in the first place",
    "read_only_root": "4. A read-only root filesystem",
    "tmp_is_tmpfs": "4. A read-only root filesystem",
    "caps_dropped": "1. Capabilities: root's power, in pieces",
    "no_new_privileges": "6. no-new-privileges",
    "serves": "Try it: a hardened container",
}
#: run.json keys → what they must be. Anything else is refused before a container starts.
KEYS = ("user", "read_only", "tmpfs", "cap_drop", "cap_add", "security_opt")
#: Capabilities run.json may add back (none is needed: the service listens on a high port).
ADDABLE = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "NET_BIND_SERVICE", "KILL",
           "SETPCAP", "FSETID", "AUDIT_WRITE", "MKNOD", "NET_RAW", "SYS_CHROOT", "SETFCAP"}
NO_NEW_PRIVILEGES = {"no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"}
_CAP = re.compile(r"^(CAP_)?[A-Z_]{2,32}$")
#: The words of this lab's build feedback: it installs nothing and needs no network.
BUILD = BuildLab(base=BASE_IMAGE, files=(APP,))
_SOLUTION_MARK = re.compile(r"^[ \t]*### (?:BEGIN|END) SOLUTION[ \t]*$", re.MULTILINE)
_TMPFS_OPTION = re.compile(r"^(size=\d+[kmg]?|mode=[0-7]{3,4}|uid=\d+|gid=\d+|noexec|exec|"
                           r"nosuid|suid|nodev|dev|rw|ro)$")

CRITERIA = [
    Criterion("builds", 1, "the Dockerfile builds, with the lab's app.py", needs_image=False),
    Criterion("runs_non_root", 2, "the service runs as a user that is not root"),
    Criterion("read_only_root", 2, "the root filesystem is read-only: a write to / fails"),
    Criterion("tmp_is_tmpfs", 1, "/tmp, where the service writes, is a tmpfs"),
    Criterion("caps_dropped", 2, "every capability is dropped (--cap-drop ALL), none added"),
    Criterion("no_new_privileges", 1, "no-new-privileges is set"),
    Criterion("serves", 2, "the hardened service still answers and counts its visits"),
]


# -- the answer's run options -------------------------------------------------------------------

def run_spec_text(answer) -> tuple[str | None, str]:
    """The text of run.json in the answer (folder or notebook), or (None, why not)."""
    if RUN_SPEC in answer.files:
        return answer.files[RUN_SPEC].decode("utf-8", "replace"), ""
    if answer.kind == "notebook":
        return writefile_cell(Path(answer.source), RUN_SPEC)
    return None, (f"There is no {RUN_SPEC} in the folder {answer.source}: run the "
                  f"%%writefile {RUN_SPEC} cell, which writes it next to the notebook.")


def parse_run_spec(text: str) -> tuple[dict | None, str]:
    """run.json → the keyword arguments for ``containers.run``, or (None, what is wrong)."""
    if "raise NotImplementedError" in text:
        return None, (f"{RUN_SPEC} still holds the placeholder `raise NotImplementedError()`: "
                      "replace it with your JSON object of run options.")
    # The lab's source notebook marks its answer with nbgrader's solution lines, which are no
    # JSON: without them, the source's own run.json is valid (`nbgrader validate` of the source).
    text = _SOLUTION_MARK.sub("", text)
    try:
        spec = json.loads(text)
    except ValueError as exc:
        return None, (f"{RUN_SPEC} is not valid JSON ({exc}): one object in braces, keys and "
                      "strings in double quotes, true/false in lower case, no trailing commas, "
                      "no comments.")
    if not isinstance(spec, dict):
        return None, f"{RUN_SPEC} must hold one JSON object ({{...}}), not {type(spec).__name__}."
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        return None, (f"{RUN_SPEC} has keys grading does not accept: {', '.join(unknown)}. "
                      f"It takes only {', '.join(KEYS)} (privileged, volumes, devices or host "
                      "namespaces would undo the hardening).")
    kwargs: dict = {}
    if "user" in spec:
        user = spec["user"]
        if isinstance(user, int):
            user = str(user)
        if not isinstance(user, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}(:[A-Za-z0-9_.-]"
                                                          r"{1,32})?", user):
            return None, '"user" is a name or uid, optionally with :group, e.g. "10001:10001".'
        kwargs["user"] = user
    if "read_only" in spec:
        if not isinstance(spec["read_only"], bool):
            return None, '"read_only" is true or false (JSON, lower case, no quotes).'
        kwargs["read_only"] = spec["read_only"]
    if "tmpfs" in spec:
        tmpfs = spec["tmpfs"]
        if isinstance(tmpfs, list):
            tmpfs = {str(item).split(":", 1)[0]: (str(item).split(":", 1) + [""])[1]
                     for item in tmpfs}
        if not isinstance(tmpfs, dict) or len(tmpfs) > 8:
            return None, ('"tmpfs" maps each folder to its mount options, e.g. '
                          '{"/tmp": "size=16m"} (like --tmpfs /tmp:size=16m).')
        for path, options in tmpfs.items():
            if not (isinstance(path, str) and path.startswith("/") and ".." not in path
                    and isinstance(options, str)):
                return None, f'"tmpfs": {path!r} must be an absolute folder with options text.'
            bad = [o for o in options.split(",") if o and not _TMPFS_OPTION.match(o)]
            if bad:
                return None, f'"tmpfs": the options {", ".join(bad)} of {path} are not accepted.'
        kwargs["tmpfs"] = {path: options for path, options in tmpfs.items()}
    for key in ("cap_drop", "cap_add"):
        if key in spec:
            caps = spec[key]
            if not (isinstance(caps, list) and len(caps) <= 64
                    and all(isinstance(c, str) and (c.upper() == "ALL" or _CAP.match(c.upper()))
                            for c in caps)):
                return None, f'"{key}" is a list of capability names, e.g. ["ALL"].'
            kwargs[key] = [c.upper() for c in caps]
    refused = [c for c in kwargs.get("cap_add", []) if c.removeprefix("CAP_") not in ADDABLE]
    if refused:
        return None, (f'"cap_add" asks for {", ".join(refused)}: grading does not start a '
                      "container with that much power (and this service needs no capability).")
    if "security_opt" in spec:
        options = spec["security_opt"]
        if not (isinstance(options, list) and all(isinstance(o, str) for o in options)):
            return None, '"security_opt" is a list of strings, e.g. ["no-new-privileges"].'
        refused = [o for o in options if o not in NO_NEW_PRIVILEGES]
        if refused:
            return None, (f'"security_opt" may only hold no-new-privileges here, not '
                          f"{', '.join(refused)}: seccomp=unconfined or apparmor=unconfined "
                          "would take protections away, not add them.")
        kwargs["security_opt"] = list(options)
    return kwargs, ""


def docker_run_command(kwargs: dict, image: str = "security-lab") -> str:
    """The ``docker run`` command line that matches run.json's options."""
    words = ["docker", "run", "-d"]
    if "user" in kwargs:
        words += ["--user", kwargs["user"]]
    if kwargs.get("read_only"):
        words.append("--read-only")
    for path, options in (kwargs.get("tmpfs") or {}).items():
        words += ["--tmpfs", f"{path}:{options}" if options else path]
    for cap in kwargs.get("cap_drop") or []:
        words += ["--cap-drop", cap]
    for cap in kwargs.get("cap_add") or []:
        words += ["--cap-add", cap]
    for option in kwargs.get("security_opt") or []:
        words += ["--security-opt", option]
    return shlex.join([*words, image])


# -- looking at the running service -------------------------------------------------------------

def _status(text: str) -> dict[str, str]:
    """``/proc/<pid>/status`` → {field: value}."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def _exec(container, command: list[str], user: str = "") -> tuple[int | None, str]:
    try:
        code, output = container.exec_run(command, stdout=True, stderr=True, demux=False,
                                          user=user)
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        return None, str(exc)
    return code, (output or b"")[:64 * 1024].decode("utf-8", "replace")


def _logs(container) -> str:
    try:
        return container.logs(tail=20).decode("utf-8", "replace")[-2000:]
    except (docker.errors.APIError, requests.exceptions.RequestException):
        return ""


#: Asks the service twice, after waiting (up to ~15 s) for it to listen; prints each answer as
#: one JSON line: [status, body]. (python:3.11-slim is the helper: the course's busybox wget is
#: unreliable.)
_PROBE = """
import json, sys, time, urllib.error, urllib.request
url = sys.argv[1]
def ask():
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return [r.status, r.read(4096).decode("utf-8", "replace")]
    except urllib.error.HTTPError as e:
        return [e.code, e.read(4096).decode("utf-8", "replace")]
deadline = time.time() + 15
while True:
    try:
        first = ask()
        break
    except OSError as e:
        if time.time() > deadline:
            first = [0, "no answer: " + str(getattr(e, "reason", e))]
            break
        time.sleep(0.25)
print(json.dumps(first), flush=True)
try:
    print(json.dumps(ask()), flush=True)
except OSError as e:
    print(json.dumps([0, "no answer: " + str(getattr(e, "reason", e))]), flush=True)
"""


def _probe(sandbox: Sandbox, network: str, host: str) -> tuple[list[str], str]:
    """Ask the service for / twice from a helper container on its network → (answers, error)."""
    limits = sandbox.limits
    try:
        # By the ID recorded for the course image: the answer's build could have moved its tag.
        helper = sandbox.client.containers.run(
            sandbox.reference(PROBE_IMAGE).id, ["python", "-c", _PROBE, f"http://{host}:{PORT}/"],
            detach=True,
            network=network, labels=sandbox.labels("container"),
            **sandbox.container_limits())
    except docker.errors.APIError as exc:
        return [], exc.explanation or str(exc)
    try:
        try:
            helper.wait(timeout=limits.run_timeout + 10)
        except (requests.exceptions.RequestException, docker.errors.APIError):
            return [], "the probe did not finish in time"
        output = helper.logs().decode("utf-8", "replace")[:16 * 1024]
    finally:
        sandbox.remove_container(helper.id)
    answers = []
    for line in output.splitlines():
        try:
            status, body = json.loads(line)
            answers.append(f"{status} {str(body).strip()}")
        except (ValueError, TypeError):
            continue
    return answers, "" if answers else f"the probe printed {output[-300:]!r}"


def _observe(sandbox: Sandbox, image_id: str, kwargs: dict) -> dict:
    """Start the service with the answer's options; inspect it, look inside, probe it."""
    client = sandbox.client
    seen: dict = {"started": False}
    name = f"docklab-grade-security-{sandbox.run_id}"  # its name is its address on the network
    network = client.networks.create(f"{name}-net",
                                     driver="bridge", internal=True,
                                     labels=sandbox.labels("network"))
    limits = {k: v for k, v in sandbox.container_limits().items()
              if k not in ("cap_drop", "security_opt")}
    try:
        container = client.containers.run(
            image_id, detach=True, labels=sandbox.labels("container"), network=network.name,
            name=name,
            **limits, **kwargs)
    except docker.errors.APIError as exc:
        seen["error"] = exc.explanation or str(exc)
        return seen
    seen["started"] = True
    seen["answers"], seen["probe_error"] = _probe(sandbox, network.name, name)
    container.reload()
    seen["state"] = container.attrs.get("State") or {}
    seen["host_config"] = container.attrs.get("HostConfig") or {}
    seen["config"] = container.attrs.get("Config") or {}
    seen["logs"] = _logs(container)
    if seen["state"].get("Running"):
        code, text = _exec(container, ["cat", "/proc/1/status"])
        seen["status"] = _status(text) if code == 0 else {}
        # As root of the container: a non-root user cannot write to / even when it is writable.
        probe = f"/.docklab-probe-{int(time.time())}"
        code, text = _exec(container, ["sh", "-c", f"echo x > {probe} && rm -f {probe}"],
                           user="0")
        seen["root_write"] = (code, text.strip())
        code, text = _exec(container, ["cat", "/proc/mounts"])
        seen["mounts"] = text if code == 0 else ""
    return seen


# -- the verdicts -------------------------------------------------------------------------------

def _uid(seen: dict) -> int | None:
    uids = (seen.get("status") or {}).get("Uid", "").split()
    return int(uids[1]) if len(uids) > 1 and uids[1].isdigit() else None


def _verdict_user(seen: dict, image_user: str) -> Verdict:
    user = seen["config"].get("User") or ""
    uid = _uid(seen)
    if uid is None:
        return unjudged("the service was not running, so nothing could be looked at inside "
                        "it.")
    if uid == 0:
        where = (f"the user is {user!r}, which is root" if user else
                 "neither the Dockerfile (USER) nor run.json (\"user\") names a user, so it is "
                 "root, as in every image that does not say otherwise")
        return failed(f"The service runs as uid 0: {where}. Root in a container is root on the "
                      "host's kernel, held back only by capabilities and namespaces; add USER "
                      "10001 (any uid but 0) to the Dockerfile.")
    source = "the image's USER" if image_user and not seen.get("user_from_spec") else "run.json"
    return passed(f"the service runs as uid {uid} (from {source}).")


def _verdict_read_only(seen: dict) -> Verdict:
    flag = bool(seen["host_config"].get("ReadonlyRootfs"))
    code, text = seen.get("root_write", (None, ""))
    if not flag:
        return failed("The root filesystem is writable (HostConfig.ReadonlyRootfs is false): "
                      "anyone who takes over the service can change its code and tools. Set "
                      '"read_only": true (docker run --read-only).')
    if code == 0:
        return failed("ReadonlyRootfs is set, yet a write to / succeeded inside the container.")
    return passed(f"ReadonlyRootfs is true and writing to / fails ({text or 'refused'}).")


def _is_tmpfs(mounts: str, path: str) -> bool:
    return any(fields[1] == path and fields[2] == "tmpfs"
               for fields in (line.split() for line in mounts.splitlines()) if len(fields) > 2)


def _verdict_tmpfs(seen: dict) -> Verdict:
    mounts = seen.get("mounts", "")
    if not _is_tmpfs(mounts, "/tmp"):
        return failed("/tmp is not a tmpfs: the service keeps its visit count in /tmp/visits, "
                      "and with a read-only root that is the one place it needs to write. Give it "
                      'a small tmpfs: "tmpfs": {"/tmp": "size=16m"} (docker run --tmpfs '
                      "/tmp:size=16m); it lives in memory and goes with the container.")
    return passed("/tmp is a tmpfs.")


def _verdict_caps(seen: dict) -> Verdict:
    host = seen["host_config"]
    dropped = [c.upper().removeprefix("CAP_") for c in host.get("CapDrop") or []]
    added = [c.upper().removeprefix("CAP_") for c in host.get("CapAdd") or []]
    status = seen.get("status") or {}
    effective, bounding = status.get("CapEff", ""), status.get("CapBnd", "")
    if "ALL" not in dropped:
        kept = "nothing" if not dropped else ", ".join(dropped)
        return failed(f"The container drops {kept} instead of ALL capabilities: it keeps Docker's "
                      "default set (CHOWN, NET_RAW, SETUID, ...). Drop them all with "
                      '"cap_drop": ["ALL"] (docker run --cap-drop ALL) and add back only what '
                      "the service needs: here, nothing (port 8080 is above 1024).")
    if added:
        return failed(f"All capabilities are dropped, but {', '.join(added)} are added back, and "
                      "this service needs none of them: port 8080 is above 1024 and it only "
                      'writes to its own tmpfs. Leave "cap_add" empty.')
    if effective and int(effective, 16) != 0 or bounding and int(bounding, 16) != 0:
        return failed(f"Inside, the service still holds capabilities (CapEff {effective}, "
                      f"CapBnd {bounding}).")
    return passed(f"--cap-drop ALL, nothing added; inside, CapEff is {effective or '0'} and "
                  f"CapBnd {bounding or '0'}.")


def _verdict_nnp(seen: dict) -> Verdict:
    options = seen["host_config"].get("SecurityOpt") or []
    flag = (seen.get("status") or {}).get("NoNewPrivs")
    if not any(o in NO_NEW_PRIVILEGES for o in options):
        return failed("no-new-privileges is not set: a setuid program in the image (su, passwd, "
                      "mount) could still raise a process to root. Add "
                      '"security_opt": ["no-new-privileges"] (docker run --security-opt '
                      "no-new-privileges).")
    if flag != "1":
        return failed(f"no-new-privileges is asked for, but the service's NoNewPrivs is {flag}.")
    return passed("no-new-privileges: NoNewPrivs is 1 in the service's process.")


def _verdict_serves(seen: dict) -> Verdict:
    answers = seen.get("answers") or []
    state = seen.get("state") or {}
    logs = seen.get("logs", "").strip()
    if not state.get("Running") and not any(GREETING in a for a in answers):
        return failed(f"The service stopped (exit code {state.get('ExitCode')}) instead of "
                      f"serving. Its last lines:\n{logs or '(nothing)'}")
    first = answers[0] if answers else ""
    if GREETING not in first:
        hint = ""
        if first.startswith("500") or "cannot write" in logs:
            hint = (" It answered with an error: it could not write its visit counter. With a "
                    'read-only root, give /tmp a tmpfs: "tmpfs": {"/tmp": "size=16m"}.')
        return failed(f"Asked for / on port {PORT}, the service did not greet: "
                      f"{first or seen.get('probe_error') or 'no answer'}.{hint}"
                      + (f"\nIts last lines:\n{logs}" if logs else ""))
    if len(answers) < 2 or "visit 2" not in answers[1]:
        return failed(f"The service greeted once, but its second answer was "
                      f"{(answers[1] if len(answers) > 1 else '') or 'missing'}: it should "
                      "count to 2, keeping the count in /tmp.")
    return passed(f"the service answered: {first!r}, then {answers[1]!r}.")


def judge(*, sandbox: Sandbox, answer, lab: Lab) -> dict[str, Verdict]:
    """Build the answer, run it with its options, and judge every criterion."""
    client = sandbox.client
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
            "replace it with your instructions (or delete it).")
        verdicts.update(not_judged(lab, "the image did not build."))
        return verdicts
    expected_app = lab.lab_file(APP).read_bytes()
    if answer.files.get(APP) != expected_app:
        verdicts["builds"] = failed(
            f"{APP} is missing from the folder or is not the lab's own: grading runs the service "
            "handed out with the lab, so keep app.py next to the Dockerfile, unchanged.")
        verdicts.update(not_judged(lab, "the service is not the lab's."))
        return verdicts
    for image in dict.fromkeys((BASE_IMAGE, PROBE_IMAGE)):
        try:
            sandbox.reference(image)
        except docker.errors.ImageNotFound as exc:
            raise ImageError(f"The course image {image} is not on this engine, so the security "
                             "lab cannot be judged.", "Run `docklab images prepare`.") from exc

    build = sandbox.build(answer.tar())
    if not build.ok:
        feedback = build_failed(build, sandbox.limits, BUILD)
        if answer.problems:
            feedback = " ".join(answer.problems) + " " + feedback
        verdicts["builds"] = failed(feedback)
        verdicts.update(not_judged(lab, "the image did not build, so there is nothing to run."))
        sandbox.details["build_log_tail"] = build.log[-4000:]
        return verdicts
    verdicts["builds"] = passed(f"built in {build.seconds:.1f} s.")
    image = client.images.get(build.image_id)
    image_user = (image.attrs.get("Config") or {}).get("User") or ""
    sandbox.details["image_user"] = image_user
    sandbox.details["image_uid"] = _image_uid(sandbox, build.image_id, image_user)

    text, why = run_spec_text(answer)
    kwargs, problem = parse_run_spec(text) if text is not None else (None, why)
    if kwargs is None:
        verdicts.update(not_judged(lab, f"{problem} Grading starts no container without valid "
                                   "run options.", skip=("builds",)))
        return verdicts
    sandbox.details["docker_run"] = docker_run_command(kwargs)
    seen = _observe(sandbox, build.image_id, kwargs)
    seen["user_from_spec"] = "user" in kwargs
    sandbox.details["answers"] = seen.get("answers") or []
    if not seen["started"]:
        verdicts.update(not_judged(lab, f"the engine did not start the container: "
                                   f"{seen.get('error')}", skip=("builds",)))
        return verdicts
    verdicts["runs_non_root"] = _verdict_user(seen, image_user)
    running = bool(seen.get("status"))
    if running:
        verdicts["read_only_root"] = _verdict_read_only(seen)
        verdicts["tmp_is_tmpfs"] = _verdict_tmpfs(seen)
        verdicts["caps_dropped"] = _verdict_caps(seen)
        verdicts["no_new_privileges"] = _verdict_nnp(seen)
    else:
        reason = (f"the service was not running, so nothing could be looked at inside it. Its "
                  f"last lines:\n{seen.get('logs', '').strip() or '(nothing)'}")
        verdicts.update(not_judged(lab, reason, skip=("builds", "runs_non_root", "serves")))
    verdicts["serves"] = _verdict_serves(seen)
    return verdicts


def _image_user_is_root(user: str) -> bool:
    return user.split(":")[0] in ("", "0", "root")


def _image_uid(sandbox: Sandbox, image_id: str, user: str) -> int | None:
    """The uid the image's USER stands for (its /etc/passwd names it), or None when unknown."""
    name = user.split(":")[0]
    if not name:
        return 0
    if name.isdigit():
        return int(name)
    data, _ = sandbox.read_file(image_id, "/etc/passwd")
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[0] == name and fields[2].isdigit():
            return int(fields[2])
    return None


def image_not_root(details: dict) -> Verdict:
    """The image's own USER is not root, so a container started without the lab's run options
    is not root either: the hidden test of ``runs_non_root``, from what the judge recorded."""
    if "image_user" not in details:
        return unjudged("the image did not build.")
    user = details["image_user"]
    uid = details.get("image_uid")
    topic = f"(Lesson {LESSON}: {TOPICS['runs_non_root']}.)"
    if uid is None and not _image_user_is_root(user):
        return failed(f"The image's USER is {user!r}, a name its /etc/passwd does not know: a "
                      "container started without your run options would not start. Use a uid, "
                      f"e.g. USER 10001. {topic}")
    if uid == 0 or _image_user_is_root(user):
        shown = f"{user!r}, which is root" if user else "root (no USER)"
        return failed(f"The image's own user is {shown}: a container started without your run "
                      "options would run as root. Put USER 10001 in the Dockerfile, so that the "
                      f"image is safe wherever it runs. {topic}")
    return passed(f"the image's own USER is {user} (uid {uid}).")


LAB = Lab("security", "security: a hardened service that still works", CRITERIA, judge,
          files=(APP,), base_image=BASE_IMAGE, images=(PROBE_IMAGE,),
          hidden={"runs_non_root": image_not_root}, sealed_ready=True,
          lesson=LESSON, topics=TOPICS)


grade = LAB.grade
self_check = LAB.self_check


def assert_image_not_root(answer: str | os.PathLike = ".") -> None:
    """The image itself names a non-root USER, so every container started from it is not root."""
    verdict = image_not_root(grade(answer).details)
    assert verdict.passed, verdict.feedback


def try_it(answer: str | os.PathLike = ".") -> None:
    """Start the service as grading does and show what it answered, with the docker run line."""
    if os.environ.get("NBGRADER_EXECUTION") == "autograde":
        print("(skipped while autograding: the graded tests build and run the service)")
        return
    report = LAB.check(answer, cached=False)
    print(f"$ docker build -t security-lab .\n  {report['builds'].feedback}")
    if "docker_run" in report.details:
        print(f"$ {report.details['docker_run']}")
        for number, text in enumerate(report.details.get("answers") or [], 1):
            print(f"$ curl http://localhost:{PORT}/    # request {number}\n{text or '(no answer)'}")
    print(f"\n{report.score}/{report.max_score} points: run the self-check for the details.")
