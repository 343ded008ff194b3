"""A lab answered as a script of ``docker`` commands (``run.sh``), read as data, never as a shell.

The volumes, networking and security labs are answered with the commands a learner would type
(``docker volume create NAME``, ``docker network create NAME``, ``docker run -d --name NAME
[OPTIONS] IMAGE [COMMAND]``, one a line). Each lab's own answer is in its source,
``grader/source/<lab>/`` (instructors only: the learner's image holds no solution).

The script is untrusted. It never reaches a shell, here or anywhere: :func:`read_script` splits
it with :mod:`shlex` and accepts only blank lines, comments, ``\\`` continuations and the commands
``docker volume create``, ``docker network create`` and ``docker run`` (``docker container run``
too). Everything else is refused, naming its line, and then *nothing* of the script is run:
other programs (``rm``, ``curl``), shell syntax (``;``, ``&&``, ``|``, ``>``, ``$(...)``,
backquotes, ``$VAR``), options before the command (``-H``, ``--context``, ``--config``: another
engine, another configuration), an option the docker CLI does not know.

A lab then turns each accepted command into the one grading runs (:class:`Rewrite`): its own
names (so nothing clashes), the course labels, limits (memory, pids, CPU, no capabilities), the
course images by the IDs the judge recorded, host ports replaced; and what a lab does not run
(privileges, host folders, the host's namespaces, driver options, other images) left out, each
with a line of feedback. The commands run with the real ``docker`` CLI of the course image
``docklab/docker-cli``, in a container on the engine being judged
(:class:`~docklab.checks.inside.ToolContainer`): the CLI parses the options as it does for the
learner, and what it can reach is that engine alone.

Equivalent CLI: ``docker run --rm -v <engine socket>:/var/run/docker.sock docklab/docker-cli
run -d --name docklab-grade-...-notes --label ... --memory 512m ... <image id>``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from docklab.checks.answer import PLACEHOLDER, answer_file
from docklab.checks.base import Lab, Verdict, failed, not_judged

#: The course image with the docker CLI that runs the graded commands.
CLI_IMAGE = "docklab/docker-cli"
#: A script longer than this is not a lab's answer.
MAX_LINES = 60
MAX_BYTES = 20_000

#: ``docker run`` options that take no value (``docker run --help`` of CLI 28); every other
#: option it knows takes one.
RUN_FLAGS = {"--detach", "--disable-content-trust", "--help", "--init", "--interactive",
             "--no-healthcheck", "--oom-kill-disable", "--privileged", "--publish-all",
             "--quiet", "--read-only", "--rm", "--sig-proxy", "--tty", "--use-api-socket"}
RUN_VALUES = {
    "--add-host", "--annotation", "--attach", "--blkio-weight", "--blkio-weight-device",
    "--cap-add", "--cap-drop", "--cgroup-parent", "--cgroupns", "--cidfile", "--cpu-count",
    "--cpu-percent", "--cpu-period", "--cpu-quota", "--cpu-rt-period", "--cpu-rt-runtime",
    "--cpu-shares", "--cpus", "--cpuset-cpus", "--cpuset-mems", "--detach-keys", "--device",
    "--device-cgroup-rule", "--device-read-bps", "--device-read-iops", "--device-write-bps",
    "--device-write-iops", "--dns", "--dns-option", "--dns-opt", "--dns-search", "--domainname",
    "--entrypoint", "--env", "--env-file", "--expose", "--gpus", "--group-add", "--health-cmd",
    "--health-interval", "--health-retries", "--health-start-interval", "--health-start-period",
    "--health-timeout", "--hostname", "--io-maxbandwidth", "--io-maxiops", "--ip", "--ip6",
    "--ipc", "--isolation", "--kernel-memory", "--label", "--label-file", "--link",
    "--link-local-ip", "--log-driver", "--log-opt", "--mac-address", "--memory",
    "--memory-reservation", "--memory-swap", "--memory-swappiness", "--mount", "--name",
    "--network", "--network-alias", "--oom-score-adj", "--pid", "--pids-limit", "--platform",
    "--publish", "--pull", "--restart", "--runtime", "--security-opt", "--shm-size",
    "--stop-signal", "--stop-timeout", "--storage-opt", "--sysctl", "--tmpfs", "--ulimit",
    "--user", "--userns", "--uts", "--volume", "--volume-driver", "--volumes-from", "--workdir"}
RUN_SHORT = {"d": "--detach", "i": "--interactive", "t": "--tty", "P": "--publish-all",
             "q": "--quiet", "a": "--attach", "c": "--cpu-shares", "e": "--env",
             "h": "--hostname", "l": "--label", "m": "--memory", "p": "--publish", "u": "--user",
             "v": "--volume", "w": "--workdir"}
#: ``docker volume create`` and ``docker network create``: their options, by kind.
CREATE_FLAGS = {
    "volume": set(),
    "network": {"--attachable", "--config-only", "--ingress", "--internal", "--ipv4",
                "--ipv6"},
}
CREATE_VALUES = {
    "volume": {"--driver", "--label", "--opt", "--name", "--availability", "--group",
               "--limit-bytes", "--required-bytes", "--scope", "--secret", "--sharing",
               "--topology-preferred", "--topology-required", "--type"},
    "network": {"--driver", "--label", "--opt", "--subnet", "--gateway", "--ip-range",
                "--ipam-driver", "--ipam-opt", "--aux-address", "--config-from", "--scope"},
}
CREATE_SHORT = {"volume": {"d": "--driver", "o": "--opt"}, "network": {"d": "--driver",
                                                                        "o": "--opt"}}
ALIASES = {"--net": "--network", "--net-alias": "--network-alias", "--dns-opt": "--dns-option"}
#: Which commands a script may hold: (words after ``docker``) → kind.
COMMANDS = {("run",): "run", ("container", "run"): "run",
            ("volume", "create"): "volume create", ("network", "create"): "network create"}
#: Characters a shell would act on: grading runs no shell, so a script that needs one is refused.
_SHELL = re.compile(r"[;&|<>()`$]")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class Command:
    """One accepted command: where it is, and its options as the docker CLI will read them."""

    line: int                                 # the script's line it starts on
    text: str                                 # as written (continuations joined)
    kind: str                                 # "run", "volume create" or "network create"
    options: list[tuple[str, str | None]] = field(default_factory=list)   # (--long, value)
    image: str = ""                           # run: the image
    args: list[str] = field(default_factory=list)   # run: its command; create: the name

    def values(self, *names: str) -> list[str]:
        """Every value given to the options ``names`` (``--volume``), in order."""
        return [value for option, value in self.options if option in names and value is not None]

    def has(self, name: str) -> bool:
        return any(option == name for option, _ in self.options)

    @property
    def name(self) -> str:
        """``--name`` of a run, or the name a create command gives."""
        if self.kind == "run":
            names = self.values("--name")
            return names[-1] if names else ""
        names = self.values("--name") or self.args[:1]
        return names[-1] if names else ""

    @property
    def where(self) -> str:
        return f"line {self.line} (`{_short(self.text)}`)"


@dataclass
class Script:
    """A script read as data: its accepted commands, or why it is refused (nothing then runs)."""

    commands: list[Command] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def runs(self) -> list[Command]:
        return [c for c in self.commands if c.kind == "run"]


def _short(text: str, size: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[:size - 1] + "…"


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, line) for each command line: ``\\`` at a line's end continues it;
    blank lines and comments are left out."""
    lines, pending, first = [], "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            first = number
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        lines.append((first, (pending + stripped).strip()))
        pending = ""
    if pending.strip():
        lines.append((first, pending.strip()))
    return lines


