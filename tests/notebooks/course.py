"""The course's notebooks as the tests see them, and how one run of a notebook is judged.

Each notebook runs twice in the suite, once per variant:

* **as shipped** (exercises not done): in JupyterLab, in headless Chromium, for every notebook
  with a visualizer (tests/browser), so that run also shows the views rendering; with nbclient for
  the others (tests/notebooks). Every code cell must run without an error (what ``nbval --nbval-lax``
  asserted of the stripped notebooks), every self-check must say "Not yet", and the cleanup cell
  must leave nothing behind.
* **solved** (each "try it" exercise answered from :data:`SOLUTIONS`, through the SDK, and again
  from :data:`CLI_SOLUTIONS`, through ``%docker`` cells): with nbclient (tests/notebooks). Every
  self-check must say "Well done", and nothing may be left behind.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import docker
import ipykernel.kernelspec
import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from docklab import labels as L
from docklab.engine import connect
from docklab.labels import find_labelled
from docklab.widgets.volumes import is_anonymous

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]-*.ipynb"))
NOT_YET, WELL_DONE = "✘ Not yet", "✔ Well done"
_IMPORT = re.compile(r"from docklab\.widgets\.(\w+) import (\w+)")

#: Answers to each notebook's "try it" exercises, by cell id, so the self-checks' success path runs.
SOLUTIONS = {
    "01-containers": {
        "exercise": 'lesson.run("busybox", "sleep 600", name="my-limited", mem_limit="48m",'
                    ' nano_cpus=250_000_000)',
    },
    "02-running": {
        "exercise-exit": 'lesson.run("busybox", ["sh", "-c", "echo bye; exit 42"], name="my-exit")',
        "exercise-stop": 'lesson.run("busybox", "sleep 600", name="my-quick", init=True)',
        "exercise-bounded": 'lesson.run("busybox", ["sh", "-c", "seq 30000 | sed \'s/.*/line &: still chatty/\';'
                            ' echo flood over; sleep 600"], name="my-bounded", mem_limit="32m",'
                            ' log_config={"type": "json-file", "config": {"max-size": "200k", "max-file": "3"}})',
    },
    "03-volumes": {
        "exercise": 'my_data = lesson.volume("my-data")\n'
                    'lesson.run("busybox", ["sh", "-c", "echo hello > /data/greeting.txt"],'
                    ' volumes=[f"{my_data.name}:/data"], detach=False, remove=True)',
    },
    "04-networking": {
        "exercise": 'lesson.run("nginx", name="my-web", network=usernet.name, networking_config='
                    '{usernet.name: client.api.create_endpoint_config(aliases=["shop"])})',
    },
    "05-compose": {
        "exercise": 'compose("up", "-d", "--scale", "worker=2")',
        "exercise-healthy": 'path = SHOP_DIR / "compose.yaml"\n'
                            'path.write_text(re.sub(r"depends_on: \\[db\\].*", "depends_on:\\n      db:\\n'
                            '        condition: service_healthy", path.read_text()))\n'
                            'compose("down", project_name=shop, folder=SHOP_DIR)\n'
                            'compose("up", "-d", project_name=shop, folder=SHOP_DIR)',
        "exercise-limits": 'path = SHOP_DIR / "compose.yaml"\n'
                           'path.write_text(path.read_text().replace("  web:\\n", "  web:\\n    mem_limit: 32m\\n'
                           '    cpus: 0.25\\n", 1))\n'
                           'compose("up", "-d", project_name=shop, folder=SHOP_DIR)',
    },
    "06-security": {
        "exercise": 'lesson.run("busybox", "sleep 600", name="my-hardened", user="1000:1000", cap_drop=["ALL"],'
                    ' read_only=True, tmpfs={"/tmp": ""}, security_opt=["no-new-privileges"])',
    },
    "07-best-practices": {
        "exercise": 'my_data = lesson.volume("my-notes-data")\n'
                    'lesson.run(notes_tag, name="my-notes", environment={"NOTES_TITLE": "My notes"},'
                    ' volumes={my_data.name: {"bind": "/data", "mode": "rw"}}, network=notes_net.name)',
    },
    "08-building": {
        "exercise": 'lesson.build(fileobj=io.BytesIO(b"FROM busybox\\nARG VERSION=1.0\\nENV APP_VERSION=$VERSION\\n"'
                    ' b"CMD [\\"sh\\", \\"-c\\", \\"echo version $APP_VERSION\\"]\\n"),'
                    ' tag=lesson.name("my-versioned"), buildargs={"VERSION": "2.5"})',
        "exercise-checked": 'lesson.build(fileobj=io.BytesIO(b"FROM busybox AS base\\nENV GREETING=hello\\n"'
                            ' b"CMD [\\"sh\\", \\"-c\\", \\"echo $GREETING\\"]\\n"), tag=lesson.name("my-checked"))',
    },
    "09-multi-stage": {
        "exercise": 'write_source("flask", {"app.py": APP + """\n@app.get("/about")\ndef about():\n'
                    '    return "made with docklab"\n"""})',
    },
    "10-registry": {
        "exercise": 'app_11.tag(f"{REGISTRY}/team/my-app", "stable")\n'
                    'push(f"{REGISTRY}/team/my-app", "stable")',
        "exercise-login": 'client.login(username=USER, password=PASSWORD, registry=SECURE)\n'
                          'app_11.tag(f"{SECURE}/team/my-app", "stable")\n'
                          'push(f"{SECURE}/team/my-app", "stable")',
        # Contexts belong to the CLI: the SDK's ContextAPI.create_context writes https:// for any
        # tcp:// engine (the matrix's engines have no TLS), so this exercise is done with %docker.
        "exercise-context": "%%docker\ncontext create my-engine --from default\ncontext use my-engine",
    },
    "11-orchestration": {
        "exercise": 'update_service(web, task_template={"ContainerSpec": {"Image": WEB_V1}},'
                    ' update_config=UpdateConfig(parallelism=0))',
    },
}

