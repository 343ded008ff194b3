"""docklab.checks.commands without an engine: a lab's run.sh read as data. Only comments, blank
lines, continuations and docker volume create / network create / run lines are accepted, their
options split as the docker CLI splits them; anything a shell would act on, another program, an
option before the command or one the CLI does not know refuses the script, naming the line. And
what grading runs: names of its own, labels, limits, what the lab does not run left out."""

from types import SimpleNamespace

import pytest

from docklab.checks import commands as C
from docklab.checks.sandbox import Limits


def one(line: str) -> C.Command:
    script = C.read_script(line)
    assert not script.refused, script.refused
    (command,) = script.commands
    return command


def test_options_are_split_as_the_cli_splits_them():
    command = one("docker run -dp 8080:80 --net=shopnet --network-alias shop -v a:/data "
                  "-e X=1 --rm busybox sleep 'in finity'")
    assert command.kind == "run" and command.image == "busybox"
    assert command.options == [("--detach", None), ("--publish", "8080:80"),
                               ("--network", "shopnet"), ("--network-alias", "shop"),
                               ("--volume", "a:/data"), ("--env", "X=1"), ("--rm", None)]
    assert command.args == ["sleep", "in finity"]  # the container's command, not a shell


def test_comments_blank_lines_and_continuations_are_read():
    script = C.read_script("#!/bin/sh\n# a comment\n\ndocker volume create notes-data\n"
                           "docker container run \\\n  --detach \\\n  --name=notes notes  # app\n")
    assert not script.refused
    assert [(c.line, c.kind, c.name) for c in script.commands] == [
        (4, "volume create", "notes-data"), (5, "run", "notes")]


@pytest.mark.parametrize(("line", "words"), [
    ("docker volume create a; rm -rf /", "`;` is shell syntax"),
    ("docker volume create a && touch /tmp/x", "`&` is shell syntax"),
    ("docker run -e X=$(id) notes", "`$` is shell syntax"),
    ("docker run -e X=`id` notes", "shell syntax"),
    ("docker run -e X=$HOME notes", "`$` is shell syntax"),
    ("docker run notes > /etc/passwd", "`>` is shell syntax"),
    ("docker run notes | sh", "`|` is shell syntax"),
    # quoted, a shell would not act on them; the lab's commands need none, so they are refused
    ("docker run -e 'X=a;b' notes", "`;` is shell syntax"),
    ("docker -H tcp://10.0.0.1:2375 run notes", "`-H` comes before the command"),
    ("docker --context other run notes", "`--context` comes before the command"),
    ("docker --config /tmp/x volume create a", "`--config` comes before the command"),
    ("rm -rf /", "`rm` is not docker"),
    ("sudo docker run notes", "`sudo` is not docker"),
    ("docker exec notes sh", "`docker exec notes` is not one of"),
    ("docker run --frobnicate notes", "`--frobnicate` is not an option"),
    ("docker run -d", "names no image"),
    ("docker run 'notes", "cannot be read"),
    ("docker volume create a b", "takes one name"),
])
def test_a_line_grading_does_not_run_refuses_the_script_naming_it(line, words):
    script = C.read_script(f"docker volume create notes-data\n{line}\n")
    assert len(script.refused) == 1, script.refused
    assert script.refused[0].startswith("line 2 (")
    assert words in script.refused[0]


def test_a_huge_script_is_refused():
    assert C.read_script("docker volume create a\n" * 1000).refused


def _sandbox():
    return SimpleNamespace(run_id="r1", limits=Limits(),
                           labels=lambda kind: {"org.docklab.managed": "true", "kind": kind})


def test_grading_renames_labels_and_bounds_what_it_runs():
    rewrite = C.Rewrite(_sandbox(), network_mode="none")
    command = one("docker run -d --name notes notes")
    head = rewrite.run_head(command)
    assert head[:2] == ["run", "--detach"]
    assert "docklab-grade-r1-notes" in head and "notes" not in head
    for option in ("--memory", "--pids-limit", "--cpus", "--cap-drop", "--security-opt",
                   "--label"):
        assert option in head
    assert head[head.index("--network") + 1] == "none"
    create = rewrite.create(one("docker volume create notes-data"))
    assert create[:2] == ["volume", "create"] and create[-1] == "docklab-grade-r1-notes-data"


def test_driver_options_are_left_out_and_named():
    rewrite = C.Rewrite(_sandbox())
    argv = rewrite.create(one("docker volume create -o type=none -o o=bind -o device=/ d"))
    assert "--opt" not in argv and "device=/" not in argv
    assert len(rewrite.left_out) == 1 and "`--opt` is left out" in rewrite.left_out[0]
    assert rewrite.create(one("docker volume create --driver nfs d")) is None
