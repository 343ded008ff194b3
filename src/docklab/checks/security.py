"""Checks for the security lab: a small web service, hardened, that still works.

The lab hands out ``app.py``, a Python web service on port 8080 that counts its visits in
``/tmp/visits``. The learner hands in two files, each written by a ``%%writefile`` cell:

- ``Dockerfile``: ``FROM python:3.11-slim``, the lab's ``app.py`` copied in unchanged, and a
  ``USER`` that is not root. The learner builds it (``docker build -t security-lab .``);
- ``run.sh``: the ``docker run`` line that starts it, hardened, as they would type it: a
  read-only root filesystem, a tmpfs on ``/tmp``, every capability dropped, no-new-privileges.

The reference answer is in ``grader/source/security/`` (instructors only: the learner's image holds
no solution).

**The answer path** (``docklab check security <path>``) is a folder holding both (and app.py),
or the lab notebook, whose last ``%%writefile Dockerfile`` and ``%%writefile run.sh`` cells are
the answer.

The script is data (:mod:`docklab.checks.commands`): it never reaches a shell. Only blank lines,
comments, ``\\`` continuations and docker commands are read, and anything a shell would act on
(``;``, ``$(...)``, ...), another program or ``docker -H ...`` refuses the whole script, naming
the line. Of what is left, this lab takes **one** ``docker run`` of its image, ``security-lab``,
with the options it is about: ``--user``, ``--read-only``, ``--tmpfs``, ``--cap-drop``,
``--cap-add`` (a capability of Docker's default set only), ``--security-opt no-new-privileges``
(beside ``-d``, ``--name``, ``--rm``, ``-it``, ``--restart``, ``--label`` and ``-p``, which change
nothing it looks at: grading names, labels and detaches the container itself and asks the
service on a network of its own). Anything else starts **nothing** and every check but
``builds`` says why: options that would undo the hardening (``--privileged``, ``--cap-add
SYS_ADMIN``, ``--security-opt seccomp=unconfined``, a mount such as ``-v /:/host``, the host's
namespaces such as ``--pid host``, ``--network host``, the engine's socket), another image, a
command replacing the service's, a second container.

Judged through the engine: the image is built (bounded, see :mod:`docklab.checks.sandbox`); the
``docker run`` line is run by the real docker CLI (the course image ``docklab/docker-cli``, in a
container on the engine being judged: :class:`~docklab.checks.inside.ToolContainer`), rewritten:
the image by the ID just built, a name of the grading run's own, the course labels, grading's
memory, CPU and pids limits (but not its usual ``--cap-drop ALL`` and no-new-privileges: those
are the script's to set), on an internal network of its own where ``security-lab`` is its alias.
Then, as before:

- its ``HostConfig`` and ``Config`` are inspected (ReadonlyRootfs, CapDrop/CapAdd, SecurityOpt,
  Tmpfs, User);
- from inside: the service process's ``/proc/1/status`` (Uid, CapEff, CapBnd, NoNewPrivs), a write
  to ``/`` (which must fail) and ``/proc/mounts`` (``/tmp`` a tmpfs);
- the service is asked for ``/`` twice by a helper container (python:3.11-slim) on that network: it
  must greet, and count to 2 (so it could write its counter).

Everything is labelled and removed afterwards. Equivalent CLI: ``docklab check security <folder or
notebook> [--json]``.

Graded (``nbgrader autograde``), this runs on a sealed engine (:mod:`docklab.grading`): a rootless
dockerd with python:3.11-slim and docklab/docker-cli loaded by their image IDs and no network (the
build needs none). The judge talks only to ``sandbox.client``; the service, the CLI and the probe
are containers of that engine. What a rootless engine changes, and how it is judged there:

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
import time
from dataclasses import dataclass, field

import docker.errors
import requests.exceptions

from docklab.checks import commands as cmd
from docklab.checks.answer import PLACEHOLDER
from docklab.checks.base import Criterion, Lab, Verdict, failed, not_judged, passed, unjudged
from docklab.checks.feedback import BuildLab, build_failed
from docklab.checks.inside import ToolContainer
from docklab.checks.sandbox import Sandbox
from docklab.engine import exec_output
from docklab.errors import ImageError

BASE_IMAGE = "python:3.11-slim"
PROBE_IMAGE = BASE_IMAGE
APP = "app.py"
SCRIPT = "run.sh"
#: The image the learner builds (``docker build -t security-lab .``), as run.sh names it.
IMAGE = "security-lab"
IMAGE_NAMES = (IMAGE, f"{IMAGE}:latest")
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
#: ``docker run`` options this lab judges: passed to the CLI once their values are checked.
KEPT = {"--user", "--read-only", "--tmpfs", "--cap-drop", "--cap-add", "--security-opt"}
#: Options that change nothing grading looks at: dropped without a word (grading detaches,
#: names and labels the container itself, and asks the service on a network of its own, so a
#: published port is not needed).
DROPPED = {"--detach", "--name", "--rm", "--interactive", "--tty", "--restart", "--label",
           "--publish", "--publish-all"}
#: Options that would undo the hardening, or reach the host: the script is not run, and why.
UNDOING = {
    "--privileged": "gives the container every capability and the host's devices, and "
                    "switches seccomp and AppArmor off: the opposite of this lab",
    "--volume": "mounts something into the container: a host folder (-v /:/host is the "
                "host's whole filesystem) or a writable volume beside the read-only root",
    "--mount": "mounts something into the container: a host folder or a writable volume",
    "--volumes-from": "mounts another container's volumes",
    "--device": "hands the container a device of the host",
    "--use-api-socket": "hands the container the engine's API socket, which is root on the host",
    "--pid": "shares the host's processes (--pid host) or another container's",
    "--ipc": "shares the host's (or another container's) IPC namespace",
    "--uts": "shares the host's UTS namespace",
    "--userns": "takes the container out of the engine's user namespace (--userns host)",
    "--cgroupns": "shows the container the host's cgroups (--cgroupns host)",
    "--network": "is grading's to choose: it starts the service on a network of its own to "
                 "ask it for / (and --network host would share the host's network namespace)",
    "--sysctl": "changes kernel settings for the container",
}
#: Capabilities run.sh may add back: Docker's default set (none is needed: the service listens
#: on a high port). Anything beyond it (SYS_ADMIN, NET_ADMIN, SYS_PTRACE ...) is refused.
ADDABLE = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "NET_BIND_SERVICE", "KILL",
           "SETPCAP", "FSETID", "AUDIT_WRITE", "MKNOD", "NET_RAW", "SYS_CHROOT", "SETFCAP"}
NO_NEW_PRIVILEGES = {"no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"}
#: Spelled out as off: accepted (no_new_privileges then fails), not refused.
NEW_PRIVILEGES_ALLOWED = {"no-new-privileges:false", "no-new-privileges=false"}
_CAP = re.compile(r"^(CAP_)?[A-Z_]{2,32}$")
_USER = re.compile(r"^[A-Za-z0-9_.-]{1,32}(:[A-Za-z0-9_.-]{1,32})?$")
#: The words of this lab's build feedback: it installs nothing and needs no network.
BUILD = BuildLab(base=BASE_IMAGE, files=(APP,))
_TMPFS_OPTION = re.compile(r"^(size=\d+[kmg]?|mode=[0-7]{3,4}|uid=\d+|gid=\d+|noexec|exec|"
                           r"nosuid|suid|nodev|dev|rw|ro)$")
_CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$", re.MULTILINE)

CRITERIA = [
    Criterion("builds", 1, "the Dockerfile builds, with the lab's app.py", needs_image=False),
    Criterion("runs_non_root", 2, "the service runs as a user that is not root"),
    Criterion("read_only_root", 2, "the root filesystem is read-only: a write to / fails"),
    Criterion("tmp_is_tmpfs", 1, "/tmp, where the service writes, is a tmpfs"),
    Criterion("caps_dropped", 2, "every capability is dropped (--cap-drop ALL), none added"),
    Criterion("no_new_privileges", 1, "no-new-privileges is set"),
    Criterion("serves", 2, "the hardened service still answers and counts its visits"),
]


# -- the script ---------------------------------------------------------------------------------

@dataclass
class RunPlan:
    """The script's ``docker run`` of security-lab as grading runs it, or why it does not."""

    #: The docker argv (without ``docker``) grading runs; empty when it runs nothing.
    argv: list[str] = field(default_factory=list)
    #: Why nothing is run, each naming its line (empty: the plan runs).
    refused: list[str] = field(default_factory=list)
    #: The line as the learner wrote it.
    text: str = ""
    #: The container's name as grading runs it ("" when the script gives none).
    name: str = ""
    #: The script sets the user (--user), not only the image's USER.
    user: bool = False


