"""docklab.docker_cells without an engine: where the labels go, a %%docker cell's commands, the
Compose file that labels a project, the one more file that labels a stack (read by the real CLI's
``docker stack config``, which needs no engine), and the one-line message when the CLI is missing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from docklab import docker_cells as D
from docklab import labels as L

LESSON = "02-running"


def W(line: str) -> list[str]:
    """A command line as the words the magic hands on (shlex would split it the same way)."""
    return line.split()


def _labels_after(words: list[str], command_end: int) -> dict[str, str]:
    out = D.with_labels(words, LESSON)
    added = out[command_end:command_end + len(out) - len(words)]
    assert added[::2] == ["--label"] * (len(added) // 2)
    assert out[:command_end] + out[command_end + len(added):] == words  # nothing else moved
    return dict(pair.split("=", 1) for pair in added[1::2])


@pytest.mark.parametrize(("line", "end", "kind"), [
    ("run --rm busybox echo hi", 1, "container"),
    ("container run -d --name web nginx", 2, "container"),
    ("create busybox", 1, "container"),
    ("-H unix:///x.sock run busybox true", 3, "container"),
    ("--context=remote run busybox true", 2, "container"),
    ("build -t app .", 1, "image"),
    ("image build .", 2, "image"),
    ("buildx build --load .", 2, "image"),
    ("network create shop", 2, None),
    ("volume create data", 2, None),
])
def test_commands_that_create_get_the_course_labels_before_their_arguments(line, end, kind):
    labels = _labels_after(line.split(), end)
    assert labels == L.labels_for(LESSON, kind=kind)
    assert labels[L.MANAGED] == "true" and labels[L.LESSON] == LESSON


@pytest.mark.parametrize("line", ["ps -a", "logs web", "network ls", "exec web ls -t",
                                  "image ls --filter label=run", "compose up -d"])
def test_other_commands_are_left_as_typed(line):
    assert D.with_labels(line.split(), LESSON) == line.split()


def test_the_container_name_is_read_from_run_and_create_only():
    assert D.container_name(W("run -d --name web nginx")) == "web"
    assert D.container_name(W("create --name=db redis")) == "db"
    assert D.container_name(W("run busybox echo --name x")) == "x"  # as the CLI reads it
    assert D.container_name(W("network create --name x")) is None
    assert D.container_name(W("run busybox")) is None


def test_a_cell_is_one_command_per_line_with_continuations_and_comments():
    cell = ("# make a network\n\nnetwork create shop\nrun -d --name web \\\n"
            "   --network shop nginx\n  ps  \n")
    assert D.cell_commands(cell) == ["network create shop",
                                     "run -d --name web --network shop nginx", "ps"]


def test_the_labelled_compose_model_keeps_the_projects_labels_and_adds_the_courses():
    model = {"name": "shop",
             "services": {"web": {"image": "nginx", "labels": {"team": "a"}},
                          "app": {"build": {"context": "/src"}}},
             "networks": {"default": {"name": "shop_default"}, "outside": {"external": True}},
             "volumes": {"data": {"name": "shop_data"}}}
    labelled = D.labelled_model(model, LESSON)
    web = labelled["services"]["web"]["labels"]
    assert web == {"team": "a", **L.labels_for(LESSON, kind="container")}
    assert labelled["services"]["app"]["build"]["labels"] == L.labels_for(LESSON, kind="image")
    assert "labels" not in labelled["networks"]["outside"]  # not the project's to label
    assert labelled["networks"]["default"]["labels"][L.LESSON] == LESSON
    assert labelled["volumes"]["data"]["labels"][L.LESSON] == LESSON
    assert "labels" not in model["volumes"]["data"]  # the model handed in is left as it was


def test_compose_options_lose_only_their_files():
    assert D._without_files(["-f", "a.yaml", "-p", "x", "--file=b.yaml", "--profile", "dev"]) == [
        "-p", "x", "--profile", "dev"]


def test_no_docker_cli_is_one_line_saying_how_to_get_it(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(D.DockerCliMissing) as err:
        D.run_command("ps", lesson=None)
    (line,) = err.value._render_traceback_()
    assert "`docker` command is not installed" in line and "make lab" in line


# -- docker stack deploy: the labels come in one more Compose file --------------------------------

STACK = """\
version: "3.8"
x-team: &team
  team: shop
services:
  web:
    image: busybox
    environment:
      VERSION: ${VERSION:-1}
    deploy:
      replicas: 3
      labels: *team
    networks: [front, outside]
  worker:
    image: busybox
    volumes: [data:/data]
networks:
  front: {}
  outside:
    external: true
volumes:
  data: {}
