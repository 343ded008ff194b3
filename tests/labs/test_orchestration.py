"""The orchestration lab on a real engine: `docklab check orchestration` and the nbgrader round trip.

Every deployment here happens in a sealed engine (a rootless dockerd in a container of the host's
engine, :mod:`docklab.grading.sealed`): the host engine never makes or joins a swarm, and is left
as it was. The right answer (the solution's service.json) passes every check on that engine's
one-node swarm, and so does the same service spelled another way; wrong ones lose what they break:
no restart on failure, updates all at once and no label, specs grading refuses. The round trip
runs the real ``nbgrader autograde`` (SealedJudge): the untouched notebook and a cheat score 0,
restart "any" loses the hidden test's points.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import nbformat
import pytest

from docklab import labels
from docklab.checks import orchestration
from tests.conftest import run_docklab
from tests.labs.roundtrip import copy_course, feedback_html, round_trip, set_cell

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = ROOT / "solutions" / "orchestration" / "orchestration.ipynb"
ALL = [c.id for c in orchestration.CRITERIA]
SWARM_NETWORKS = ("ingress", "docker_gwbridge")


def _solution_spec() -> dict:
    notebook = nbformat.read(SOLUTION, as_version=4)
    source = next(c.source for c in notebook.cells if c.get("id") == "service-json")
    return json.loads(source.partition("\n")[2])


GOOD = _solution_spec()
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
    folder.mkdir()
    (folder / "service.json").write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return folder


def _host_state(client) -> dict:
    """What grading must not change on the host engine (other labs' tests run beside these)."""
    return {
        "swarm": client.info()["Swarm"]["LocalNodeState"],
        "swarm_networks": sorted(n.name for n in client.networks.list()
                                 if n.name in SWARM_NETWORKS
                                 or n.attrs.get("Driver") == "overlay"),
        "volumes": {v.name for v in client.volumes.list()},
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
    def test_the_solution_passes_every_check(self, tmp_path, sealed):
        # The learner's command, pointed at the sealed engine (course images by name there).
        socket = Path(sealed._run_dir) / "engine" / "docker.sock"
        result = run_docklab("check", "orchestration", str(answer(tmp_path / "good", GOOD)),
                             "--json", env={"DOCKER_HOST": f"unix://{socket}"})
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        assert report["lab"] == "orchestration" and report["score"] == report["max_score"] == 10
        assert [c["id"] for c in report["checks"]] == ALL
        # The swarm the check made in the sealed engine was left again.
        assert sealed.client.info()["Swarm"]["LocalNodeState"] == "inactive"

    @pytest.mark.parametrize("name", WRONG)
    def test_a_wrong_answer_fails_exactly_the_checks_it_breaks(self, tmp_path, sealed, name):
        spec, failing = WRONG[name]
        report = orchestration.LAB.check(answer(tmp_path / name, spec), sealed=sealed)
        assert {c.id for c in report.checks if not c.passed} == failing, report.table()
        for check in report.checks:
            if not check.passed:
                assert check.feedback, check.id

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
        assert not any(labels.find_labelled(client, lesson="grade-orchestration").values())


# -- the nbgrader round trip (nbgrader autograde → SealedJudge) ---------------------------------

def _spec(spec):
    text = spec if isinstance(spec, str) else json.dumps(spec, indent=2)
    return lambda notebook: set_cell(notebook, "service-json", "%%writefile service.json\n" + text)


CHEAT = 'orchestration = type("M", (), {"__getattr__": lambda s, n: lambda *a, **k: s})()'


def _cheat(marker: Path):
    """An answer cell that is not a spec, and an added cell that patches the checks' asserts."""
    def edit(notebook):
        set_cell(notebook, "service-json", CHEAT)
        at = next(i for i, c in enumerate(notebook.cells) if c.get("id") == "service-json")
        notebook.cells.insert(at + 1, nbformat.v4.new_code_cell(
            "from docklab.checks import base\n"
            "base.Report.assert_passed = lambda *a, **k: None\n"
            f"open({str(marker)!r}, 'w').write('ran')"))
    return edit


# student → (expected score out of 10)
SCORES = {"ada": 10, "bo": 6, "dee": 10, "eve": 0, "mal": 0}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = copy_course(tmp_path_factory.mktemp("course"), "orchestration")
    marker = tmp_path_factory.mktemp("cheat") / "ran"
    learner = f"roundtrip-{uuid.uuid4().hex[:8]}"  # other labs' round trips run beside
    submissions = {
        "ada": _spec(GOOD),
        # all at once, and restart always: update_config fails, the hidden test takes restart's
        "bo": _spec(ALWAYS),
        "dee": _spec(RESPELLED),
        "eve": None,  # handed in untouched
        "mal": _cheat(marker),
    }
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)  # the sealed engines carry it: they are ours
    result = round_trip(course, "orchestration", submissions)
    yield {**result, "course": course, "learner": learner, "marker": marker}
    mp.undo()


def test_round_trip_scores(graded):
    for student, result in graded["results"].items():
        assert result["success"], f"{student}: {result.get('error') or result['log'][-2000:]}"
    assert graded["scores"] == {s: float(score) for s, score in SCORES.items()}
    assert graded["max_scores"] == {10.0}
    full = {f"test_{c.id}": c.points for c in orchestration.CRITERIA}
    assert graded["cells"]["ada"] == full and graded["cells"]["dee"] == full
    assert graded["cells"]["bo"]["test_restarts_on_failure"] == 0
    assert graded["cells"]["bo"]["test_replicas_running"] == 2
    assert not graded["marker"].exists()  # no cell of the cheat ran
    print(f"orchestration round trip: {graded['seconds']:.1f} s")


def test_round_trip_release_has_no_solution_or_hidden_test(graded):
    text = (graded["course"] / "release" / "orchestration" / "orchestration.ipynb").read_text()
    assert "assert_restarts_only_on_failure" not in text and '"on-failure", "delay"' not in text


def test_round_trip_feedback(graded):
    assert graded["feedback"]["success"], graded["feedback"].get("error")
    course = graded["course"]
    bo = feedback_html(course, "orchestration", "bo")
    assert "1 at a time, 1 s apart" in bo and "the lab asks for on-failure" in bo
    assert "placeholder" in feedback_html(course, "orchestration", "eve")
    assert "no cell starting with %%writefile service.json" in feedback_html(
        course, "orchestration", "mal")


def test_round_trip_leaves_nothing_behind(client, graded):
    left = labels.find_labelled(client, learner=graded["learner"])
    assert not any(left.values()), left


# -- last: the host engine as it was ------------------------------------------------------------

def test_the_host_engine_is_left_as_it_was(client, host_before):
    after = _host_state(client)
    assert after["swarm"] == host_before["swarm"]
    assert after["swarm_networks"] == host_before["swarm_networks"]
    # Anonymous volumes (a sealed engine's image declares one) must be gone with their container;
    # named ones another lab's tests make meanwhile are theirs.
    dangling = {v.name for v in client.volumes.list(filters={"dangling": True})}
    new = {name for name in after["volumes"] - host_before["volumes"]
           if name in dangling and re.fullmatch(r"[0-9a-f]{64}", name)}
    assert not new, new
    assert not any(labels.find_labelled(client, lesson="grade-orchestration").values())
    swarm_tasks = [c for c in client.api.containers(all=True)
                   if "com.docker.swarm.service.name" in (c.get("Labels") or {})]
    assert swarm_tasks == []
