"""The volumes lab on the real engine: `docklab check volumes` on right and wrong run
configurations, and its nbgrader round trip, where every submission is judged on a sealed engine
of its own (no cell of it runs).

Wrong answers are the ways the lesson warns about: no volume (the image's VOLUME makes an anonymous
one per container), an anonymous volume, a bind mount, a read-only volume, a volume on a folder
below /data, plus broken and hostile configurations. Each gets a score and feedback, grading never
mounts a host folder, and nothing labelled (containers, volumes, images) is left behind.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from docklab import labels
from docklab.checks import volumes
from tests.conftest import run_docklab
from tests.labs.roundtrip import Cheat, copy_course, feedback_html, round_trip, set_cell

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
ALL = [c.id for c in volumes.CRITERIA]
RUNTIME = {"named_volume", "data_survives", "volume_outlives_containers"}


def cfg(**extra) -> dict:
    return {"image": "notes", "name": "notes", **extra}


# name → (run configuration, or None for no run.json; checks that fail; words in the feedback
#         of the first failing one)
ANSWERS = {
    "good": (cfg(volumes=["notes-data:/data"]), set(), ""),
    "good_mount_syntax": (cfg(mounts=["type=volume,source=notes-data,target=/data"]), set(), ""),
    "good_sdk_dict": (cfg(volumes={"notes-data": {"bind": "/data", "mode": "rw"}}), set(), ""),
    "nothing_mounted": (cfg(), {"config_valid", *RUNTIME}, "mounts nothing"),
    "anonymous": (cfg(volumes=["/data"]), RUNTIME, "anonymous volume"),
    "bind_mount": (cfg(volumes=["/etc:/data"]), RUNTIME, "bind mount"),
    "read_only": (cfg(volumes=["notes-data:/data:ro"]),
                  {"data_survives", "volume_outlives_containers"}, "read-only"),
    "below_data": (cfg(volumes=["notes-data:/data/notes"]), set(), ""),
    "tmpfs": (cfg(mounts=[{"type": "tmpfs", "target": "/data"}]), RUNTIME, "tmpfs"),
    "wrong_image": ({"image": "busybox", "volumes": ["notes-data:/data"]}, {"config_valid"},
                    "the lab's app"),
    "hostile_name": (cfg(volumes=["../../x:/data", "a b:/data"]), {"config_valid", *RUNTIME},
                     "not a valid volume name"),
    "not_a_dict": (["notes-data:/data"], {"config_valid", *RUNTIME}, "should be a dict"),
    "no_run_json": (None, set(ALL), "record_run"),
}


@pytest.fixture(scope="module")
def reports(client, tmp_path_factory):
    """Every answer graded once, three side by side; nothing labelled may be left behind."""
    learner = "test-volumes-" + tmp_path_factory.mktemp("id").name[-6:]
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)
    root = tmp_path_factory.mktemp("answers")
    folders = {}
    for name, (run, _, _) in ANSWERS.items():
        folders[name] = root / name
        folders[name].mkdir()
        if run is not None:
            (folders[name] / "run.json").write_text(json.dumps(run))
    volumes_before = {v.name for v in client.volumes.list()}
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(volumes.LAB.check, folder)
                   for name, folder in folders.items()}
        graded = {name: future.result() for name, future in futures.items()}
    seconds = time.monotonic() - started
    left = labels.find_labelled(client, learner=learner)
    mp.undo()
    assert not any(left.values()), f"left behind: {left}"
    new_volumes = {v.name for v in client.volumes.list()} - volumes_before
    assert not [v for v in new_volumes if v.startswith("docklab-grade-")], new_volumes
    return {"reports": graded, "seconds": seconds, "folders": folders}


def failing(report) -> set[str]:
    return {check.id for check in report.checks if not check.passed}


@pytest.mark.parametrize("name", ["good", "good_mount_syntax", "good_sdk_dict"])
def test_right_configurations_pass_every_check(reports, name):
    report = reports["reports"][name]
    assert failing(report) == set(), report.table()
    assert report.score == report.max_score == 7
    assert [g["starts"] for g in report.details["generations"]] == [1, 2]


@pytest.mark.parametrize("name", [n for n, (_, bad, _) in ANSWERS.items() if bad])
def test_wrong_configurations_fail_exactly_the_checks_they_break(reports, name):
    _, expected, words = ANSWERS[name]
    report = reports["reports"][name]
    assert failing(report) == expected, report.table()
    first = next(check for check in report.checks if check.id in expected)
    assert words in first.feedback, report.table()
    if first.judged:
        assert "Lesson 03-volumes" in first.feedback
    else:
        assert first.feedback.startswith("Not judged")
    assert report.score == report.max_score - sum(report[i].points for i in expected)


def test_a_volume_below_data_passes_the_visible_checks_but_not_the_hidden_test(reports):
    report = reports["reports"]["below_data"]
    assert report.all_passed, report.table()
    assert [g["starts"] for g in report.details["generations"]] == [1, 1]
    with pytest.raises(AssertionError, match="not on a folder below it"):
        volumes.assert_all_data_kept(reports["folders"]["below_data"])
    volumes.assert_all_data_kept(reports["folders"]["good"])


def test_a_bind_mount_is_never_mounted(reports):
    for generation in reports["reports"]["bind_mount"].details["generations"]:
        assert generation["data_mount"]["Type"] == "volume"  # the image's anonymous VOLUME


def test_docklab_check_cli_on_a_folder_and_notebooks(reports, learner_env, client):
    good = run_docklab("check", "volumes", str(reports["folders"]["good"]), "--json")
    assert good.returncode == 0, good.stdout + good.stderr
    data = json.loads(good.stdout)
    assert (data["lab"], data["score"], data["max_score"]) == ("volumes", 7, 7)
    assert [c["id"] for c in data["checks"]] == ALL
    solved = run_docklab("check", "volumes",
                         str(ROOT / "solutions" / "volumes" / "volumes.ipynb"), "--json")
    assert solved.returncode == 0, solved.stdout + solved.stderr
    assert json.loads(solved.stdout)["score"] == 7
    untouched = run_docklab("check", "volumes", str(ROOT / "labs" / "volumes" / "volumes.ipynb"))
    assert untouched.returncode == 1 and "Traceback" not in untouched.stderr
    assert "volumes: 0/7 points" in untouched.stdout and "RUN" in untouched.stdout
    left = labels.find_labelled(client, learner=learner_env)
    assert not any(left.values()), left


# -- the nbgrader round trip ------------------------------------------------------------------

def _submission(run: dict):
    def write(notebook) -> None:
        set_cell(notebook, "run", f"RUN = {run!r}\n")
    return write


# A cheat: a rebound checks module, and an added cell patching the report and writing on the host.
CHEAT = Cheat("volumes", "run")


# student → (submission, expected score out of 7)
STUDENTS = {
    "ada": (_submission(cfg(volumes=["notes-data:/data"])), 7),
    # an anonymous volume: only config_valid
    "bo": (_submission(cfg(volumes=["/data"])), 1),
    # a named volume below /data: the visible checks pass, the hidden test (the start counter
    # is lost) takes data_survives' 3 points
    "cy": (_submission(cfg(volumes=["notes-data:/data/notes"])), 4),
    # read-only: named, but the app cannot write
    "di": (_submission(cfg(volumes=["notes-data:/data:ro"])), 3),
    "eve": (None, 0),
    "mal": (CHEAT, 0),
    # --mount instead of -v, in its short spelling (src, dst), and a tagged image name
    "odo": (_submission({"image": "notes:latest", "name": "notes",
                         "mounts": ["type=volume,src=notes-data,dst=/data"]}), 7),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    learner = "roundtrip-vol-" + tmp_path_factory.mktemp("id").name[-6:]
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)  # the sealed engines carry it: their resources are ours
    course = copy_course(tmp_path_factory.mktemp("course"), "volumes")
    result = round_trip(course, "volumes", {s: edit for s, (edit, _) in STUDENTS.items()})
    mp.undo()
    result.update(course=course, learner=learner)
    return result


def test_round_trip_release_hides_the_hidden_tests(graded):
    text = (graded["course"] / "release" / "volumes" / "volumes.ipynb").read_text()
    assert "HIDDEN" not in text and "assert_all_data_kept" not in text
    for name in ("notes.sh", "app.Dockerfile"):
        assert (graded["course"] / "release" / "volumes" / name).is_file()


def test_round_trip_autogrades_to_the_expected_scores(graded):
    for student, result in graded["results"].items():
        assert result["success"], f"{student}: {result.get('error') or result['log'][-2000:]}"
    assert graded["scores"] == {s: float(score) for s, (_, score) in STUDENTS.items()}
    assert graded["max_scores"] == {7.0}
    assert graded["cells"]["ada"] == {f"test_{c.id}": c.points for c in volumes.CRITERIA}
    assert graded["cells"]["cy"]["test_data_survives"] == 0
    assert graded["cells"]["odo"] == graded["cells"]["ada"]


def test_round_trip_runs_no_cell_of_a_submission(graded):
    CHEAT.assert_came_to_nothing(graded, "mal")


def test_round_trip_feedback_says_what_to_fix(graded):
    assert graded["feedback"]["success"], graded["feedback"].get("error")
    html = {s: feedback_html(graded["course"], "volumes", s) for s in STUDENTS}
    assert "anonymous volume" in html["bo"]
    assert "start counter" in html["cy"]
    assert "read-only" in html["di"]
    assert "still holds the placeholder" in html["eve"]
    assert "no cell that sets RUN" in html["mal"]


def test_round_trip_leaves_nothing_labelled_behind(client, graded):
    left = labels.find_labelled(client, learner=graded["learner"])
    assert not any(left.values()), left