#: The same exercises answered with ``%docker`` cells, as a learner types them (the names a lesson
#: prints on a laptop, where names get no prefix). The self-checks judge the engine's state, so
#: both spellings must pass. 09-multi-stage's exercise edits the app's source, not a docker command.
CLI_SOLUTIONS = {
    "01-containers": {
        "exercise": "%docker run -d --name my-limited --memory 48m --cpus 0.25 busybox sleep 600",
    },
    "02-running": {
        "exercise-exit": '%docker run -d --name my-exit busybox sh -c "echo bye; exit 42"',
        "exercise-stop": "%docker run -d --name my-quick --init busybox sleep 600",
        "exercise-bounded": "%docker run -d --name my-bounded --memory 32m --log-driver local --log-opt max-size=200k"
                            " --log-opt max-file=3 busybox sh -c \"seq 30000 | sed 's/.*/line &: still chatty/';"
                            " echo flood over; sleep 600\"",
    },
    "03-volumes": {
        "exercise": "%%docker\nvolume create my-data\n"
                    "run --rm -v my-data:/data busybox sh -c 'echo hello > /data/greeting.txt'",
    },
    "04-networking": {
        "exercise": "%docker run -d --name my-web --network usernet --network-alias shop nginx",
    },
    "05-compose": {
        "exercise": "%cd {PROJECT_DIR}\n%docker compose -p hitcounter up -d --scale worker=2\n%cd -",
        "exercise-healthy": "path = SHOP_DIR / 'compose.yaml'\n"
                            "path.write_text(re.sub(r'depends_on: \\[db\\].*', 'depends_on:\\n      db:\\n"
                            "        condition: service_healthy', path.read_text()))\n"
                            "%cd -q {SHOP_DIR}\n%docker compose down\n%docker compose up -d",
        "exercise-limits": "path = SHOP_DIR / 'compose.yaml'\n"
                           "path.write_text(path.read_text().replace('  web:\\n', '  web:\\n    deploy:\\n"
                           "      resources:\\n        limits: {memory: 32M, cpus: \"0.25\"}\\n', 1))\n"
                           "%cd -q {SHOP_DIR}\n%docker compose up -d",
    },
    "06-security": {
        "exercise": "%docker run -d --name my-hardened --user 1000:1000 --cap-drop ALL --read-only"
                    " --tmpfs /tmp --security-opt no-new-privileges busybox sleep 600",
    },
    "07-best-practices": {
        "exercise": "%%docker\nvolume create my-notes-data\nrun -d --name my-notes --network notes-net"
                    " -e 'NOTES_TITLE=My notes' -v my-notes-data:/data notes",
    },
    "08-building": {
        "exercise": "import tempfile\n"
                    "context = Path(tempfile.mkdtemp())\n"
                    "(context / 'Dockerfile').write_text('FROM busybox\\nARG VERSION=1.0\\n'\n"
                    "    'ENV APP_VERSION=$VERSION\\nCMD [\"sh\", \"-c\", \"echo version $APP_VERSION\"]\\n')\n"
                    "%cd {context}\n%docker build --build-arg VERSION=2.5 -t my-versioned .\n%cd -",
        "exercise-checked": "%mkdir -p my-checked\n"
                            "Path('my-checked/Dockerfile').write_text('FROM busybox AS base\\nENV GREETING=hello\\n'\n"
                            "    'CMD [\"sh\", \"-c\", \"echo $GREETING\"]\\n')\n"
                            "%docker build -t my-checked my-checked",
    },
    "10-registry": {
        "exercise": "%%docker\ntag my-app:1.1 localhost:5000/team/my-app:stable\n"
                    "push localhost:5000/team/my-app:stable",
        "exercise-login": "%cd -q {WORK}\n"
                          "%docker login localhost:5443 --username student --password-stdin < password.txt\n"
                          "%docker tag my-app:1.1 localhost:5443/team/my-app:stable\n"
                          "%docker push localhost:5443/team/my-app:stable\n"
                          "%docker logout localhost:5443\n"
                          "%cd -q -",
        "exercise-context": "%%docker\ncontext create my-engine --from default\ncontext use my-engine",
    },
    "11-orchestration": {
        "exercise": "%docker service update --image web:1 --update-parallelism 0 web",
    },
}