def _options(words: list[str], flags: set[str], values: set[str], short: dict[str, str],
             stop_at_positional: bool) -> tuple[list[tuple[str, str | None]], list[str], str]:
    """Split ``words`` into (options, positional words, problem) as the docker CLI (pflag) would:
    ``--opt value``, ``--opt=value``, ``-v value``, ``-dp 8080:80``, ``--`` ends the options.
    For ``run``, options end at the first positional word (the image)."""
    options: list[tuple[str, str | None]] = []
    positional: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            positional += words[i + 1:]
            break
        if word.startswith("--"):
            name, equals, value = word.partition("=")
            name = ALIASES.get(name, name)
            if name in flags:
                options.append((name, value if equals else None))
            elif name in values:
                if not equals:
                    if i + 1 >= len(words):
                        return options, positional, f"`{name}` needs a value"
                    i += 1
                    value = words[i]
                options.append((name, value))
            else:
                return options, positional, f"`{name}` is not an option of this docker command"
        elif word.startswith("-") and len(word) > 1:
            letters = word[1:]
            for at, letter in enumerate(letters):
                name = short.get(letter)
                if name is None:
                    return options, positional, f"`-{letter}` is not an option of this command"
                if name in flags:
                    options.append((name, None))
                    continue
                value = letters[at + 1:].removeprefix("=")
                if not value:
                    if i + 1 >= len(words):
                        return options, positional, f"`-{letter}` needs a value"
                    i += 1
                    value = words[i]
                options.append((name, value))
                break
        else:
            if stop_at_positional:
                positional += words[i:]
                break
            positional.append(word)
        i += 1
    return options, positional, ""