def _refusal(option: str, value: str | None) -> str:
    """Why ``option value`` is not run in this lab, or "" when it is fine."""
    if option == "--cap-add":
        cap = (value or "").upper().removeprefix("CAP_")
        if cap == "ALL" or not _CAP.match(cap) or cap not in ADDABLE:
            return (f"`--cap-add {value}` asks for more than Docker's default capabilities "
                    "(SYS_ADMIN, for one, is nearly root on the host): grading does not start a "
                    "container with that much power, and this service needs no capability")
        return ""
    if option == "--security-opt":
        if value in NO_NEW_PRIVILEGES | NEW_PRIVILEGES_ALLOWED:
            return ""
        return (f"`--security-opt {value}`: this lab takes only no-new-privileges there; "
                "seccomp=unconfined, apparmor=unconfined or label=disable take protections "
                "away, not add them")
    if option == "--cap-drop":
        if value and (value.upper() == "ALL" or _CAP.match(value.upper())):
            return ""
        return f"`--cap-drop {value}` is not a capability name (e.g. ALL, NET_RAW)"
    if option == "--user":
        if value and _USER.match(value):
            return ""
        return (f"`--user {value}` is not a user: a name or uid, optionally with :group "
                "(--user 10001:10001)")
    if option == "--tmpfs":
        path, _, options = (value or "").partition(":")
        if not path.startswith("/") or ".." in path:
            return f"`--tmpfs {value}` does not start with an absolute folder (--tmpfs /tmp)"
        bad = [o for o in options.split(",") if o and not _TMPFS_OPTION.match(o)]
        if bad:
            return (f"`--tmpfs {value}`: the options {', '.join(bad)} are not accepted "
                    "(size=, mode=, uid=, gid=, noexec, nosuid, nodev)")
        return ""
    if option in KEPT:
        return ""      # --read-only: the CLI reads its value (true/false) itself
    why = UNDOING.get(option)
    if why:
        return f"`{option}` {why}"
    return (f"`{option}` is not one of this lab's options (--user, --read-only, --tmpfs, "
            "--cap-drop, --cap-add, --security-opt; -d, --name, --rm and -p are taken too)")


