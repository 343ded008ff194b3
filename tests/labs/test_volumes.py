"""The volumes lab on the real engine: `docklab check volumes` on right and wrong run
configurations, and the students of its nbgrader round trip (tests/labs/test_round_trips.py runs it
from CASE), where every submission is judged on a sealed engine of its own (no cell of it runs).

Wrong answers are the ways the lesson warns about: no volume (the image's VOLUME makes an anonymous
one per container), an anonymous volume, a bind mount, a read-only volume, a volume on a folder
below /data, plus broken and hostile configurations. Each gets a score and feedback, grading never
mounts a host folder, and nothing labelled (containers, volumes, images) is left behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docklab.checks import volumes
from tests.labs.answers import answer_folder, hands_in
from tests.labs.asserts import assert_fails_exactly, assert_fails_saying, check_each
from tests.labs.harness import Cheat, LabCase

pytestmark = pytest.mark.engine

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


def _folder(folder: Path, name: str) -> Path:
    """The folder `docklab check volumes` grades, holding the answer ``name``."""
    run = ANSWERS[name][0]
    return answer_folder(folder, "volumes", {"run.json": None if run is None else json.dumps(run)})


@pytest.fixture(scope="module")
def reports(client, tmp_path_factory):
    """Every answer graded once, three side by side; nothing labelled may be left behind, and
    no volume of grading's own either."""
    root = tmp_path_factory.mktemp("answers")
    folders = {name: _folder(root / name, name) for name in ANSWERS}
    graded, _ = check_each(client, "volumes", folders)
    # Grading names its volumes docklab-grade-<run id>-<name>; other labs' tests grade beside
    # these, so only these runs' ids count.
    run_ids = {report.details["run_id"] for report in graded.values()}
    left = [v.name for v in client.volumes.list()
            if v.name.startswith("docklab-grade-") and any(i in v.name for i in run_ids)]
    assert not left, left
    return {"reports": graded, "folders": folders}


@pytest.mark.parametrize("name", ["good", "good_mount_syntax", "good_sdk_dict"])
def test_right_configurations_pass_every_check(reports, name):
    report = reports["reports"][name]
    assert_fails_exactly(report, set())
    assert report.score == report.max_score == 7
    assert [g["starts"] for g in report.details["generations"]] == [1, 2]


@pytest.mark.parametrize("name", [n for n, (_, bad, _) in ANSWERS.items() if bad])
def test_wrong_configurations_fail_exactly_the_checks_they_break(reports, name):
    _, expected, words = ANSWERS[name]
    assert_fails_saying(reports["reports"][name], expected, words, "03-volumes")


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


# -- the nbgrader round trip (tests/labs/test_round_trips.py) -----------------------------------

def _submission(run: dict):
    return hands_in({"run": f"RUN = {run!r}\n"})


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
    "mal": (Cheat("volumes", "run"), 0),
    # --mount instead of -v, in its short spelling (src, dst), and a tagged image name
    "odo": (_submission({"image": "notes:latest", "name": "notes",
                         "mounts": ["type=volume,src=notes-data,dst=/data"]}), 7),
}

CASE = LabCase(
    "volumes", max_score=7, students=STUDENTS,
    right_answer=lambda folder: _folder(folder, "good"),
    not_released=("HIDDEN", "assert_all_data_kept"), release_files=("notes.sh", "app.Dockerfile"),
    cells={"cy": {"test_data_survives": 0}},
    feedback={"bo": ("anonymous volume",), "cy": ("start counter",), "di": ("read-only",),
              "eve": ("still holds the placeholder",), "mal": ("no cell that sets RUN",)},
    untouched_words=("RUN",),
)
