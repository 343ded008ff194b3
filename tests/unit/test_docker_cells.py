"""docklab.docker_cells without an engine: where the labels go, a %%docker cell's commands, the
Compose file that labels a project, and the one-line message when the CLI is missing."""

import pytest

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
