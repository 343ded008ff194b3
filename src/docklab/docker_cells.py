"""``%docker`` and ``%%docker``: the real ``docker`` CLI in a notebook cell.

    %docker run --rm busybox echo hello          # one command
    %%docker                                     # one command per line; stops at the first failure
    network create shop
    run -d --name web --network shop nginx

A cell runs the ``docker`` command the learner would type in a terminal, against the lesson's
engine (``DOCKER_HOST`` as the SDK sees it), and streams its output into the cell as it comes. What
it creates carries the course labels, as the SDK cells' resources do, so the lesson's cleanup and
self-checks see it: ``--label`` is added to ``run``/``create``/``build``/``network create``/``volume
create``, ``docker stack deploy`` gets one more Compose file adding them to its services, networks
and volumes, and ``docker compose up/create/run`` runs on the project as ``docker compose config``
resolves it, with the labels added to every service, network and volume. A command that fails stops the cell with one line
naming its exit status; ``docker run -it`` needs a terminal, and the message says where to find one.
A line may end in ``< FILE``, as in a shell, to give the command that file as its input
(``%docker login … --password-stdin < password.txt``, ``%docker load < app.tar``).

In JupyterLab's terminal the same labels come from ``docklab docker …`` (``alias docker='docklab
docker'``; see :func:`main`).
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from docklab import labels as L
from docklab.buildkit import LOST_LAYER_NOTE, lost_a_layer
from docklab.errors import DocklabError

#: Commands that create something and take ``--label``, with the kind their labels record.
LABELLED: dict[tuple[str, ...], str | None] = {
    ("run",): "container", ("create",): "container",
    ("container", "run"): "container", ("container", "create"): "container",
    ("build",): "image", ("image", "build"): "image",
    ("buildx", "build"): "image", ("builder", "build"): "image",
    ("network", "create"): None, ("volume", "create"): None,
}
#: ``docker`` options that come before the command and take a value.
GLOBAL_VALUE_OPTIONS = {"--config", "-c", "--context", "-H", "--host", "-l", "--log-level",
                        "--tlscacert", "--tlscert", "--tlskey"}
#: ``docker compose`` options that come before its command and take a value.
COMPOSE_VALUE_OPTIONS = {"-f", "--file", "-p", "--project-name", "--project-directory",
                         "--profile", "--env-file", "--ansi", "--progress", "--parallel"}
#: Compose commands that create containers, networks or volumes.
COMPOSE_CREATES = {"up", "create", "run"}

NOT_A_TERMINAL = "not a TTY"
TERMINAL_HINT = ("`-it` (and `exec -it`) need a terminal: open File › New › Terminal in JupyterLab "
                 "and run it there (`alias docker='docklab docker'` first adds the course labels).")


class _OneLine(DocklabError):
    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: the command's own output says what went wrong.
        return [f"⛔ {self}"]


class DockerCommandFailed(_OneLine):
    """A ``docker`` command in a cell exited with a non-zero status."""

    def __init__(self, command: str, status: int, hint: str = ""):
        super().__init__(f"`{command}` failed (exit status {status}).", hint)
        self.status = status


class DockerCliMissing(_OneLine):
    pass


class InputFileMissing(_OneLine):
    """The file after ``<`` in a cell's command does not exist."""


def docker_cli() -> str:
    """The ``docker`` command's path, or a one-line error saying how to get it."""
    found = shutil.which("docker")
    if not found:
        raise DockerCliMissing(
            "The `docker` command is not installed here, so %docker cells cannot run.",
            "`make lab` installs it (on Debian: `apt-get install docker-cli`, or `docker.io`); "
            "the SDK cells of the lesson still work without it.")
    return found


# -- where a command's words are ----------------------------------------------------------------

def _skip_options(words: list[str], value_options: set[str]) -> int:
    """Index of the first word after the leading options (``-H tcp://x``, ``--context=y``, ``-D``)."""
    i = 0
    while i < len(words) and words[i].startswith("-"):
        i += 2 if words[i] in value_options else 1
    return i


def command_of(words: list[str]) -> tuple[tuple[str, ...], int]:
    """The command among ``words`` (``("network", "create")``) and the index right after it."""
    start = _skip_options(words, GLOBAL_VALUE_OPTIONS)
    for command in sorted(LABELLED, key=len, reverse=True):
        if tuple(words[start:start + len(command)]) == command:
            return command, start + len(command)
    return tuple(words[start:start + 1]), start + 1


