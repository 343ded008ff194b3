"""The orchestration lab on a real engine: `docklab check orchestration` and the nbgrader round trip.

Every deployment here happens in a sealed engine (a rootless dockerd in a container of the host's
engine, :mod:`docklab.grading.sealed`): the host engine never makes or joins a swarm, and is left
as it was. The right answer (the solution's service.json) passes every check on that engine's
one-node swarm, and so does the same service spelled another way; wrong ones lose what they break:
no restart on failure, updates all at once and no label, specs grading refuses. The round trip
runs the real ``nbgrader autograde`` (SealedJudge; tests/labs/test_round_trips.py runs it from CASE,
and `docklab check` on a sealed engine too): the untouched notebook and a cheat score 0, restart
"any" loses the hidden test's points.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docklab import labels
from docklab.checks import orchestration
from tests.labs.answers import answer_folder, hands_in, solution_cell, writefile
from tests.labs.asserts import assert_fails_exactly, assert_nothing_labelled_left
from tests.labs.harness import Cheat, LabCase

pytestmark = pytest.mark.engine

ALL = [c.id for c in orchestration.CRITERIA]
SWARM_NETWORKS = ("ingress", "docker_gwbridge")
GOOD = json.loads(solution_cell("orchestration", "service-json"))
NO_RESTART = {**GOOD, "restart_policy": {"condition": "none"}}
ALL_AT_ONCE = {**{k: v for k, v in GOOD.items() if k != "labels"},
               "update_config": {"parallelism": 3}}
ALWAYS = {**GOOD, "restart_policy": {"condition": "any", "delay": 0.5},
          "update_config": {"parallelism": 3, "delay": 1}}
# The same service in another spelling: keys in another order, numbers for the env values, a
# 1.0 s delay with an explicit order, no restart delay, another label beside the course's, and a
# command that says the same through /bin/sh and &&.
RESPELLED = """{
  "update": {"env": {"VERSION": 2}},
  "restart_policy": {"condition": "on-failure"},
  "update_config": {"delay": 1.0, "order": "stop-first", "parallelism": 1},
  "labels": {"tier": "demo", "course.lab": "orchestration"},
  "env": {"VERSION": 1},
  "replicas": 3,
  "command": ["/bin/sh", "-c", "echo version $VERSION && exec sleep 3600"],
  "image": "busybox"
}"""

# name → (service.json, the checks that must fail)
WRONG = {
    "all_at_once_unlabelled": (ALL_AT_ONCE, {"update_config", "labelled"}),
    "not_a_course_image": ({**GOOD, "image": "alpine"}, set(ALL)),
    "no_update_section": ({k: v for k, v in GOOD.items() if k != "update"}, set(ALL)),
    "not_json": ("{'image': 'busybox'}", set(ALL)),
}


def answer(folder: Path, spec) -> Path:
    """A folder with service.json (a spec, or its text)."""
    return answer_folder(folder, "orchestration", {
        "service.json": spec if isinstance(spec, str) else json.dumps(spec)})


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


# -- the checks, on a sealed engine -------------------------------------------------------------

def test_the_lab_is_ready_for_sealed_grading():
    lab = orchestration.LAB
    assert lab.sealed_ready and set(lab.images) == set(orchestration.IMAGES)
    assert set(lab.hidden) == {"restarts_on_failure"}


def test_the_hidden_test_reads_the_recorded_restart_condition():
    hidden = orchestration.restarts_only_on_failure
    assert hidden({"restart_condition": "on-failure"}).passed
    assert "on-failure" in hidden({"restart_condition": "any"}).feedback
    assert not hidden({"restart_condition": "any"}).passed
    assert hidden({}).feedback.startswith("Not judged") and not hidden({}).judged


def test_parse_spec_refuses_what_grading_cannot_run():
    assert orchestration.parse_spec(json.dumps(GOOD))[0]["new_env"] == ["VERSION=2"]
    assert orchestration.parse_spec(RESPELLED)[0]["new_env"] == ["VERSION=2"]
    for spec in ({**GOOD, "replicas": 50}, {**GOOD, "labels": {"org.docklab.managed": "x"}},
                 {**GOOD, "update_config": {"delay": 3600}}, {**GOOD, "mounts": ["/:/host"]},
                 {**GOOD, "networks": ["host"]}, {**GOOD, "image": "docklab/sealed-engine"}):
        parsed, why = orchestration.parse_spec(json.dumps(spec))
        assert parsed is None and why


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
        spec, failing = WRONG[name]
        assert_fails_exactly(orchestration.LAB.check(answer(tmp_path / name, spec),
                                                     sealed=sealed), failing)

    def test_no_restart_fails_the_check_and_the_notebooks_hidden_assert(self, tmp_path, sealed):
        folder = answer(tmp_path / "none", NO_RESTART)
        report = orchestration.LAB.check(folder, sealed=sealed)
        assert {c.id for c in report.checks if not c.passed} == {"restarts_on_failure"}
        assert report.details["restart_condition"] == "none"
        # The notebook's hidden assert: the same function, on the same (cached) report.
        with pytest.raises(AssertionError, match="on-failure"):
            orchestration.assert_restarts_only_on_failure(folder, sealed=sealed)

    def test_nothing_is_left_in_the_sealed_engine(self, sealed):
        client = sealed.client
        assert client.info()["Swarm"]["LocalNodeState"] == "inactive"  # every swarm was left
        assert client.containers.list(all=True) == []
        assert_nothing_labelled_left(client, lesson="grade-orchestration")


# -- the nbgrader round trip (SealedJudge; tests/labs/test_round_trips.py) ----------------------

def _spec(spec):
    text = spec if isinstance(spec, str) else json.dumps(spec, indent=2)
    return hands_in({"service-json": writefile("service.json", text)})


# student → (edit, expected score out of 10)
STUDENTS = {
    "ada": (_spec(GOOD), 10),
    # all at once, and restart always: update_config fails, the hidden test takes restart's
    "bo": (_spec(ALWAYS), 6),
    "dee": (_spec(RESPELLED), 10),
    "eve": (None, 0),
    # an answer cell that is not a spec, and an added cell that patches the checks' asserts
    "mal": (Cheat("orchestration", "service-json"), 0),
}

CASE = LabCase(
    "orchestration", max_score=10, students=STUDENTS,
    right_answer=lambda folder: answer(folder, GOOD),
    not_released=("assert_restarts_only_on_failure", '"on-failure", "delay"'),
    cells={"bo": {"test_restarts_on_failure": 0, "test_replicas_running": 2}},
    feedback={"bo": ("1 at a time, 1 s apart", "the lab asks for on-failure"),
              "eve": ("placeholder",), "mal": ("no cell starting with %%writefile service.json",)},
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