#: Wrong answers, by notebook: (the answers by cell id, what each named self-check must say). They
#: show a self-check refusing work that looks nearly right, not only accepting the right one.
WRONG_ANSWERS = {
    "10-registry": (
        {
            # the right image, but the password is left in config.json
            "exercise-login": "%cd -q {WORK}\n"
                              "%docker login localhost:5443 --username student --password-stdin < password.txt\n"
                              "%docker tag my-app:1.1 localhost:5443/team/my-app:stable\n"
                              "%docker push localhost:5443/team/my-app:stable\n"
                              "%cd -q -",
            # the current context, but it leads nowhere
            "exercise-context": "%%docker\ncontext create my-engine --docker host=tcp://127.0.0.1:9\n"
                                "context use my-engine",
        },
        {"self-check-login": "still holds your password", "self-check-context": "where no engine answers"},
    ),
}

#: A last cell for a run: asks from inside the kernel, before it exits, what the cleanup cell left.
LEFTOVERS_CELL_ID = "test-leftovers"
LEFTOVERS = "from docklab.labels import find_labelled as _find\n" \
            "import json as _json\n" \
            "print(_json.dumps({kind: [getattr(r, 'name', None) or r.id for r in found]\n" \
            "                   for kind, found in _find(lesson.client, lesson=lesson.id).items()}))"


def read(path: Path):
    return nbformat.read(path, as_version=4)


def tagged(nb, tag: str) -> list:
    return [cell for cell in nb.cells if tag in cell.metadata.get("tags", [])]


