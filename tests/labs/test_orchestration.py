"""The orchestration lab on a real engine: `docklab check orchestration` and the nbgrader round trip.

The answer is a stack file (stack.yaml) that the real docker CLI reads and deploys, in a container
of docklab/docker-cli inside the engine being judged. Every deployment here happens in a sealed
engine (a rootless dockerd in a container of the host's engine, :mod:`docklab.grading.sealed`): the
host engine never makes or joins a swarm, and is left as it was. The right answer (the solution's
stack.yaml) passes every check on that engine's one-node swarm, and so does the same stack spelled
another way (anchors, lists, a string command, the image's full name, the version key); wrong ones
lose what they break: 2 replicas, updates all at once and no label, no restart, an update that
changes nothing. Hostile files (a bind mount of /, privileged, cap_add, the host's network, a
secret read from /etc/shadow, 10 000 replicas, YAML bombs) are refused before anything parses
them further: deploys fails saying why, and nothing runs. The round trip runs the real ``nbgrader
autograde`` (SealedJudge; tests/labs/test_round_trips.py runs it from CASE, and `docklab check`
on a sealed engine too): the untouched notebook, a cheat and a hostile file score 0, restart
"any" loses the hidden test's points.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from docklab import labels
from docklab.checks import orchestration
from tests.labs.answers import answer_folder, hands_in, replaced, solution_cell, writefile
from tests.labs.asserts import assert_fails_exactly, assert_nothing_labelled_left
from tests.labs.harness import Cheat, LabCase

pytestmark = pytest.mark.engine

ALL = [c.id for c in orchestration.CRITERIA]
SWARM_NETWORKS = ("ingress", "docker_gwbridge")
GOOD = solution_cell("orchestration", "stack-yaml")
NO_RESTART_POLICY = replaced(GOOD, """      restart_policy:
        condition: on-failure
        delay: 500ms
""", "")
ALWAYS = replaced(replaced(GOOD, "condition: on-failure", "condition: any"),
                  "parallelism: 1", "parallelism: 3")
# The same stack in another spelling: the version key, an anchor, a list environment, labels as a
# list beside another one, the image's full name, a string command, a 1000ms delay with an
# explicit order; and ${HOME}, which the CLI fills in from its own container, not the grader's.
RESPELLED = """version: "3.8"
x-policy: &policy
  condition: on-failure
services:
  app:
    image: docker.io/library/busybox:latest
    command: sh -c 'echo version $$VERSION && exec sleep 3600'
    environment:
      - VERSION=${VERSION:-1}
      - SEEN_HOME=${HOME}
    deploy:
      mode: replicated
      replicas: 3
      labels: [tier=demo, course.lab=orchestration]
      update_config: {delay: 1000ms, order: stop-first, parallelism: 1}
      restart_policy: *policy