def plan(script: cmd.Script, rewrite: cmd.Rewrite, image_id: str) -> RunPlan:
    """The script as grading runs it: one ``docker run`` of security-lab with the options this
    lab judges, or (``refused``) why nothing is run."""
    result = RunPlan()
    runs = []
    for command in script.commands:
        if command.kind != "run":
            result.refused.append(f"{command.where}: this lab needs no {command.kind.split()[0]} "
                                  "of its own; its run.sh is the docker run of security-lab.")
        elif command.image not in IMAGE_NAMES:
            result.refused.append(f"{command.where}: it runs {command.image!r}; grading runs "
                                  f"only the lab's image, {IMAGE} (docker build -t {IMAGE} .).")
        else:
            runs.append(command)
    if not runs:
        result.refused.append(f"There is no docker run of {IMAGE}: write one, e.g. docker run "
                              f"-d --name {IMAGE} ... {IMAGE}.")
    for extra in runs[1:]:
        result.refused.append(f"{extra.where}: a second docker run of {IMAGE}; grading judges "
                              "one container, started by one docker run line.")
    if result.refused:
        return result
    command = runs[0]
    result.text = command.text
    if command.args:
        result.refused.append(f"{command.where}: `{' '.join(command.args)}` after the image "
                              "replaces the service's own command (CMD); grading runs the lab's "
                              "service: leave it out.")
    kept: list[str] = []
    for option, value in command.options:
        if option in DROPPED:
            continue
        why = _refusal(option, value)
        if why:
            result.refused.append(f"{command.where}: {why}.")
        elif value is None:
            kept.append(option)
        else:
            kept.append(f"{option}={value}")    # one word: the CLI reads it as written
    if result.refused:
        return result
    head = rewrite.run_head(command, harden=False)
    result.name = rewrite.containers.get(command.name, "")
    result.user = command.has("--user")
    # The probe asks for http://security-lab:8080/ on grading's own network.
    result.argv = [*head, "--network-alias", IMAGE, *kept, image_id]
    return result