def with_labels(words: list[str], lesson: str) -> list[str]:
    """``words`` with ``--label key=value`` for each course label, right after the command (before
    the image or name, where options belong), for the commands in :data:`LABELLED`."""
    command, at = command_of(words)
    if command not in LABELLED:
        return list(words)
    added = [part for key, value in L.labels_for(lesson, kind=LABELLED[command]).items()
             for part in ("--label", f"{key}={value}")]
    return words[:at] + added + words[at:]


def container_name(words: list[str]) -> str | None:
    """The ``--name`` of a ``run``/``create``, if any."""
    command, at = command_of(words)
    if LABELLED.get(command) != "container":
        return None
    for i, word in enumerate(words[at:], start=at):
        if word == "--name" and i + 1 < len(words):
            return words[i + 1]
        if word.startswith("--name="):
            return word.split("=", 1)[1]
    return None


def input_file(words: list[str]) -> tuple[list[str], str | None]:
    """``words`` without a trailing ``< FILE`` (or ``<FILE``), and that file's name: what a shell
    would hand the command as its standard input. Only at the end of the line, as learners write it."""
    if len(words) >= 3 and words[-2] == "<":
        return words[:-2], words[-1]
    if len(words) >= 2 and words[-1].startswith("<") and len(words[-1]) > 1:
        return words[:-1], words[-1][1:]
    return list(words), None


# -- docker compose -----------------------------------------------------------------------------

def _compose_parts(words: list[str]) -> tuple[int, int] | None:
    """For ``compose …``: (index of compose's first option, index of its command), else None."""
    start = _skip_options(words, GLOBAL_VALUE_OPTIONS)
    if words[start:start + 1] != ["compose"]:
        return None
    return start + 1, start + 1 + _skip_options(words[start + 1:], COMPOSE_VALUE_OPTIONS)


def _without_files(options: list[str]) -> list[str]:
    """Compose's options minus ``-f``/``--file``: the labelled model replaces the files."""
    kept, skip = [], False
    for option in options:
        if skip:
            skip = False
        elif option in ("-f", "--file"):
            skip = True
        elif not option.startswith("--file="):
            kept.append(option)
    return kept


def labelled_model(model: dict, lesson: str) -> dict:
    """``model`` (``docker compose config --format json``: the project as Compose resolved it)
    with the course labels added to every service (and the image it builds), network and volume
    of the project."""
    container, image, plain = (L.labels_for(lesson, kind=k) for k in ("container", "image", None))
    model = json.loads(json.dumps(model))  # a copy
    for service in (model.get("services") or {}).values():
        service["labels"] = {**(service.get("labels") or {}), **container}
        if isinstance(service.get("build"), dict):
            service["build"]["labels"] = {**(service["build"].get("labels") or {}), **image}
    for kind in ("networks", "volumes"):
        for spec in (model.get(kind) or {}).values():
            if spec is not None and not spec.get("external"):
                spec["labels"] = {**(spec.get("labels") or {}), **plain}
    return model


@contextlib.contextmanager
def compose_with_labels(cli: str, words: list[str], lesson: str, cwd: Path,
                        env: dict) -> Iterator[list[str]]:
    """``words`` (a ``compose`` command that creates things) run on the project as Compose reads
    it, with the course labels added: ``docker compose config`` resolves the learner's files
    (includes, anchors, ``.env``, profiles), and the labelled result is the one file Compose then
    reads. (One more ``-f`` with only the labels would be simpler, but Compose 2.40 rejects it
    when the project's files share labels through a YAML anchor.)"""
    parts = _compose_parts(words)
    if parts is None or parts[1] >= len(words) or words[parts[1]] not in COMPOSE_CREATES:
        yield list(words)
        return
    first, command = parts
    config = subprocess.run([cli, *words[:command], "config", "--format", "json"],
                            cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL, check=False)
    if config.returncode != 0:
        yield list(words)  # Compose itself will say what is wrong with the project, in the cell
        return
    with tempfile.TemporaryDirectory(prefix="docklab-compose-") as folder:
        resolved = Path(folder) / "compose.labelled.yaml"
        # JSON is YAML; paths in it are absolute already, so the project's folder stays the cwd.
        resolved.write_text(json.dumps(labelled_model(json.loads(config.stdout), lesson)))
        options = _without_files(words[first:command])
        if not any(o == "--project-directory" or o.startswith("--project-directory=")
                   for o in options):
            options += ["--project-directory", str(cwd)]
        yield [*words[:first], "-f", str(resolved), *options, *words[command:]]


# -- docker stack deploy -----------------------------------------------------------------------