"""

# name → (stack.yaml, the checks that must fail)
WRONG = {
    "two_replicas": (replaced(GOOD, "replicas: 3", "replicas: 2"), {"replicas_running"}),
    "all_at_once_unlabelled": (replaced(replaced(GOOD, "parallelism: 1", "parallelism: 0"),
                                        "labels:\n        course.lab: orchestration\n", ""),
                               {"update_config", "labelled"}),
    "no_restart": (replaced(GOOD, "condition: on-failure", "condition: none"),
                   {"restarts_on_failure"}),
    "update_changes_nothing": (replaced(GOOD, "VERSION: ${VERSION:-1}", 'VERSION: "1"'),
                               {"rolling_update"}),
    "not_a_course_image": (replaced(GOOD, "image: busybox", "image: alpine"), set(ALL)),
    "not_yaml": ("services:\n  web:\n    image: busybox\n   deploy: [\n", set(ALL)),
}

_LAUGHS = "\n".join(["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
                    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]"
                       for i in range(8)])
# name → (stack.yaml, words deploys' feedback must hold): refused before anything runs.
HOSTILE = {
    "bind_mount_of_root": (replaced(GOOD, "    deploy:\n", "    volumes: [\"/:/host\"]\n"
                                    "    deploy:\n"), "grading mounts nothing"),
    "privileged": (replaced(GOOD, "    deploy:\n", "    privileged: true\n    deploy:\n"),
                   "no extra privileges"),
    "cap_add": (replaced(GOOD, "    deploy:\n", "    cap_add: [SYS_ADMIN]\n    deploy:\n"),
                "no extra capabilities"),
    "host_network": (replaced(GOOD, "    deploy:\n", "    network_mode: host\n    deploy:\n"),
                     "network_mode: host shares the host's network"),
    "secret_from_shadow": (replaced(GOOD, "    deploy:\n", "    secrets: [shadow]\n    deploy:\n")
                           + "secrets:\n  shadow:\n    file: /etc/shadow\n",
                           "reads no files of the host"),
    "ten_thousand_replicas": (replaced(GOOD, "replicas: 3", "replicas: 10000"),
                              "10000 is more than grading runs"),
    "another_image": (replaced(GOOD, "image: busybox", "image: docklab/sealed-engine"),
                      "grading runs only busybox"),
    "billion_laughs": (f"{_LAUGHS}\n{GOOD}", "billion laughs"),
    "recursive_anchor": (f"x-loop: &loop [*loop]\n{GOOD}", "refers to itself"),
    "too_large": (GOOD + "# " + "x" * 30_000 + "\n", "larger than 20 kB"),
}


def answer(folder: Path, text: str) -> Path:
    """A folder with stack.yaml."""
    return answer_folder(folder, "orchestration", {"stack.yaml": text})


def _host_state(client) -> dict:
    """What grading must not change on the host engine: its swarm. Other labs' tests run beside
    these, and so do the notebooks except 11-orchestration, which makes a swarm of the host engine
    (tests/conftest.py runs it in this lab's group)."""
    return {
        "swarm": client.info()["Swarm"]["LocalNodeState"],
        "swarm_networks": sorted(n.name for n in client.networks.list()
                                 if n.name in SWARM_NETWORKS
                                 or n.attrs.get("Driver") == "overlay"),
    }


@pytest.fixture(scope="module", autouse=True)
def host_before(client):
    return _host_state(client)


# -- the file, read as data (no engine needed) ---------------------------------------------------

def test_the_lab_is_ready_for_sealed_grading():
    lab = orchestration.LAB
    assert lab.sealed_ready and set(lab.images) == {*orchestration.IMAGES,
                                                     orchestration.CLI_IMAGE}
    assert set(lab.hidden) == {"restarts_on_failure"}


def test_the_hidden_test_reads_the_recorded_restart_condition():
    hidden = orchestration.restarts_only_on_failure
    assert hidden({"restart_condition": "on-failure"}).passed
    assert "on-failure" in hidden({"restart_condition": "any"}).feedback
    assert not hidden({"restart_condition": "any"}).passed
    assert hidden({}).feedback.startswith("Not judged") and not hidden({}).judged


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_file_is_refused_before_the_cli_reads_it(name):
    text, words = HOSTILE[name]
    raw, why = orchestration.read_yaml(text)
    refused = why or " ".join(orchestration.problems(raw))
    if not refused:  # values are judged from the CLI's reading: here, from the file's own
        with pytest.raises(ValueError) as caught:
            orchestration.service_of(raw)
        refused = str(caught.value)
    assert words in refused


def test_the_right_file_and_its_respelling_are_what_grading_takes():
    for text in (GOOD, RESPELLED):
        raw, why = orchestration.read_yaml(text)
        assert not why and orchestration.problems(raw) == []
    service = orchestration.service_of(orchestration.read_yaml(GOOD)[0])
    assert service["update_config"]["delay"] == 1.0
    assert service["restart_policy"] == {"condition": "on-failure", "delay": 0.5,
                                         "max_attempts": 0, "window": 0.0}
    assert orchestration.seconds("1m30s", "x", 100) == 90
    for bad in ("1 second", "3600s", "-1s"):
        with pytest.raises(ValueError):
            orchestration.seconds(bad, "delay")


# -- the checks, on a sealed engine -------------------------------------------------------------

@pytest.fixture(scope="class")
def sealed(client):
    """One sealed engine for the class's tests, removed before the round trip starts its own."""
    from docklab.grading.sealed import SealedEngine

    with SealedEngine(client, images=orchestration.LAB.images,
                      lesson="grade-orchestration") as engine:
        yield engine


class TestOnASealedEngine:
    @pytest.mark.parametrize("name", WRONG)
    def test_a_wrong_answer_fails_exactly_the_checks_it_breaks(self, tmp_path, sealed, name):
        text, failing = WRONG[name]
        assert_fails_exactly(orchestration.LAB.check(answer(tmp_path / name, text),
                                                     sealed=sealed), failing)

    @pytest.mark.parametrize("name", HOSTILE)
    def test_a_hostile_answer_scores_zero_saying_why_and_runs_nothing(self, tmp_path, sealed,
                                                                      name):
        text, words = HOSTILE[name]
        report = orchestration.LAB.check(answer(tmp_path / name, text), sealed=sealed)
        assert_fails_exactly(report, set(ALL))
        assert words in report["deploys"].feedback
        assert "environment" not in report.details  # the CLI never read it: nothing was deployed
        assert sealed.client.containers.list(all=True) == []

    def test_no_restart_policy_passes_the_check_and_fails_the_hidden_assert(self, tmp_path,
                                                                           sealed):
        # Without a restart_policy the swarm restarts on any exit: the killed task is replaced,
        # and only the hidden test (on failure, not always) tells the difference.
        folder = answer(tmp_path / "default", NO_RESTART_POLICY)
        report = orchestration.LAB.check(folder, sealed=sealed)
        assert_fails_exactly(report, set())
        assert report.details["restart_condition"] == "any"
        with pytest.raises(AssertionError, match="on-failure"):
            orchestration.assert_restarts_only_on_failure(folder, sealed=sealed)

    def test_nothing_is_left_in_the_sealed_engine(self, sealed):
        client = sealed.client
        assert client.info()["Swarm"]["LocalNodeState"] == "inactive"  # every swarm was left
        assert client.containers.list(all=True) == []
        assert [n.name for n in client.networks.list()
                if n.name not in ("bridge", "host", "none", "docker_gwbridge")] == []
        assert_nothing_labelled_left(client, lesson="grade-orchestration")


def test_the_respelled_stack_passes_and_home_is_the_cli_containers(graded):
    # dee hands in RESPELLED in the round trip: its sealed judge's report, not a second deploy.
    report = graded.sealed_report("dee")
    assert_fails_exactly(report, set())
    environment = report.details["environment"]
    assert environment["without VERSION"] == {"VERSION": "1", "SEEN_HOME": "/tmp"}
    assert environment["VERSION=2"]["VERSION"] == "2"


# -- the nbgrader round trip (SealedJudge; tests/labs/test_round_trips.py) ----------------------

def _stack(text: str):
    return hands_in({"stack-yaml": writefile("stack.yaml", text)})


# student → (edit, expected score out of 10)
STUDENTS = {
    "ada": (_stack(GOOD), 10),
    # all at once, and restart always: update_config fails, the hidden test takes restart's
    "bo": (_stack(ALWAYS), 6),
    "dee": (_stack(RESPELLED), 10),
    "eve": (None, 0),
    # a bind mount of the host's / and privileged: refused, nothing deployed
    "hal": (_stack(HOSTILE["bind_mount_of_root"][0].replace(
        "    deploy:\n", "    privileged: true\n    deploy:\n", 1)), 0),
    # an answer cell that is not a stack file, and an added cell that patches the checks' asserts
    "mal": (Cheat("orchestration", "stack-yaml"), 0),
}

CASE = LabCase(
    "orchestration", max_score=10, students=STUDENTS,
    right_answer=lambda folder: answer(folder, GOOD),
    not_released=("assert_restarts_only_on_failure", "condition: on-failure"),
    cells={"bo": {"test_restarts_on_failure": 0, "test_replicas_running": 2}},
    feedback={"bo": ("1 at a time, 1 s apart", "the lab asks for on-failure"),
              "eve": ("placeholder",), "hal": ("grading mounts nothing", "privileges"),
              "mal": ("no cell starting with %%writefile stack.yaml",)},
    check_on_a_sealed_engine=True,
)


# -- last: the host engine as it was ------------------------------------------------------------

def test_the_host_engine_is_left_as_it_was(client, host_before, graded):
    # `graded`: the round trip has run by now (here, after host_before, unless another module
    # asked for it first).
    assert _host_state(client) == host_before
    # A sealed engine's data root is a tmpfs, so it makes no volume on the host; the tests in
    # tests/grading/test_sealed.py, run alone, show the host's volumes as they were.
    assert not any(labels.find_labelled(client, lesson="grade-orchestration").values())
    swarm_tasks = [c for c in client.api.containers(all=True)
                   if "com.docker.swarm.service.name" in (c.get("Labels") or {})]
    assert swarm_tasks == []
