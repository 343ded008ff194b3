"""The networking lab on the real engine: `docklab check networking` on the deck's broken set-up,
repaired and half-repaired ones, and the students of its nbgrader round trip
(tests/labs/test_round_trips.py runs it from CASE), where every submission is judged on a sealed
engine of its own (no cell of it runs).

Wrong answers are the deck's three mistakes one at a time (default bridge, a container on another
network, the wrong container port), an alias on the wrong container, a renamed web server, an
extra published port, the host's network, and broken configurations. Grading never takes a host
port or the host's network, and leaves nothing labelled behind.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from docklab.checks import networking
from tests.labs.answers import answer_folder, hands_in
from tests.labs.asserts import assert_fails_exactly, assert_fails_saying, check_each
from tests.labs.harness import Cheat, LabCase

pytestmark = pytest.mark.engine

ALL = [c.id for c in networking.CRITERIA]
GOOD = {
    "network": "shopnet",
    "web": {"image": "nginx", "name": "web", "network": "shopnet", "aliases": ["shop"],
            "ports": {"80/tcp": 8080}},
    "client": {"image": "busybox", "name": "client", "network": "shopnet",
               "command": ["sleep", "infinity"]},
}
BROKEN = {
    "web": {"image": "nginx", "name": "web", "ports": {"8080/tcp": 8080}},
    "client": {"image": "busybox", "name": "client", "command": ["sleep", "infinity"]},
}
REACH = {"user_network", "reach_by_name", "reach_by_alias"}


def changed(**edits) -> dict:
    """GOOD with ``web__ports=...``-style edits (None deletes the key)."""
    setup = copy.deepcopy(GOOD)
    for path, value in edits.items():
        *parents, key = path.split("__")
        node = setup
        for part in parents:
            node = node[part]
        if value is None:
            node.pop(key, None)
        else:
            node[key] = value
    return setup


# name → (set-up, or None for no setup.json; checks that fail; words in the first one's feedback)
ANSWERS = {
    "good": (GOOD, set(), ""),
    "good_port_string": (changed(web__ports=["8080:80"]), set(), ""),
    "the_decks_setup": (BROKEN, REACH | {"port_published"}, "only the default bridge"),
    "client_on_the_default_bridge": (changed(client__network=None), REACH,
                                     "share no network (web: shopnet; client: bridge)"),
    "wrong_container_port": (changed(web__ports={"8080/tcp": 8080}), {"port_published"},
                             "nginx listens on port 80"),
    "wrong_host_port": (changed(web__ports={"80/tcp": 80}), {"port_published"},
                        "published on the host's port 80"),
    "alias_on_the_client": (changed(web__aliases=None, client__aliases=["shop"]),
                            {"reach_by_alias"}, "points at the client itself"),
    "web_renamed": (changed(web__name="webserver"), {"reach_by_name"}, "call it web"),
    "extra_published_port": (changed(web__ports={"80/tcp": 8080, "8080/tcp": 8081}), set(), ""),
    "host_network": (changed(web__network="host"), {"config_valid", *REACH, "port_published"},
                     "--network host"),
    "wrong_image": (changed(client__image="debian:12"), {"config_valid"}, "runs busybox"),
    "no_client": (changed(client=None), set(ALL), "no 'client' dict"),
    "not_a_dict": ([GOOD], set(ALL), "should be a dict"),
    "no_setup_json": (None, set(ALL), "record_setup"),
}


def _folder(folder: Path, name: str) -> Path:
    """The folder `docklab check networking` grades, holding the answer ``name``."""
    setup = ANSWERS[name][0]
    return answer_folder(folder, "networking",
                         {"setup.json": None if setup is None else json.dumps(setup)})


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
def test_right_set_ups_pass_every_visible_check(reports, name):
    report = reports["reports"][name]
    assert_fails_exactly(report, set())
    assert report.score == report.max_score == 7


@pytest.mark.parametrize("name", [n for n, (_, bad, _) in ANSWERS.items() if bad])
def test_wrong_set_ups_fail_exactly_the_checks_they_break(reports, name):
    _, expected, words = ANSWERS[name]
    assert_fails_saying(reports["reports"][name], expected, words, "04-networking")


def test_an_extra_published_port_fails_only_the_hidden_test(reports):
    with pytest.raises(AssertionError, match="8080:8080 is the broken mapping"):
        networking.assert_publishes_only_the_web_port(reports["folders"]["extra_published_port"])
    networking.assert_publishes_only_the_web_port(reports["folders"]["good"])


# -- the nbgrader round trip (tests/labs/test_round_trips.py) -----------------------------------

def _submission(setup: dict):
    return hands_in({"answer": f"SETUP = {setup!r}\n"})


# The good set-up in other spellings: -p as a string, one alias as a string, the client's
# command as one string, tagged image names.
OTHER_SPELLING = changed(web__ports=["8080:80"], web__aliases="shop", web__image="nginx:latest",
                         client__command="sleep infinity", client__image="busybox:latest")

# student → (submission, expected score out of 7)
STUDENTS = {
    "ada": (_submission(GOOD), 7),
    "bo": (_submission(BROKEN), 1),
    # the deck's 8080:8080 left next to the right mapping: the hidden test takes port_published
    "cy": (_submission(changed(web__ports={"80/tcp": 8080, "8080/tcp": 8081})), 5),
    "di": (_submission(changed(web__aliases=None, client__aliases=["shop"])), 6),
    "eve": (None, 0),
    "mal": (Cheat("networking", "answer"), 0),
    "odo": (_submission(OTHER_SPELLING), 7),
}

CASE = LabCase(
    "networking", max_score=7, students=STUDENTS,
    right_answer=lambda folder: _folder(folder, "good"),
    not_released=("HIDDEN", "assert_publishes_only_the_web_port"),
    cells={"cy": {"test_port_published": 0}},
    feedback={"bo": ("default bridge",), "cy": ("broken mapping",),
              "di": ("points at the client itself",), "eve": ("still holds the placeholder",),
              "mal": ("no cell that sets SETUP",)},
    untouched_words=("SETUP",),
)
