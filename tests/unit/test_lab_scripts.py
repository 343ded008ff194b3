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


# -- the security lab: one docker run of security-lab, its hardening the script's own ------------

def _security_plan(text: str):
    from docklab.checks import security

    rewrite = C.Rewrite(_sandbox(), network_mode="net1")
    return security.plan(C.read_script(text), rewrite, "sha256:abc")


def test_security_grading_keeps_the_scripts_hardening_and_adds_none_of_its_own():
    plan = _security_plan("docker run -d --name security-lab -p 8080:8080 --read-only "
                          "--tmpfs /tmp:size=16m --cap-drop ALL --user 10001 "
                          "--security-opt no-new-privileges security-lab\n")
    assert not plan.refused, plan.refused
    argv = plan.argv
    assert argv[-1] == "sha256:abc" and plan.name == "docklab-grade-r1-security-lab"
    assert ["--network", "net1", "--network-alias", "security-lab"] == argv[
        argv.index("--network"):argv.index("--network") + 4]
    assert argv.count("--cap-drop=ALL") == 1 and "--cap-drop" not in argv  # the script's only
    assert argv.count("--security-opt=no-new-privileges") == 1 and "--security-opt" not in argv
    assert "--read-only" in argv and "--tmpfs=/tmp:size=16m" in argv and plan.user
    assert "--publish" not in argv and "8080:8080" not in argv   # grading takes no host port
    bare = _security_plan("docker run security-lab\n")
    assert not bare.refused and not any("cap" in word or "privileges" in word
                                        for word in bare.argv)


@pytest.mark.parametrize(("options", "words"), [
    ("--privileged", "`--privileged` gives the container every capability"),
    ("--cap-add SYS_ADMIN", "`--cap-add SYS_ADMIN` asks for more"),
    ("--cap-add ALL", "`--cap-add ALL` asks for more"),
    ("-v /:/host", "-v /:/host is the host's whole filesystem"),
    ("--mount type=bind,src=/,dst=/host", "`--mount` mounts something"),
    ("--pid host", "`--pid` shares the host's processes"),
    ("--network host", "--network host would share"),
    ("--security-opt seccomp=unconfined", "`--security-opt seccomp=unconfined`"),
    ("--security-opt apparmor=unconfined", "take protections away"),
    ("--use-api-socket", "the engine's API socket"),
    ("--device /dev/sda", "a device of the host"),
    ("--entrypoint sh", "`--entrypoint` is not one of this lab's options"),
    ("--tmpfs ../x", "absolute folder"),
    ("--tmpfs /tmp:size=1m,foo", "the options foo are not accepted"),
    ("--user 'a b'", "is not a user"),
])
def test_security_grading_refuses_what_would_undo_the_hardening(options, words):
    plan = _security_plan(f"docker run -d {options} --read-only security-lab\n")
    assert not plan.argv
    assert len(plan.refused) == 1 and plan.refused[0].startswith("line 1 (")
    assert words in plan.refused[0]


@pytest.mark.parametrize(("script", "words"), [
    ("docker run -d python:3.11-slim\n", "grading runs only the lab's image"),
    ("docker run -d security-lab sh\n", "replaces the service's own command"),
    ("docker run -d security-lab\ndocker run -d security-lab:latest\n", "a second docker run"),
    ("docker volume create data\ndocker run -d security-lab\n", "needs no volume"),
    ("# nothing\n", "There is no docker run of security-lab"),
])
def test_security_grading_runs_one_container_of_the_labs_image(script, words):
    plan = _security_plan(script)
    assert not plan.argv and any(words in why for why in plan.refused), plan.refused


def test_run_head_hardens_unless_the_lab_judges_the_hardening():
    command = one("docker run -d --name web nginx")
    hardened = C.Rewrite(_sandbox()).run_head(command)
    assert "--cap-drop" in hardened and "no-new-privileges" in hardened
    plain = C.Rewrite(_sandbox()).run_head(command, harden=False)
    assert "--cap-drop" not in plain and "no-new-privileges" not in plain
    assert "--memory" in plain and "--pids-limit" in plain
