"""%docker and %%docker in a real kernel, against the real engine and the real docker CLI: every
form the course uses labels what it creates (so the lesson's cleanup removes it), output streams
as the command runs, a failure stops the cell with one line, and `-it` points to the terminal.
`docker stack deploy` is shown on a sealed engine's swarm, so the host engine never joins one."""

import json
import threading
import time

import nbformat
import pytest
from nbclient import NotebookClient

from docklab import docker_cells, labels
from docklab.lesson import Lesson

pytestmark = pytest.mark.engine

LESSON = "test-docker-cells"
#: A project sharing its own labels through a YAML anchor, as 05-compose does (Compose 2.40
#: refuses a second -f adding labels to such a project: the labels go into the resolved model).
COMPOSE = """\
x-team: &team
  team: shop
  tier: "1"
services:
  web:
    build: .
    networks: [front]
    volumes: [data:/data]
    labels: *team
networks:
  front:
    labels: *team
volumes:
  data:
    labels: *team
"""


#: A cell printing, as JSON, what carries this lesson's and learner's labels: name → [labels].
REPORT = """\
import json
from collections import defaultdict
from docklab import labels
found = {}
for kind, items in labels.find_labelled(lesson.client, lesson=lesson.id,
                                        learner=labels.learner_name()).items():
    found[kind] = defaultdict(list)
    for item in items:
        names = item.tags if kind == "images" else [item.name]
        for name in names:
            found[kind][name].append(item.attrs.get("Labels") or item.attrs["Config"]["Labels"]
                                     if kind != "containers" else item.labels)
print(json.dumps(found))
"""