def read_command(number: int, line: str) -> tuple[Command | None, str]:
    """One line of the script → its :class:`Command`, or (None, why it is refused)."""
    where = f"line {number} (`{_short(line)}`)"
    try:
        words = shlex.split(line, comments=True)
    except ValueError as exc:
        return None, f"{where}: it cannot be read ({exc}: a quote is not closed?)."
    if not words:
        return None, ""
    shell = next((m for m in map(_SHELL.search, words) if m), None)
    if shell:
        return None, (f"{where}: `{shell.group()}` is shell syntax (a second command, a "
                      "pipe, a redirection, a variable or a substitution). Grading runs no "
                      "shell: write one plain docker command per line.")
    if words[0] != "docker":
        return None, (f"{where}: `{words[0]}` is not docker. This lab's script holds docker "
                      "commands only (docker volume create, docker network create, docker run).")
    rest = words[1:]
    if rest[:1] and rest[0].startswith("-"):
        return None, (f"{where}: `{rest[0]}` comes before the command: options there (-H, "
                      "--context, --config, ...) choose another engine or configuration, and "
                      "grading runs every command on the engine it judges. Leave them out.")
    kind = next((k for command, k in COMMANDS.items()
                 if tuple(rest[:len(command)]) == command), None)
    if kind is None:
        said = " ".join(rest[:2]) or "(nothing)"
        return None, (f"{where}: `docker {said}` is not one of this lab's commands (docker "
                      "volume create, docker network create, docker run).")
    length = next(len(c) for c, k in COMMANDS.items() if k == kind and
                  tuple(rest[:len(c)]) == c)
    words = rest[length:]
    if kind == "run":
        options, positional, problem = _options(words, RUN_FLAGS, RUN_VALUES, RUN_SHORT, True)
    else:
        noun = kind.split()[0]
        options, positional, problem = _options(words, CREATE_FLAGS[noun], CREATE_VALUES[noun],
                                                CREATE_SHORT[noun], False)
    if problem:
        return None, f"{where}: {problem}."
    command = Command(number, line, kind, options)
    if kind == "run":
        if not positional:
            return None, f"{where}: docker run names no image."
        command.image, command.args = positional[0], positional[1:]
    else:
        if len(positional) > 1:
            return None, f"{where}: {kind} takes one name, not {' '.join(positional)}."
        command.args = positional
    return command, ""


def read_script(text: str) -> Script:
    """The script as data: accepted commands, or the lines that refuse it."""
    script = Script()
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        script.refused.append(f"The script is larger than {MAX_BYTES // 1000} kB; this lab's "
                              "is a few lines.")
        return script
    lines = logical_lines(text)
    if len(lines) > MAX_LINES:
        script.refused.append(f"The script has {len(lines)} commands; this lab needs a few.")
        return script
    for number, line in lines:
        command, why = read_command(number, line)
        if command is not None:
            script.commands.append(command)
        elif why:
            script.refused.append(why)
    return script


def script_text(answer, name: str = "run.sh") -> tuple[str | None, str]:
    """The learner's script in a prepared answer (a folder's ``run.sh``, or the notebook's last
    ``%%writefile run.sh`` cell), or (None, why not). Read as text, never run."""
    return answer_file(answer, name)


def script_or_verdicts(answer, lab: Lab, name: str = "run.sh") -> tuple[Script | None, dict[str, Verdict]]:
    """The learner's script, read (:func:`read_script`), or no script and the verdicts that say
    why: ``config_valid`` failed (no script, the placeholder, or a refused line) and the lab's
    other checks not judged. The volumes and networking labs judge it this way."""
    text, why = script_text(answer, name)
    if text is None or PLACEHOLDER in text:
        verdicts = {"config_valid": failed(why or f"The {name} cell still holds the placeholder "
                                           "`raise NotImplementedError()`: replace it with your "
                                           "docker commands.")}
        verdicts.update(not_judged(lab, f"there is no {name}."))
        return None, verdicts
    script = read_script(text)
    if script.refused:
        verdicts = {"config_valid": failed(f"{name} was not run, none of it: "
                                           + " ".join(script.refused))}
        verdicts.update(not_judged(lab, "grading runs only scripts of docker commands it can "
                                   "read (see config_valid)."))
        return None, verdicts
    return script, {}


def valid_name(name: str) -> bool:
    """A name the engine takes for a container, volume or network (letters, digits, _ . -)."""
    return bool(_NAME.match(name))