"""


@pytest.mark.parametrize(("line", "files", "at"), [
    ("stack deploy -c stack.yaml lab", ["stack.yaml"], 4),
    ("stack up --compose-file a.yaml -c b.yaml --prune lab", ["a.yaml", "b.yaml"], 6),
    ("-H unix:///x.sock stack deploy --compose-file=a.yaml,b.yaml lab", ["a.yaml", "b.yaml"], 5),
])
def test_stack_deploy_files_are_read_and_the_labels_file_goes_last(line, files, at):
    assert D._stack_files(W(line)) == (files, at)


@pytest.mark.parametrize("line", ["stack ls", "stack rm lab", "stack ps lab", "run busybox",
                                  "stack deploy lab"])
def test_other_stack_commands_have_no_files_to_label(line):
    assert D._stack_files(W(line)) is None


def test_the_stack_labels_file_labels_services_containers_and_what_the_stack_creates():
    overlay = D.stack_labels_file([yaml.safe_load(STACK)], LESSON)
    plain, container = L.labels_for(LESSON), L.labels_for(LESSON, kind="container")
    assert overlay["version"] == "3.8"  # the CLI merges files of one version only
    assert overlay["services"] == {
        name: {"labels": container, "deploy": {"labels": plain}} for name in ("web", "worker")}
    # The stack's own networks (default too) and volumes; never an external one.
    assert overlay["networks"] == {"default": {"labels": plain}, "front": {"labels": plain}}
    assert overlay["volumes"] == {"data": {"labels": plain}}


def test_stack_deploy_runs_with_the_labels_file_and_it_is_gone_afterwards(tmp_path):
    (tmp_path / "stack.yaml").write_text(STACK)
    words = W("stack deploy -c stack.yaml --prune lab")
    with D.stack_with_labels(words, LESSON, tmp_path) as argv:
        assert argv[:4] == words[:4] and argv[-2:] == ["--prune", "lab"]
        assert argv[4] == "-c"
        labels_file = argv[5]
        assert json.loads(Path(labels_file).read_text()) == \
            D.stack_labels_file([yaml.safe_load(STACK)], LESSON)
    assert not Path(labels_file).exists()
    # A missing file, or stdin, is left for the CLI to report: the command runs as typed.
    for line in ("stack deploy -c missing.yaml lab", "stack deploy -c - lab"):
        with D.stack_with_labels(W(line), LESSON, tmp_path) as argv:
            assert argv == W(line)


def test_the_docker_cli_merges_the_labels_into_the_stack_as_typed(tmp_path):
    """The real CLI's reading of the two files (``docker stack config`` needs no engine): the
    learner's own labels and interpolation are kept, the course's are added."""
    (tmp_path / "stack.yaml").write_text(STACK)
    with D.stack_with_labels(W("stack deploy -c stack.yaml lab"), LESSON, tmp_path) as argv:
        config = subprocess.run([D.docker_cli(), "stack", "config", *argv[2:-1]], cwd=tmp_path,
                                capture_output=True, text=True, check=True,
                                env={"VERSION": "2", "PATH": os.environ["PATH"]})
    services = yaml.safe_load(config.stdout)["services"]
    assert services["web"]["deploy"]["labels"] == {"team": "shop", **L.labels_for(LESSON)}
    assert services["web"]["labels"] == L.labels_for(LESSON, kind="container")
    assert services["web"]["environment"] == {"VERSION": "2"}
    assert services["worker"]["deploy"]["labels"] == L.labels_for(LESSON)


@pytest.mark.parametrize(("line", "words", "source"), [
    ("login localhost:5443 -u student --password-stdin < password.txt",
     "login localhost:5443 -u student --password-stdin", "password.txt"),
    ("load <app.tar", "load", "app.tar"),
    ("load < '/tmp/my app.tar'", "load", "/tmp/my app.tar"),
    ("ps -a", "ps -a", None),
    ("< only.txt", "< only.txt", None),  # no command before it: left to docker to refuse
    ("run --rm busybox echo <", "run --rm busybox echo <", None),
])
def test_a_trailing_less_than_names_the_commands_input(line, words, source):
    import shlex

    assert D.input_file(shlex.split(line)) == (shlex.split(words), source)


# -- the containerd image store's lost-layer race: one more run -----------------------------------

#: The end of what Engine 28.5 with the containerd image store printed in CI (08-building's
#: rebuild): a race in the engine, not the learner's Dockerfile.
LOST_LAYER = ('#10 ERROR: failed to prepare extraction snapshot "extract-591944420-w6cm sha256:0176'
              '27093e": parent snapshot sha256:3d867dd91e16 does not exist: not found')


def fake_docker(folder: Path, failures: list[str]) -> Path:
    """A ``docker`` that prints ``failures[n]`` and exits 1 on its n-th run, then succeeds; each
    run's arguments are appended to ``runs``."""
    script = folder / "docker"
    script.write_text(f"""#!{sys.executable}
import json, pathlib, sys
here = pathlib.Path({str(folder)!r})
runs = here / "runs"
runs.write_text(runs.read_text() + json.dumps(sys.argv[1:]) + "\\n" if runs.exists()
                else json.dumps(sys.argv[1:]) + "\\n")
n = len(runs.read_text().splitlines()) - 1
failures = {failures!r}
if n < len(failures):
    print(failures[n]); sys.exit(1)
print("built")
""")
    script.chmod(0o755)
    return script


class _Lesson:
    id = LESSON


def test_a_command_the_engine_lost_a_layer_under_runs_once_more(tmp_path, monkeypatch):
    fake_docker(tmp_path, [LOST_LAYER])
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    out: list[str] = []
    assert D.run_command("build -t hello-bk hello-bk", _Lesson(), cwd=tmp_path,
                         write=out.append) == 0
    runs = (tmp_path / "runs").read_text().splitlines()
    assert len(runs) == 2 and runs[0] == runs[1]  # the same labelled command again
    text = "".join(out)
    assert "moby/buildkit#6521" in text and text.rstrip().endswith("built")


@pytest.mark.parametrize("failures", [
    ["ERROR: failed to solve: process \"/bin/sh -c exit 3\" did not complete: exit code: 3"],
    [LOST_LAYER, LOST_LAYER],  # once more only: the second failure is the learner's to see
])
def test_other_failures_and_a_second_lost_layer_stop_the_cell(tmp_path, monkeypatch, failures):
    fake_docker(tmp_path, failures)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with pytest.raises(D.DockerCommandFailed):
        D.run_command("build -t app .", _Lesson(), cwd=tmp_path, write=lambda text: None)
    assert len((tmp_path / "runs").read_text().splitlines()) == len(failures)