def refused_feedback(refused: list[str]) -> str:
    return (f"{SCRIPT} was not run, none of it, so no container was started: "
            + " ".join(refused))


# -- looking at the running service -------------------------------------------------------------

def _status(text: str) -> dict[str, str]:
    """``/proc/<pid>/status`` → {field: value}."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


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
            # The probe bounds itself (~21 s of asking); the rest is Python starting under the
            # sandbox's CPU limit, which took over 10 s on a loaded two-core machine.
            helper.wait(timeout=limits.run_timeout + 20)
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


def _network_name(sandbox: Sandbox) -> str:
    return f"docklab-grade-{sandbox.run_id}-security-net"


def _observe(sandbox: Sandbox, run: RunPlan, rewrite: cmd.Rewrite, image_id: str) -> dict:
    """Start the service with the script's docker run (the docker CLI, in a container on the
    judged engine), on an internal network of the run's own; inspect it, look inside, probe it."""
    client = sandbox.client
    seen: dict = {"started": False}
    network = client.networks.create(_network_name(sandbox), driver="bridge", internal=True,
                                     labels=sandbox.labels("network"))
    with ToolContainer(sandbox, cmd.CLI_IMAGE) as tool:
        (done,) = cmd.run_commands(tool, [run.argv])
    seen["command"] = {"status": done["status"],
                       "stderr": _yours(done["stderr"][-600:], rewrite, image_id)}
    ids = _CONTAINER_ID.findall(done["stdout"])
    if done["status"] != 0:
        said = _yours((done["stderr"].strip() or done["stdout"].strip())[-600:], rewrite,
                      image_id)
        said = said.split("\n\nUsage:")[0].strip()   # the CLI's reason, not its usage text
        seen["error"] = f"the docker CLI said: {said or 'exit status ' + str(done['status'])}"
        for container_id in ids:
            sandbox.remove_container(container_id)
        return seen
    try:
        container = client.containers.get(run.name or ids[-1])
    except (docker.errors.NotFound, IndexError):
        seen["error"] = "its container is gone (docker run --rm, and it stopped?)"
        return seen
    seen["started"] = True
    try:
        _look(sandbox, container, network.name, seen)
    finally:
        sandbox.remove_container(container.id)
    return seen


def _yours(text: str, rewrite: cmd.Rewrite, image_id: str) -> str:
    """``text`` with grading's names put back to the script's (for feedback)."""
    for mine, graded in rewrite.containers.items():
        text = text.replace(graded, mine)
    return text.replace(image_id, IMAGE)