#: ``docker stack`` commands that create services (``up`` is deploy's alias).
STACK_DEPLOY = {("stack", "deploy"), ("stack", "up")}


def _stack_files(words: list[str]) -> tuple[list[str], int] | None:
    """For ``stack deploy``: its ``-c``/``--compose-file`` values and the index right after the
    last of them (where one more file goes last); None for any other command."""
    start = _skip_options(words, GLOBAL_VALUE_OPTIONS)
    if tuple(words[start:start + 2]) not in STACK_DEPLOY:
        return None
    files, end, i = [], None, start + 2
    while i < len(words):
        word = words[i]
        if word in ("-c", "--compose-file") and i + 1 < len(words):
            files += words[i + 1].split(",")
            end, i = i + 2, i + 2
            continue
        for prefix in ("--compose-file=", "-c="):
            if word.startswith(prefix):
                files += word[len(prefix):].split(",")
                end = i + 1
        i += 1
    return (files, end) if end is not None else None


def stack_labels_file(models: list[dict], lesson: str) -> dict:
    """One more Compose file for ``docker stack deploy``, merged last: the course labels on each
    service of ``models`` (the stack's files as YAML reads them) under ``deploy: labels`` (the
    service's, which the lesson's cleanup selects) and ``labels`` (its containers'), and on the
    stack's networks (``default`` too) and volumes that it creates itself."""
    plain, container = L.labels_for(lesson), L.labels_for(lesson, kind="container")
    overlay: dict = {"services": {}, "networks": {"default": {"labels": plain}}}
    for model in models:
        if "version" in model and "version" not in overlay:
            overlay["version"] = str(model["version"])  # the CLI merges files of one version only
        for name in model.get("services") or {}:
            overlay["services"][name] = {"labels": container, "deploy": {"labels": plain}}
        for kind in ("networks", "volumes"):
            for name, spec in (model.get(kind) or {}).items():
                if not (isinstance(spec, dict) and spec.get("external")):
                    overlay.setdefault(kind, {})[name] = {"labels": plain}
    # The CLI interpolates this file too: a `$` in a label value stays a `$`.
    return json.loads(json.dumps(overlay).replace("$", "$$"))


@contextlib.contextmanager
def stack_with_labels(words: list[str], lesson: str, cwd: Path) -> Iterator[list[str]]:
    """``words`` (a ``stack deploy``) with one more ``-c`` file, last, that adds the course
    labels (:func:`stack_labels_file`): ``docker stack deploy`` has no ``--label``, and merges
    its files in order. A file the CLI will refuse (missing, not YAML, ``-`` for stdin) is left
    for the CLI to report: the command then runs as typed."""
    import yaml

    found = _stack_files(words)
    if found is None or "-" in found[0]:
        yield list(words)
        return
    files, end = found
    try:
        models = [yaml.safe_load((cwd / Path(name).expanduser()).read_text()) for name in files]
    except (OSError, yaml.YAMLError):
        models = None
    if not models or not all(isinstance(model, dict) for model in models):
        yield list(words)
        return
    with tempfile.TemporaryDirectory(prefix="docklab-stack-") as folder:
        labels = Path(folder) / "stack.labels.yaml"
        labels.write_text(json.dumps(stack_labels_file(models, lesson)))
        yield [*words[:end], "-c", str(labels), *words[end:]]


# -- running a command, its output streamed -----------------------------------------------------