def visualizers_in(path: Path) -> dict[str, str]:
    """The visualizers a notebook uses: view class name → module name (not the connect panel)."""
    found = {}
    for cell in read(path).cells:
        if cell.cell_type == "code":
            for module, name in _IMPORT.findall(cell.source):
                if module != "connect":
                    found[name] = module
    return found


#: Run as shipped in the browser (tests/browser) or, with no view to show, by nbclient here.
IN_BROWSER = [p for p in NOTEBOOKS if visualizers_in(p)]
NOT_IN_BROWSER = [p for p in NOTEBOOKS if p not in IN_BROWSER]


def prepared(path: Path, solutions: dict[str, str]):
    """The notebook to run: exercises answered from ``solutions``, and for a lesson (a notebook
    with a setup cell) the leftovers cell appended."""
    nb = read(path)
    for cell in nb.cells:
        if cell.get("id") in solutions:
            cell.source = solutions[cell.id]
    if tagged(nb, "setup"):
        nb.cells.append(nbformat.v4.new_code_cell(LEFTOVERS, id=LEFTOVERS_CELL_ID))
    return nb


def leftovers(output: str) -> dict[str, list[str]]:
    """What the leftovers cell printed: kind → names still on the engine."""
    return json.loads(output.strip().splitlines()[-1])


def wrong_verdicts(verdicts: dict[str, str], expected: str) -> dict[str, str]:
    """The self-checks (cell id → what it printed) that did not start with ``expected``."""
    return {cell: text for cell, text in verdicts.items() if not text.strip().startswith(expected)}


# --- one run -------------------------------------------------------------------------------------

CELL_TIMEOUT = 120  # seconds; cells take < 5 s, but a cold engine or a busy CI machine is slower
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class NotebookFailed(AssertionError):
    """A run that did not pass; the message says which notebook, which run and what went wrong."""


class _ThisPython(KernelSpecManager):
    """Runs notebooks with this interpreter (the venv's), whatever kernels are installed elsewhere."""

    def get_kernel_spec(self, kernel_name):
        return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                      **ipykernel.kernelspec.get_kernel_dict())


def readable(error: str, head: int = 40, tail: int = 20) -> str:
    """A cell's error without colour codes: its start (which cell, its source) and the end of the
    traceback (what went wrong), with the library frames in between left out."""
    lines = _ANSI.sub("", error).strip().splitlines()
    if len(lines) <= head + tail:
        return "\n".join(lines)
    return "\n".join(lines[:head] + [f"[... {len(lines) - head - tail} lines ...]"] + lines[-tail:])


def stdout(cell) -> str:
    return "".join(out.get("text", "") for out in cell.get("outputs", [])
                   if out.get("output_type") == "stream")


def verdicts(nb) -> dict[str, str]:
    """What each self-check printed: cell id → text."""
    return {cell.id: stdout(cell).strip() for cell in tagged(nb, "self-check")}


