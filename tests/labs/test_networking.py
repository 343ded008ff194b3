"""The networking lab on the real engine: `docklab check networking` on the deck's broken set-up,
repaired and half-repaired ones, and its nbgrader round trip, where every submission is judged on
a sealed engine of its own (no cell of it runs).

Wrong answers are the deck's three mistakes one at a time (default bridge, a container on another
network, the wrong container port), an alias on the wrong container, a renamed web server, an
extra published port, the host's network, and broken configurations. Grading never takes a host
port or the host's network, and leaves nothing labelled behind.
"""

from __future__ import annotations

import copy
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from docklab import labels
from docklab.checks import networking
from tests.conftest import run_docklab
from tests.labs.roundtrip import Cheat, copy_course, feedback_html, round_trip, set_cell

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
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


@pytest.fixture(scope="module")
def reports(client, tmp_path_factory):
    learner = "test-networking-" + tmp_path_factory.mktemp("id").name[-6:]
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)
    root = tmp_path_factory.mktemp("answers")
    folders = {}
    for name, (setup, _, _) in ANSWERS.items():
        folders[name] = root / name
        folders[name].mkdir()
        if setup is not None:
            (folders[name] / "setup.json").write_text(json.dumps(setup))
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(networking.LAB.check, folder)
                   for name, folder in folders.items()}
        graded = {name: future.result() for name, future in futures.items()}
    seconds = time.monotonic() - started
    left = labels.find_labelled(client, learner=learner)
    mp.undo()
    assert not any(left.values()), f"left behind: {left}"
    assert not [n for n in client.networks.list() if n.name.startswith("docklab-grade-")
                and learner in str(n.attrs.get("Labels"))]
    return {"reports": graded, "seconds": seconds, "folders": folders}


def failing(report) -> set[str]:
    return {check.id for check in report.checks if not check.passed}


@pytest.mark.parametrize("name", [n for n, (_, bad, _) in ANSWERS.items() if not bad])
def test_right_set_ups_pass_every_visible_check(reports, name):
    report = reports["reports"][name]
    assert failing(report) == set(), report.table()
    assert report.score == report.max_score == 7


@pytest.mark.parametrize("name", [n for n, (_, bad, _) in ANSWERS.items() if bad])
def test_wrong_set_ups_fail_exactly_the_checks_they_break(reports, name):
    _, expected, words = ANSWERS[name]
    report = reports["reports"][name]
    assert failing(report) == expected, report.table()
    first = next(check for check in report.checks if check.id in expected)
    assert words in first.feedback, report.table()
    if first.judged:
        assert "Lesson 04-networking" in first.feedback
    else:
        assert first.feedback.startswith("Not judged")
    assert report.score == report.max_score - sum(report[i].points for i in expected)


def test_an_extra_published_port_fails_only_the_hidden_test(reports):
    with pytest.raises(AssertionError, match="8080:8080 is the broken mapping"):
        networking.assert_publishes_only_the_web_port(reports["folders"]["extra_published_port"])
    networking.assert_publishes_only_the_web_port(reports["folders"]["good"])


def test_docklab_check_cli_on_a_folder_and_notebooks(reports, learner_env, client):
    good = run_docklab("check", "networking", str(reports["folders"]["good"]), "--json")
    assert good.returncode == 0, good.stdout + good.stderr
    data = json.loads(good.stdout)
    assert (data["lab"], data["score"], data["max_score"]) == ("networking", 7, 7)
    assert [c["id"] for c in data["checks"]] == ALL
    solved = run_docklab("check", "networking",
                         str(ROOT / "solutions" / "networking" / "networking.ipynb"), "--json")
    assert solved.returncode == 0, solved.stdout + solved.stderr
    assert json.loads(solved.stdout)["score"] == 7
    untouched = run_docklab("check", "networking",
                            str(ROOT / "labs" / "networking" / "networking.ipynb"))
    assert untouched.returncode == 1 and "Traceback" not in untouched.stderr
    assert "networking: 0/7 points" in untouched.stdout and "SETUP" in untouched.stdout
    left = labels.find_labelled(client, learner=learner_env)
    assert not any(left.values()), left


# -- the nbgrader round trip ------------------------------------------------------------------

def _submission(setup: dict):
    def write(notebook) -> None:
        set_cell(notebook, "answer", f"SETUP = {setup!r}\n")
    return write


# A cheat: a rebound checks module, and an added cell patching the report and writing on the host.
CHEAT = Cheat("networking", "answer")


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
    "mal": (CHEAT, 0),
    "odo": (_submission(OTHER_SPELLING), 7),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    learner = "roundtrip-net-" + tmp_path_factory.mktemp("id").name[-6:]
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)  # the sealed engines carry it: their resources are ours
    course = copy_course(tmp_path_factory.mktemp("course"), "networking")
    result = round_trip(course, "networking", {s: edit for s, (edit, _) in STUDENTS.items()})
    mp.undo()
    result.update(course=course, learner=learner)
    return result


def test_round_trip_release_hides_the_hidden_tests(graded):
    text = (graded["course"] / "release" / "networking" / "networking.ipynb").read_text()
    assert "HIDDEN" not in text and "assert_publishes_only_the_web_port" not in text


def test_round_trip_autogrades_to_the_expected_scores(graded):
    for student, result in graded["results"].items():
        assert result["success"], f"{student}: {result.get('error') or result['log'][-2000:]}"
    assert graded["scores"] == {s: float(score) for s, (_, score) in STUDENTS.items()}
    assert graded["max_scores"] == {7.0}
    assert graded["cells"]["ada"] == {f"test_{c.id}": c.points for c in networking.CRITERIA}
    assert graded["cells"]["cy"]["test_port_published"] == 0
    assert graded["cells"]["odo"] == graded["cells"]["ada"]


def test_round_trip_runs_no_cell_of_a_submission(graded):
    CHEAT.assert_came_to_nothing(graded, "mal")


def test_round_trip_feedback_says_what_to_fix(graded):
    assert graded["feedback"]["success"], graded["feedback"].get("error")
    html = {s: feedback_html(graded["course"], "networking", s) for s in STUDENTS}
    assert "default bridge" in html["bo"]
    assert "broken mapping" in html["cy"]
    assert "points at the client itself" in html["di"]
    assert "still holds the placeholder" in html["eve"]
    assert "no cell that sets SETUP" in html["mal"]


def test_round_trip_leaves_nothing_labelled_behind(client, graded):
    left = labels.find_labelled(client, learner=graded["learner"])
    assert not any(left.values()), left