def _run(cells: list[str], cwd) -> nbformat.NotebookNode:
    """Run the cells in a fresh kernel (errors kept as outputs, so a test can read them)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"from docklab.lesson import start\n"
                                          f"lesson = start({LESSON!r})")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    NotebookClient(nb, timeout=240, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def _errors(cell) -> list:
    return [o for o in cell.outputs if o.output_type == "error"]


@pytest.fixture
def project(tmp_path):
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    (tmp_path / "Dockerfile").write_text('FROM busybox\nCMD ["sleep", "60"]\n')
    return tmp_path


def test_every_form_labels_what_it_makes_and_the_cleanup_removes_it(client, learner_env,
                                                                      project):
    nb = _run([
        "%docker run --rm busybox echo hello from the CLI",
        "%docker run -d --name cli-web busybox sleep 60",
        "%docker run -d --name cli-web busybox sleep 60  # again: the leftover is replaced",
        ("%%docker\n# a network, a volume, and a container on both\nnetwork create cli-net\n"
         "volume create cli-data\nrun -d --name cli-db --network cli-net \\\n"
         "    -v cli-data:/data busybox sleep 60"),
        f"%docker build -q -t {LESSON}-image:1 .",
        "%docker compose -p cli-shop up -d --build",
        "%docker ps --filter label=org.docklab.lesson=test-docker-cells --format '{{.Names}}'",
        REPORT,
        "removed = lesson.cleanup()",
        REPORT,
    ], project)
    assert not [e for cell in nb.cells for e in _errors(cell)], \
        [e.get("evalue") for cell in nb.cells for e in _errors(cell)]
    assert "hello from the CLI" in _text(nb.cells[1])
    listed = _text(nb.cells[-4]).split()
    assert {"cli-web", "cli-db", "cli-shop-web-1"} <= set(listed)

    # What the kernel found labelled for this lesson and learner, before and after its cleanup.
    made, left = json.loads(_text(nb.cells[-3])), json.loads(_text(nb.cells[-1]))
    assert set(made["containers"]) == {"cli-web", "cli-db", "cli-shop-web-1"}
    assert len(made["containers"]["cli-web"]) == 1  # the second run replaced the first
    assert set(made["containers"]["cli-web"][0].values()) >= {"container", learner_env, LESSON}
    assert set(made["networks"]) == {"cli-net", "cli-shop_front"}
    assert set(made["volumes"]) == {"cli-data", "cli-shop_data"}
    assert {f"{LESSON}-image:1", "cli-shop-web:latest"} <= set(made["images"])
    assert made["images"][f"{LESSON}-image:1"][0][labels.KIND] == "image"
    assert made["volumes"]["cli-shop_data"][0]["team"] == "shop"  # the project's own labels stay
    assert not any(left.values())
    assert not any(labels.find_labelled(client, lesson=LESSON, learner=learner_env).values())


def test_a_failing_command_stops_the_cell_with_one_line(learner_env, tmp_path):
    nb = _run(['%docker run --rm busybox sh -c "echo about to fail; exit 3"',
               "%docker run --rm -it busybox sh",
               "%%docker\nrun --rm busybox false\nrun --rm busybox echo never"], tmp_path)
    failed, interactive, cell = nb.cells[1], nb.cells[2], nb.cells[3]
    assert "about to fail" in _text(failed)  # the command's own output comes first
    (error,) = _errors(failed)
    assert error.traceback == [
        '⛔ `docker run --rm busybox sh -c \'echo about to fail; exit 3\'` failed (exit status 3).']
    (error,) = _errors(interactive)
    assert "File › New › Terminal" in error.traceback[0]
    (error,) = _errors(cell)  # the cell stopped at its first failing line
    assert "exit status 1" in error.traceback[0] and "never" not in _text(cell)


def test_a_file_after_less_than_is_the_commands_input(learner_env, tmp_path):
    """`< FILE` as in a shell (`docker login --password-stdin < password.txt`): the command reads
    the file; a missing file stops the cell with one line before docker runs."""
    (tmp_path / "input.txt").write_text("read from the file\n")
    nb = _run(["%docker run -i --rm busybox cat < input.txt",
               "%docker run -i --rm busybox cat < absent.txt"], tmp_path)
    read, missing = nb.cells[1], nb.cells[2]
    assert not _errors(read) and "read from the file" in _text(read)
    (error,) = _errors(missing)
    assert error.traceback[0].startswith("⛔ `< absent.txt`: there is no file")


def test_output_streams_into_the_cell_while_the_command_runs(learner_env):
    seen: list[tuple[float, str]] = []
    started = time.monotonic()
    lesson = Lesson(LESSON)
    done = threading.Event()

    def write(text):
        seen.append((time.monotonic() - started, text))

    def run():
        docker_cells.run_command(
            "run --rm busybox sh -c 'echo first; sleep 3; echo second'", lesson, write=write)
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert done.is_set()
    first = next(t for t, text in seen if "first" in text)
    second = next(t for t, text in seen if "second" in text)
    assert second - first > 2, seen  # "first" arrived while the container still ran


def test_the_terminal_helper_labels_and_keeps_a_real_tty(client, learner_env):
    """`docklab docker …` (aliased as `docker` in JupyterLab's terminal): the same labels, and
    `-it` works because the terminal is a real one (a pseudo-terminal here)."""
    import os
    import pty
    import subprocess
    import sys

    env = {**os.environ, "DOCKLAB_LESSON": LESSON}
    docklab = [sys.executable, "-m", "docklab.cli", "docker"]
    try:
        made = subprocess.run([*docklab, "run", "-d", "--name", "term-web", "busybox", "sleep", "60"],
                              env=env, capture_output=True, text=True, timeout=60, check=False)
        assert made.returncode == 0, made.stderr
        assert client.containers.get("term-web").labels[labels.LEARNER] == learner_env

        primary, secondary = pty.openpty()
        tty = subprocess.run([*docklab, "run", "--rm", "-it", "busybox", "sh", "-c",
                              "[ -t 0 ] && echo stdin-is-a-tty"],
                             env=env, stdin=secondary, stdout=secondary, stderr=secondary,
                             timeout=60, check=False)
        os.close(secondary)
        assert tty.returncode == 0
        assert b"stdin-is-a-tty" in os.read(primary, 65536)
        os.close(primary)
    finally:
        Lesson(LESSON, client).cleanup()
    assert not any(labels.find_labelled(client, lesson=LESSON, learner=learner_env).values())


#: A stack with its own service label (kept beside the course's) and no network of its own: the
#: stack then creates `<stack>_default`, which the labels file labels too.
STACK = """\
services:
  web:
    image: busybox
    command: ["sleep", "60"]
    deploy:
      replicas: 1
      labels: {team: shop}
"""


def test_stack_deploy_labels_its_service_containers_and_network(client, learner_env, tmp_path,
                                                                monkeypatch):
    """On a swarm of a sealed engine (a rootless dockerd in a container of the host's engine),
    so that the host engine never joins one: `%docker stack deploy` through the real CLI, then
    what the engine says the stack is labelled with, and the lesson's cleanup removing it."""
    from docklab.checks.orchestration import OneNodeSwarm
    from docklab.grading.sealed import SealedEngine

    (tmp_path / "stack.yaml").write_text(STACK)
    with SealedEngine(client, images=["busybox"], lesson="test-docker-cells-stack") as sealed:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{sealed.socket_path}")
        engine = sealed.client
        lesson = Lesson(LESSON, client=engine)
        OneNodeSwarm(engine, lesson.labels()).join()
        out: list[str] = []
        docker_cells.run_command("stack deploy -c stack.yaml --resolve-image never shop", lesson,
                                 cwd=tmp_path, write=out.append)
        assert "Creating service shop_web" in "".join(out)
        spec = engine.services.get("shop_web").attrs["Spec"]
        assert spec["Labels"] == {"team": "shop", "com.docker.stack.image": "busybox",
                                  "com.docker.stack.namespace": "shop",
                                  **labels.labels_for(LESSON)}
        container_labels = spec["TaskTemplate"]["ContainerSpec"]["Labels"]
        assert container_labels.items() >= labels.labels_for(LESSON, kind="container").items()
        (network,) = engine.networks.list(names=["shop_default"])
        assert network.attrs["Labels"].items() >= labels.labels_for(LESSON).items()

        removed = lesson.cleanup()
        assert "shop_web" in removed.services
        assert engine.services.list() == []