def _look(sandbox: Sandbox, container, network: str, seen: dict) -> None:
    """What the running service shows: its answers, inspect, and from inside."""
    seen["answers"], seen["probe_error"] = _probe(sandbox, network, IMAGE)
    container.reload()
    seen["state"] = container.attrs.get("State") or {}
    seen["host_config"] = container.attrs.get("HostConfig") or {}
    seen["config"] = container.attrs.get("Config") or {}
    seen["logs"] = _logs(container)
    if seen["state"].get("Running"):
        code, text = exec_output(container, ["cat", "/proc/1/status"])
        seen["status"] = _status(text) if code == 0 else {}
        if code != 0:
            seen["exec_error"] = _exec_error(code, text)
        # As root of the container: a non-root user cannot write to / even when it is writable.
        probe = f"/.docklab-probe-{int(time.time())}"
        # It always prints (written, or why not), so that a reply with no output is retried.
        code, text = exec_output(container, ["sh", "-c", (
            f"why=$( (echo x > {probe}) 2>&1 ) && rm -f {probe} && echo written "
            '|| echo "refused: $why"')], user="0")
        seen["root_write"] = (code, text.strip())
        code, text = exec_output(container, ["cat", "/proc/mounts"])
        seen["mounts"] = text if code == 0 else None
        if code != 0:
            seen["exec_error"] = _exec_error(code, text)


def _exec_error(code: int | None, text: str) -> str:
    return text[-300:] if code is None else f"exit status {code}: {text[-300:]}"


# -- the verdicts -------------------------------------------------------------------------------

def _uid(seen: dict) -> int | None:
    uids = (seen.get("status") or {}).get("Uid", "").split()
    return int(uids[1]) if len(uids) > 1 and uids[1].isdigit() else None


def _not_looked_at(seen: dict) -> str:
    """Why nothing could be looked at inside the service."""
    state = seen.get("state") or {}
    if state.get("Running"):
        why = (seen.get("exec_error") or "no answer").strip()
        return (f"docker exec into the running service failed ({why}), "
                "so nothing could be looked at inside it")
    return (f"the service was not running (status {state.get('Status')}, exit code "
            f"{state.get('ExitCode')}), so nothing could be looked at inside it")


def _verdict_user(seen: dict, image_user: str) -> Verdict:
    user = seen["config"].get("User") or ""
    uid = _uid(seen)
    if uid is None:
        return unjudged(f"{_not_looked_at(seen)}.")
    if uid == 0:
        where = (f"the user is {user!r}, which is root" if user else
                 "neither the Dockerfile (USER) nor run.sh (--user) names a user, so it is "
                 "root, as in every image that does not say otherwise")
        return failed(f"The service runs as uid 0: {where}. Root in a container is root on the "
                      "host's kernel, held back only by capabilities and namespaces; add USER "
                      "10001 (any uid but 0) to the Dockerfile.")
    source = ("the image's USER" if image_user and not seen.get("user_from_script")
              else "run.sh's --user")
    return passed(f"the service runs as uid {uid} (from {source}).")


def _verdict_read_only(seen: dict) -> Verdict:
    flag = bool(seen["host_config"].get("ReadonlyRootfs"))
    code, text = seen.get("root_write", (None, ""))
    if not flag:
        return failed("The root filesystem is writable (HostConfig.ReadonlyRootfs is false): "
                      "anyone who takes over the service can change its code and tools. Add "
                      "--read-only to the docker run line in run.sh.")
    if code is None:
        return unjudged(f"ReadonlyRootfs is true; writing to / could not be tried: {text}.")
    if text == "written":
        return failed("ReadonlyRootfs is set, yet a write to / succeeded inside the container.")
    why = text.removeprefix("refused:").strip()
    return passed(f"ReadonlyRootfs is true and writing to / fails ({why or 'refused'}).")


