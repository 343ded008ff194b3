"""The networking lab on the real engine: `docklab check networking` on scripts of docker commands
(run.sh) that start the deck's broken set-up, repaired and half-repaired ones, and the students of
its nbgrader round trip (tests/labs/test_round_trips.py runs it from CASE), where every submission
is judged on a sealed engine of its own (no cell of it runs; the script's commands run with the
docker CLI of docklab/docker-cli inside that engine).

Wrong answers are the deck's three mistakes one at a time (default bridge, a container on another
network, the wrong container port), an alias on the wrong container, a renamed web server, an
extra published port, a client with no command, the host's network, another image. Hostile
scripts are refused before anything runs (shell syntax, `docker -H`, a program that is not docker)
or run with what grading does not run left out (`--privileged`, `--pid host`, `--network host`,
`-v /:/host`). Grading never takes a host port or the host's network, no shell ever runs the
script, and nothing labelled is left behind.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from docklab.checks import networking
from tests.labs.answers import answer_folder, hands_in, replaced, writefile
from tests.labs.asserts import assert_fails_exactly, assert_fails_saying, check_each
from tests.labs.harness import Cheat, LabCase

pytestmark = pytest.mark.engine

ALL = [c.id for c in networking.CRITERIA]
NETWORK = "docker network create shopnet\n"
WEB = "docker run -d --name web --network shopnet --network-alias shop -p 8080:80 nginx\n"
CLIENT = "docker run -d --name client --network shopnet busybox sleep infinity\n"
GOOD = NETWORK + WEB + CLIENT
#: The deck's set-up: both on the default bridge, the wrong container port.
BROKEN = ("docker run -d --name web -p 8080:8080 nginx\n"
          "docker run -d --name client busybox sleep infinity\n")
#: The good set-up in other words: long options, --net, continuations, tagged images, -p with
#: an address and a protocol.
OTHER_SPELLING = """# the shop
docker network create shopnet
docker container run --detach --name=web --net shopnet \\
  --network-alias=shop --publish 0.0.0.0:8080:80/tcp nginx:latest
docker run -d --name client --network=shopnet busybox:latest sleep infinity
"""
REACH = {"user_network", "reach_by_name", "reach_by_alias"}
#: What a shell would create if it ran a hostile script: it must never exist.
MARKER = Path(f"/tmp/docklab-networking-script-ran-{uuid.uuid4().hex[:8]}")


def changed(old: str, new: str) -> str:
    """GOOD with ``old`` replaced by ``new``."""
    return replaced(GOOD, old, new)


# name → (run.sh, or None for none; checks that fail; words in the first one's feedback)
ANSWERS = {
    "good": (GOOD, set(), ""),
    # long options, --net, continuations, tagged images, -p with the address
    "good_other_spelling": (OTHER_SPELLING, set(), ""),
    "the_decks_setup": (BROKEN, REACH | {"port_published"}, "only the default bridge"),
    "client_on_the_default_bridge": (changed("--name client --network shopnet",
                                             "--name client"), REACH,
                                     "share no network (web: shopnet; client: bridge)"),
    "wrong_container_port": (changed("8080:80", "8080:8080"), {"port_published"},
                             "nginx listens on port 80"),
    "wrong_host_port": (changed("8080:80", "80:80"), {"port_published"},
                        "published on the host's port 80"),
    "alias_on_the_client": (changed("--network-alias shop -p", "-p").replace(
        "--network shopnet busybox", "--network shopnet --network-alias shop busybox"),
        {"reach_by_alias"}, "points at the client itself"),
    "web_renamed": (changed("--name web", "--name webserver"), {"reach_by_name"}, "call it web"),
    "extra_published_port": (changed("-p 8080:80", "-p 8080:80 -p 8081:8080"), set(), ""),
    "client_without_command": (changed("busybox sleep infinity", "busybox"),
                               {"reach_by_name", "reach_by_alias"}, "sleep infinity"),
    "network_not_created": (WEB + CLIENT, REACH | {"port_published"}, "Not judged"),
    "host_network": (changed("--name web --network shopnet", "--name web --network host"),
                     {"config_valid", *REACH, "port_published"}, "--network host"),
    "wrong_image": (changed("busybox sleep", "debian:12 sleep"), set(ALL),
                    "no docker run of busybox"),
    "no_run_sh": (None, set(ALL), "%%writefile run.sh"),
    # refused: nothing of the script runs
    "semicolon": (GOOD.replace(NETWORK, f"docker network create shopnet; touch {MARKER}\n"),
                  set(ALL), "`;` is shell syntax"),
    "substitution": (changed("sleep infinity", f"sleep $(touch {MARKER})"), set(ALL),
                     "`$` is shell syntax"),
    "other_engine": (GOOD.replace(NETWORK, "docker -H tcp://127.0.0.1:2375 network create "
                                  "shopnet\n"), set(ALL), "`-H` comes before the command"),
    "not_docker": (f"curl -o {MARKER} http://example.com\n" + GOOD, set(ALL),
                   "`curl` is not docker"),
    # run, with what grading does not run left out
    "privileged": (changed("--name web", "--privileged --pid host --name web -v /:/host"),
                   {"config_valid"}, "`--privileged` is left out"),
}


def _folder(folder: Path, name: str) -> Path:
    """The folder `docklab check networking` grades, holding the answer ``name``."""
    return answer_folder(folder, "networking", {"run.sh": ANSWERS[name][0]})


@pytest.fixture(scope="module")
def reports(client, tmp_path_factory):
    """Every answer graded once, three side by side; nothing labelled may be left behind, and
    no network of grading's own either."""
    root = tmp_path_factory.mktemp("answers")
    folders = {name: _folder(root / name, name) for name in ANSWERS}
    graded, learner = check_each(client, "networking", folders)
    assert not [n for n in client.networks.list() if n.name.startswith("docklab-grade-")
                and learner in str(n.attrs.get("Labels"))]
    return {"reports": graded, "folders": folders}