def _stream(process: subprocess.Popen, write: Callable[[str], object]) -> str:
    """Copy the process's output to ``write`` as it comes; return its last 2000 characters."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    tail = ""
    while chunk := os.read(process.stdout.fileno(), 65536):
        text = decoder.decode(chunk)
        write(text)
        tail = (tail + text)[-2000:]
    write(decoder.decode(b"", final=True))
    return tail


def _ensure_compose_plugin(words: list[str]) -> None:
    """``docker compose`` is the course's Compose v2 binary linked as a CLI plugin: link it again
    if the link is missing or points at a venv that is gone (another checkout's set-up)."""
    if _compose_parts(words) is None:
        return
    from docklab.compose import install_plugin

    with contextlib.suppress(DocklabError, OSError):
        install_plugin()  # if it cannot, docker says "compose is not a docker command" itself


@contextlib.contextmanager
def labelled_command(cli: str, words: list[str], lesson, cwd: Path,
                     env: dict) -> Iterator[list[str]]:
    """``words`` made ready to run for ``lesson``, in a cell or in the terminal: the Compose
    plugin linked, the lesson's leftover of a ``--name``d container replaced, the course labels
    added (for compose and ``stack deploy``, the file with the labels exists until the block
    ends)."""
    _ensure_compose_plugin(words)
    name = container_name(words)
    if name:
        # Running it again must not fail with "name already in use" (as the SDK cells).
        lesson._remove_stale_container(name)
    with compose_with_labels(cli, with_labels(words, lesson.id), lesson.id, cwd, env) as argv, \
            stack_with_labels(argv, lesson.id, cwd) as argv:
        yield argv


def run_command(line: str, lesson, *, cwd: Path | None = None,
                write: Callable[[str], object] | None = None) -> int:
    """Run ``docker LINE`` with the course labels, streaming its output; raise when it fails."""
    write = write or (lambda text: (sys.stdout.write(text), sys.stdout.flush()))
    cli = docker_cli()
    words = shlex.split(line, comments=True)
    if words[:1] == ["docker"]:
        words = words[1:]  # `%docker docker ps` is forgiven
    if not words:
        return 0
    cwd = Path(cwd or os.getcwd())
    words, source = input_file(words)
    path = None
    if source is not None:
        path = cwd / Path(source).expanduser()
        if not path.is_file():
            raise InputFileMissing(f"`< {source}`: there is no file {path}.",
                                   "Write it first, or give its full path.")
    env = dict(os.environ)
    with labelled_command(cli, words, lesson, cwd, env) as argv:
        status, tail = _run_once([cli, *argv], cwd, env, path, write)
        if status != 0 and lost_a_layer(tail):
            # A build, pull or `compose up` the engine's own race stopped: run again (once).
            write(LOST_LAYER_NOTE)
            status, tail = _run_once([cli, *argv], cwd, env, path, write)
    if status != 0:
        hint = TERMINAL_HINT if NOT_A_TERMINAL in tail else ""
        raise DockerCommandFailed(shlex.join(["docker", *words]), status, hint)
    return status


def _run_once(argv: list[str], cwd: Path, env: dict, stdin_file: Path | None,
              write: Callable[[str], object]) -> tuple[int, str]:
    """Run ``argv``, its output streamed to ``write``; its exit status and its output's end."""
    with contextlib.ExitStack() as stack:
        stdin = (stack.enter_context(stdin_file.open("rb")) if stdin_file is not None
                 else subprocess.DEVNULL)
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=stdin,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            tail = _stream(process, write)
            return process.wait(), tail
        except KeyboardInterrupt:
            # The learner pressed stop (e.g. on `logs -f`): end the command as Ctrl-C would.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
            raise


def cell_commands(cell: str) -> list[str]:
    """The commands of a ``%%docker`` cell: one per line (``\\`` continues a line), comments and
    blank lines skipped."""
    commands, pending = [], ""
    for raw in cell.splitlines():
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        pending = ""
        if line and not line.startswith("#"):
            commands.append(line)
    if pending.strip():
        commands.append(pending.strip())
    return commands


# -- IPython --------------------------------------------------------------------------------------

def register(lesson) -> bool:
    """Make ``%docker``/``%%docker`` run for ``lesson`` in this IPython kernel (False outside one)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    from IPython.core.magic import no_var_expand

    shell = get_ipython()
    if shell is None:
        return False

    # IPython would expand {…} and $… in the line: Go templates (`--format '{{.Names}}'`) must
    # reach docker as typed.
    @no_var_expand
    def docker(line: str, cell: str | None = None) -> None:
        """%docker ARGS runs `docker ARGS`; a %%docker cell runs one docker command per line."""
        for command in ([line] if cell is None else cell_commands(cell)):
            run_command(command, lesson)

    shell.register_magic_function(docker, magic_kind="line_cell", magic_name="docker")
    return True


# -- the terminal ---------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    """``docklab docker ARGS``: ``docker ARGS`` with the course labels, in a real terminal (so
    ``-it`` works). The lesson label is DOCKLAB_LESSON, else ``terminal``."""
    from docklab.lesson import Lesson

    lesson = Lesson(os.environ.get("DOCKLAB_LESSON") or "terminal")
    cli = docker_cli()
    words = argv[1:] if argv[:1] == ["--"] else list(argv)
    with labelled_command(cli, words, lesson, Path.cwd(), dict(os.environ)) as full:
        if _compose_parts(words) is None and _stack_files(words) is None:
            os.execv(cli, [cli, *full])  # the real CLI takes over this process and its terminal
        # Compose (or stack deploy) reads the labels' file while it runs: keep it until it is done.
        return subprocess.call([cli, *full])