def _is_tmpfs(mounts: str, path: str) -> bool:
    return any(fields[1] == path and fields[2] == "tmpfs"
               for fields in (line.split() for line in mounts.splitlines()) if len(fields) > 2)


def _verdict_tmpfs(seen: dict) -> Verdict:
    mounts = seen.get("mounts", "")  # not running: none looked at, and none is a tmpfs
    if mounts is None:
        return unjudged(f"{_not_looked_at(seen)}.")
    if not _is_tmpfs(mounts, "/tmp"):
        return failed("/tmp is not a tmpfs: the service keeps its visit count in /tmp/visits, "
                      "and with a read-only root that is the one place it needs to write. Give it "
                      "a small tmpfs: docker run --tmpfs /tmp:size=16m; it lives in memory and "
                      "goes with the container.")
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
                      "docker run --cap-drop ALL and add back only what the service needs: "
                      "here, nothing (port 8080 is above 1024).")
    if added:
        return failed(f"All capabilities are dropped, but {', '.join(added)} are added back, and "
                      "this service needs none of them: port 8080 is above 1024 and it only "
                      "writes to its own tmpfs. Leave --cap-add out.")
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
                      "--security-opt no-new-privileges to the docker run line.")
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
                    "read-only root, give /tmp a tmpfs: --tmpfs /tmp:size=16m.")
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
    for image in dict.fromkeys((BASE_IMAGE, PROBE_IMAGE, cmd.CLI_IMAGE)):
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

    text, why = cmd.script_text(answer, SCRIPT)
    if text is None or PLACEHOLDER in text:
        verdicts.update(not_judged(lab, why or f"the {SCRIPT} cell still holds the placeholder "
                                   "`raise NotImplementedError()`: replace it with your docker "
                                   f"run line, so there is nothing to run.", skip=("builds",)))
        return verdicts
    script = cmd.read_script(text)
    rewrite = cmd.Rewrite(sandbox, network_mode=_network_name(sandbox))
    run = plan(script, rewrite, build.image_id) if not script.refused else \
        RunPlan(refused=script.refused)
    if run.refused:
        verdicts.update(not_judged(lab, refused_feedback(run.refused), skip=("builds",)))
        return verdicts
    sandbox.details["docker_run"] = run.text
    seen = _observe(sandbox, run, rewrite, build.image_id)
    seen["user_from_script"] = run.user
    sandbox.details["answers"] = seen.get("answers") or []
    sandbox.details["command"] = seen.get("command")
    sandbox.details["exec_error"] = seen.get("exec_error")
    sandbox.details["state"] = {k: (seen.get("state") or {}).get(k)
                                for k in ("Status", "ExitCode", "OOMKilled", "Error")}
    if not seen["started"]:
        verdicts.update(not_judged(lab, f"the container did not start: {seen.get('error')}",
                                   skip=("builds",)))
        return verdicts
    verdicts["runs_non_root"] = _verdict_user(seen, image_user)
    running = bool(seen.get("status"))
    if running:
        verdicts["read_only_root"] = _verdict_read_only(seen)
        verdicts["tmp_is_tmpfs"] = _verdict_tmpfs(seen)
        verdicts["caps_dropped"] = _verdict_caps(seen)
        verdicts["no_new_privileges"] = _verdict_nnp(seen)
    else:
        reason = (f"{_not_looked_at(seen)}. Its last lines:\n"
                  f"{seen.get('logs', '').strip() or '(nothing)'}")
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
          files=(APP,), base_image=BASE_IMAGE, images=(PROBE_IMAGE, cmd.CLI_IMAGE),
          hidden={"runs_non_root": image_not_root}, sealed_ready=True,
          lesson=LESSON, topics=TOPICS)


grade = LAB.grade
self_check = LAB.self_check


def assert_image_not_root(answer: str | os.PathLike = ".") -> None:
    """The image itself names a non-root USER, so every container started from it is not root."""
    verdict = image_not_root(grade(answer).details)
    assert verdict.passed, verdict.feedback