# -- the commands grading runs ------------------------------------------------------------------

class Rewrite:
    """The script's commands as grading runs them on one sandbox: names of the run's own, the
    course labels and limits, and what the lab does not run left out, each with a line saying so
    (:attr:`left_out`)."""

    def __init__(self, sandbox, *, network_mode: str | None = None):
        self.sandbox = sandbox
        #: ``--network`` for every run when the lab decides it (``none``: the volumes lab).
        self.network_mode = network_mode
        self.left_out: list[str] = []
        self.volumes: dict[str, str] = {}      # the script's volume name → grading's
        self.networks: dict[str, str] = {}     # the script's network name → grading's
        self.containers: dict[str, str] = {}   # the script's container name → grading's

    def graded_name(self, name: str) -> str:
        return f"docklab-grade-{self.sandbox.run_id}-{name}"[:120]

    def volume(self, name: str) -> str:
        if name not in self.volumes:
            self.volumes[name] = self.graded_name(name)
        return self.volumes[name]

    def network(self, name: str) -> str:
        if name not in self.networks:
            self.networks[name] = self.graded_name(name)
        return self.networks[name]

    def labels(self, kind: str | None) -> list[str]:
        """``--label key=value`` for each course label of this run."""
        return [part for key, value in self.sandbox.labels(kind or "").items()
                for part in ("--label", f"{key}={value}")]

    def leave_out(self, command: Command, what: str, why: str) -> None:
        line = f"{command.where}: {what} is left out: {why}"
        if line not in self.left_out:
            self.left_out.append(line)

    def create(self, command: Command) -> list[str] | None:
        """``docker volume create`` / ``docker network create`` as grading runs it, or None."""
        noun = command.kind.split()[0]
        name = command.name
        if name and not valid_name(name):
            self.leave_out(command, "the command", f"{name!r} is not a valid {noun} name "
                           "(letters, digits, _ . -).")
            return None
        wanted_driver = "local" if noun == "volume" else "bridge"
        kept: list[str] = []
        for option, value in command.options:
            if option == "--driver" and value != wanted_driver:
                self.leave_out(command, "the command", f"the {value} driver; this lab's "
                               f"{noun}s use the {wanted_driver} driver.")
                return None
            if option in ("--label", "--name", "--driver"):
                continue  # grading's own labels and name
            if noun == "network" and option == "--internal":
                kept.append(option)
            else:
                self.leave_out(command, f"`{option}`", f"this lab's {noun}s need no "
                               "options (driver options can mount host folders).")
        graded = (self.volume(name) if noun == "volume" else self.network(name)) if name \
            else None
        argv = [noun, "create", *self.labels(None), *kept]
        if noun == "network":
            argv += ["--driver", "bridge"]
        return [*argv, *([graded] if graded else [])]

    def run_head(self, command: Command, *, harden: bool = True) -> list[str]:
        """The start of ``docker run`` as grading runs it: detached, its name of the run's own,
        the labels and the limits (the lab adds the options it keeps, then the image).
        ``harden=False`` leaves out grading's ``--cap-drop ALL`` and no-new-privileges: the
        security lab judges the capabilities and privileges the script itself asks for."""
        limits = self.sandbox.limits
        argv = ["run", "--detach", *self.labels("container"),
                "--memory", str(limits.memory), "--memory-swap", str(limits.memory),
                "--pids-limit", str(limits.pids), "--cpus", str(limits.cpus),
                *(["--cap-drop", "ALL", "--security-opt", "no-new-privileges"] if harden else []),
                "--log-driver", "json-file", "--log-opt", "max-size=1m",
                "--log-opt", "max-file=1", "--restart", "no"]
        name = command.name
        if name:
            if valid_name(name):
                self.containers[name] = self.graded_name(name)
                argv += ["--name", self.containers[name]]
            else:
                self.leave_out(command, f"--name {name!r}", "not a valid container name.")
        if self.network_mode:
            argv += ["--network", self.network_mode]
        return argv


def run_commands(tool, argvs: list[list[str]], timeout: float = 60) -> list[dict]:
    """Run each ``docker`` argv in the CLI container ``tool``, in order → what each gave
    (``argv``, ``status``, ``stdout``, ``stderr``), stopping at none: as ``sh run.sh`` would."""
    done = []
    for argv in argvs:
        result = tool.run(["docker", *argv], timeout)
        done.append({"argv": argv, "status": result.returncode,
                     "stdout": result.stdout[-4000:], "stderr": result.stderr[-2000:]})
    return done
