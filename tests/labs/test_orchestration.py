"""The orchestration lab on the real engine: `docklab check orchestration` and the nbgrader round trip.

The right answer (the solution's service.json) passes every check on a one-node swarm; wrong ones
lose what they break: no restart on failure, updates all at once and no label, specs grading
refuses. The swarm is made only when the engine is in none and left again; the service and its
containers are removed, pass or fail.
"""

from __future__ import annotations

import json
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

# name → (service.json, the checks that must fail)
WRONG = {
    "no_restart": (NO_RESTART, {"restarts_on_failure"}),
    "all_at_once_unlabelled": (ALL_AT_ONCE, {"update_config", "labelled"}),
    "not_a_course_image": ({**GOOD, "image": "alpine"}, set(ALL)),
    "no_update_section": ({k: v for k, v in GOOD.items() if k != "update"}, set(ALL)),
    "not_json": ("{'image': 'busybox'}", set(ALL)),
}


def answer(folder: Path, spec) -> Path:
    folder.mkdir()
    (folder / "service.json").write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return folder


def _swarm_state(client) -> str:
    return client.info()["Swarm"]["LocalNodeState"]


def test_the_solution_passes_every_check(tmp_path, client):
    before = _swarm_state(client)
    result = run_docklab("check", "orchestration", str(answer(tmp_path / "good", GOOD)), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["lab"] == "orchestration" and report["score"] == report["max_score"] == 10
    assert [c["id"] for c in report["checks"]] == ALL
    assert _swarm_state(client) == before  # left again only if grading made it


@pytest.mark.parametrize("name", WRONG)
def test_a_wrong_answer_fails_exactly_the_checks_it_breaks(tmp_path, name):
    spec, failing = WRONG[name]
    report = orchestration.LAB.check(answer(tmp_path / name, spec))
    assert {c.id for c in report.checks if not c.passed} == failing, report.table()
    for check in report.checks:
        if not check.passed:
            assert check.feedback, check.id


def test_restart_any_passes_the_visible_check_but_not_the_hidden_test(tmp_path):
    folder = answer(tmp_path / "any", ALWAYS)
    report = orchestration.LAB.check(folder)
    assert report["restarts_on_failure"].passed and not report["update_config"].passed
    with pytest.raises(AssertionError, match="on-failure"):
        orchestration.assert_restarts_only_on_failure(folder)


def test_parse_spec_refuses_what_grading_cannot_run():
    assert orchestration.parse_spec(json.dumps(GOOD))[0]["new_env"] == ["VERSION=2"]
    for spec in ({**GOOD, "replicas": 50}, {**GOOD, "labels": {"org.docklab.managed": "x"}},
                 {**GOOD, "update_config": {"delay": 3600}}, {**GOOD, "mounts": ["/:/host"]}):
        parsed, why = orchestration.parse_spec(json.dumps(spec))
        assert parsed is None and why


def test_checks_leave_nothing_labelled_behind(client):
    left = labels.find_labelled(client, lesson="grade-orchestration")
    assert not any(left.values()), left
    swarm_services = [c for c in client.api.containers(all=True)
                      if "docklab-grade-" in (c.get("Labels") or {}).get(
                          "com.docker.swarm.service.name", "")]
    assert swarm_services == []


# -- the nbgrader round trip --------------------------------------------------------------------

def _spec(spec):
    text = spec if isinstance(spec, str) else json.dumps(spec, indent=2)
    return lambda notebook: set_cell(notebook, "service-json", "%%writefile service.json\n" + text)


# student → (edit, expected score out of 10)
STUDENTS = {
    "ada": (_spec(GOOD), 10),
    # all at once, and restart always: update_config fails, the hidden test takes restart's points
    "bo": (_spec(ALWAYS), 6),
    "cy": (_spec(WRONG["not_json"][0]), 0),
    "eve": (None, 0),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = copy_course(tmp_path_factory.mktemp("course"), "orchestration")
    learner = "roundtrip-" + tmp_path_factory.mktemp("id").name[-6:]
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)  # the kernels inherit it: their resources are ours
    result = round_trip(course, "orchestration", {s: e for s, (e, _) in STUDENTS.items()})
    yield {**result, "course": course, "learner": learner}
    mp.undo()


def test_round_trip_scores(graded):
    for student, result in graded["results"].items():
        assert result["success"], f"{student}: {result.get('error') or result['log'][-2000:]}"
    assert graded["scores"] == {s: float(score) for s, (_, score) in STUDENTS.items()}
    assert graded["max_scores"] == {10.0}
    assert graded["cells"]["bo"]["test_restarts_on_failure"] == 0
    assert graded["cells"]["ada"] == {f"test_{c.id}": c.points for c in orchestration.CRITERIA}
    print(f"orchestration round trip: {graded['seconds']:.1f} s")


def test_round_trip_release_has_no_solution_or_hidden_test(graded):
    text = (graded["course"] / "release" / "orchestration" / "orchestration.ipynb").read_text()
    assert "assert_restarts_only_on_failure" not in text and '"on-failure", "delay"' not in text


def test_round_trip_feedback(graded):
    assert graded["feedback"]["success"], graded["feedback"].get("error")
    course = graded["course"]
    assert "1 at a time, 1 s apart" in feedback_html(course, "orchestration", "bo")
    assert "not valid JSON" in feedback_html(course, "orchestration", "cy")
    assert "placeholder" in feedback_html(course, "orchestration", "eve")


def test_round_trip_leaves_nothing_behind(client, graded):
    left = labels.find_labelled(client, learner=graded["learner"])
    assert not any(left.values()), left