@pytest.mark.parametrize("name", [n for n, (_, bad, _) in ANSWERS.items() if not bad])
def test_right_scripts_pass_every_visible_check(reports, name):
    report = reports["reports"][name]
    assert_fails_exactly(report, set())
    assert report.score == report.max_score == 7


@pytest.mark.parametrize("name", [n for n, (_, bad, _) in ANSWERS.items() if bad])
def test_wrong_scripts_fail_exactly_the_checks_they_break(reports, name):
    _, expected, words = ANSWERS[name]
    assert_fails_saying(reports["reports"][name], expected, words, "04-networking")


def test_a_network_never_created_fails_as_docker_run_would(reports):
    report = reports["reports"]["network_not_created"]
    assert "shopnet" in report["user_network"].feedback
    assert "docklab-grade-" not in report["user_network"].feedback  # the script's names


def test_no_shell_ever_runs_a_script(reports):
    assert not MARKER.exists()
    for name in ("semicolon", "substitution", "other_engine", "not_docker"):
        report = reports["reports"][name]
        assert "was not run, none of it" in report["config_valid"].feedback, name
        assert "commands" not in report.details, name


def test_what_grading_does_not_run_is_left_out_and_named(reports):
    feedback = reports["reports"]["privileged"]["config_valid"].feedback
    assert "`--pid` is left out" in feedback and "`--volume` is left out" in feedback


def test_an_extra_published_port_fails_only_the_hidden_test(reports):
    with pytest.raises(AssertionError, match="8080:8080 is the broken mapping"):
        networking.assert_publishes_only_the_web_port(reports["folders"]["extra_published_port"])
    networking.assert_publishes_only_the_web_port(reports["folders"]["good"])


# -- the nbgrader round trip (tests/labs/test_round_trips.py) -----------------------------------

def _submission(script: str):
    return hands_in({"answer": writefile("run.sh", script)})


# student → (submission, expected score out of 7)
STUDENTS = {
    "ada": (_submission(GOOD), 7),
    "bo": (_submission(BROKEN), 1),
    # the deck's 8080:8080 left next to the right mapping: the hidden test takes port_published
    "cy": (_submission(ANSWERS["extra_published_port"][0]), 5),
    "di": (_submission(ANSWERS["alias_on_the_client"][0]), 6),
    "eve": (None, 0),
    "mal": (Cheat("networking", "answer"), 0),
    "odo": (_submission(ANSWERS["good_other_spelling"][0]), 7),
    # a pipe into a shell: nothing runs
    "sam": (_submission(GOOD + f"docker run busybox cat /etc/passwd | tee {MARKER}\n"), 0),
    # the host's network for web: left out (run with none), named
    "pat": (_submission(ANSWERS["host_network"][0]), 0),
}

CASE = LabCase(
    "networking", max_score=7, students=STUDENTS,
    right_answer=lambda folder: _folder(folder, "good"),
    not_released=("HIDDEN", "assert_publishes_only_the_web_port", "--network-alias shop -p"),
    cells={"cy": {"test_port_published": 0}},
    feedback={"bo": ("default bridge",), "cy": ("broken mapping",),
              "di": ("points at the client itself",), "eve": ("still holds the placeholder",),
              "mal": ("%%writefile run.sh",), "sam": ("`|` is shell syntax",),
              "pat": ("`--network host` is left out",)},
    untouched_words=("run.sh",),
)