def execute(path: Path, solutions: dict[str, str], attempt: str, *,
            docker_host: str | None = None, learner: str | None = None,
            cwd: Path = NOTEBOOK_DIR, allow_errors: bool = False):
    """Run ``path`` top to bottom in a fresh kernel, exercises answered from ``solutions``; returns
    the executed notebook, or raises :class:`NotebookFailed` when a cell raised or something
    labelled with the lesson is left on the engine.

    ``docker_host`` runs it against another engine (the engine matrix, tests/engines) and
    ``learner`` as another learner (the lessons keep files per learner on this machine). A lab's
    notebook runs in its own folder (``cwd``), and with ``allow_errors`` every cell runs and
    keeps its error as output (an untouched lab's graded cells fail: tests/labs/test_lab_notebooks.py).
    """
    nb = prepared(path, solutions)
    started = time.time()
    env = None
    if docker_host or learner:
        env = dict(os.environ)
        if docker_host:
            env["DOCKER_HOST"] = docker_host
            env.pop("DOCKER_TLS_VERIFY", None)
        if learner:
            env["DOCKLAB_LEARNER"] = learner
    km = KernelManager(kernel_name="python3", kernel_spec_manager=_ThisPython())
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, startup_timeout=60,
                            allow_errors=allow_errors, resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute(**({"env": env} if env else {}))  # stops at the first cell that raises
    except CellExecutionError as exc:
        raise NotebookFailed(f"{path.name} ({attempt}) failed in a cell:\n{readable(str(exc))}"
                             ) from None
    finally:
        if km.has_kernel:  # a kernel that died or timed out is still ours to stop
            # Asked first, as JupyterLab asks it (killed only if it does not stop): the kernel
            # removes on its way out what it kept, the limited build parents of its checks.
            km.shutdown_kernel()
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    if not all(cell.get("execution_count") for cell in code):
        raise NotebookFailed(f"{path.name} ({attempt}): not every cell ran")
    last = nb.cells[-1]
    if last.get("id") == LEFTOVERS_CELL_ID:
        left = leftovers(stdout(last))
        if any(left.values()):
            raise NotebookFailed(f"{path.name} ({attempt}): the cleanup cell left these behind: "
                                 f"{left}")
    engine = docker.DockerClient(base_url=docker_host, version="auto") if docker_host else connect()
    try:
        left_on_engine = engine_leftovers(engine, path.stem, since=started)
    finally:
        if docker_host:
            engine.close()
    if left_on_engine:
        raise NotebookFailed(f"{path.name} ({attempt}) left on the engine: {left_on_engine}")
    return nb


def anonymous_volumes_left(engine, lesson: str, since: float) -> list[str]:
    """The anonymous volumes that ``lesson``'s containers mounted since ``since`` (time.time())
    and that are still on the engine, as "container:/path (volume id)".

    A container removed without -v (`docker rm` without -v, `docker compose down` or `rm`
    without -v) leaves the anonymous volume its image's VOLUME made (redis's /data), which
    carries no label: the course's cleanup cannot find it, so each run would leave one more. The
    engine's events say which container mounted which volume.
    """
    ours, mounted = {}, {}
    events = engine.events(since=int(since), until=int(time.time()) + 1, decode=True,
                           filters={"type": ["container", "volume"]})
    for event in events:
        actor = event.get("Actor") or {}
        attributes = actor.get("Attributes") or {}
        if event.get("Action") == "create" and attributes.get(L.LESSON) == lesson:
            ours[actor.get("ID")] = attributes.get("name")
        elif (event.get("Type") == "volume" and event.get("Action") == "mount"
              and is_anonymous(actor.get("ID") or "")):
            mounted.setdefault(actor["ID"], []).append(
                (attributes.get("container"), attributes.get("destination")))
    left = []
    for volume, users in mounted.items():
        names = sorted({f"{ours[c]}:{where}" for c, where in users if c in ours})
        if not names:
            continue
        try:
            engine.volumes.get(volume)
        except docker.errors.NotFound:
            continue
        left.append(f"{', '.join(names)} ({volume[:12]})")
    return left


def engine_leftovers(engine, lesson: str, since: float) -> dict[str, list[str]]:
    """What a run of ``lesson`` that began at ``since`` left on the engine: anything labelled
    with the lesson, and the anonymous volumes of its containers (kind → names); {} if nothing."""
    left = {kind: [getattr(r, "name", None) or r.id for r in found]
            for kind, found in find_labelled(engine, lesson=lesson).items() if found}
    anonymous = anonymous_volumes_left(engine, lesson, since)
    if anonymous:
        left["anonymous volumes"] = anonymous
    return left


def expect_verdicts(nb, path: Path, attempt: str, expected: str) -> None:
    """Every self-check of the run said ``expected`` (:data:`NOT_YET` or :data:`WELL_DONE`)."""
    wrong = wrong_verdicts(verdicts(nb), expected)
    if wrong:
        raise NotebookFailed(f"{path.name} ({attempt}): self-checks said {wrong}")
