"""The volumes lab on the real engine: `docklab check volumes` on right and wrong scripts of docker
commands (run.sh), and the students of its nbgrader round trip (tests/labs/test_round_trips.py runs
it from CASE), where every submission is judged on a sealed engine of its own (no cell of it runs;
the script's commands run with the docker CLI of docklab/docker-cli inside that engine).

Wrong answers are the ways the lesson warns about: no volume (the image's VOLUME makes an anonymous
one per container), an anonymous volume, a bind mount, a read-only volume, a volume on a folder
below /data, a tmpfs, another image. Hostile scripts are refused before anything runs (shell
syntax: `;`, `$(...)`, backquotes; `docker -H`; a program that is not docker; a docker command the
lab does not take; an option the CLI does not know), or run with what grading does not run left
out (`--privileged`, `--pid host`, `-v /:/host`, a volume driver's bind options,
`--use-api-socket`). Each gets a score and feedback naming its line, no shell ever runs the script,
a host folder is never mounted, and nothing labelled (containers, volumes, images) is left behind.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from docklab.checks import volumes
from tests.labs.answers import answer_folder, hands_in, writefile
from tests.labs.asserts import assert_fails_exactly, assert_fails_saying, check_each
from tests.labs.harness import Cheat, LabCase

pytestmark = pytest.mark.engine

ALL = [c.id for c in volumes.CRITERIA]
RUNTIME = {"named_volume", "data_survives", "volume_outlives_containers"}
GOOD = "docker volume create notes-data\ndocker run -d --name notes -v notes-data:/data notes\n"
#: The same, with a shebang, comments, continuations and long options.
CONTINUED = """#!/bin/sh
# the notes app, its data in a named volume

docker volume create notes-data
docker container run \\
  --detach \\
  --name=notes \\
  --volume notes-data:/data \\
  notes:latest
"""
#: What a shell would create if it ran a hostile script: it must never exist.
MARKER = Path(f"/tmp/docklab-volumes-script-ran-{uuid.uuid4().hex[:8]}")


def run(options: str, image: str = "notes", before: str = "") -> str:
    """A script: ``before``, then ``docker run -d --name notes OPTIONS IMAGE``."""
    return " ".join(f"{before}docker run -d --name notes {options} {image}".split(" ")) + "\n"


# name → (run.sh, or None for none; checks that fail; words in the feedback of the first
#         failing one)
ANSWERS = {
    "good": (GOOD, set(), ""),
    "good_mount_syntax": (run("--mount type=volume,source=notes-data,target=/data"), set(), ""),
    "good_continued": (CONTINUED, set(), ""),
    "nothing_mounted": (run(""), {"config_valid", *RUNTIME}, "mounts nothing"),
    "anonymous": (run("-v /data"), RUNTIME, "anonymous volume"),
    "bind_mount": (run("-v /etc:/data"), {"config_valid", *RUNTIME}, "bind mount"),
    "read_only": (run("-v notes-data:/data:ro"), {"data_survives", "volume_outlives_containers"},
                  "read-only"),
    "below_data": (run("-v notes-data:/data/notes"), set(), ""),
    "tmpfs": (run("--tmpfs /data"), RUNTIME, "tmpfs"),
    "wrong_image": (run("-v notes-data:/data", "busybox"), set(ALL),
                    "no docker run of the lab's app"),
    "hostile_name": (run("-v '../../x:/data' -v 'a b:/data'"), {"config_valid", *RUNTIME},
                     "bind mount"),
    "no_run_sh": (None, set(ALL), "%%writefile run.sh"),
    # refused: nothing of the script runs
    "semicolon": (f"docker volume create notes-data; touch {MARKER}\n" + run("-v notes-data:/data"),
                  set(ALL), "`;` is shell syntax"),
    "substitution": (run(f"-v notes-data:/data -e X=$(touch {MARKER})"), set(ALL),
                     "`$` is shell syntax"),
    "backquotes": (run(f"-v notes-data:/data -e X=`touch {MARKER}`"), set(ALL), "shell syntax"),
    "other_engine": ("docker -H tcp://127.0.0.1:2375 volume create notes-data\n"
                     + run("-v notes-data:/data"), set(ALL), "`-H` comes before the command"),
    "not_docker": (f"touch {MARKER}\n" + GOOD, set(ALL), "`touch` is not docker"),
    "other_command": ("docker rm -f notes\n" + GOOD, set(ALL), "`docker rm -f` is not one of"),
    "unknown_option": (run("--frobnicate -v notes-data:/data"), set(ALL),
                       "not an option of this docker command"),
    # run, with what grading does not run left out
    "privileged": (run("--privileged --pid host -v notes-data:/data"), {"config_valid"},
                   "`--privileged` is left out"),
    "host_root": (run("-v /:/host -v notes-data:/data"), {"config_valid"}, "`-v /:/host`"),
    "driver_bind": ("docker volume create -o type=none -o o=bind -o device=/etc notes-data\n"
                    + run("-v notes-data:/data"), {"config_valid"}, "`--opt` is left out"),
    "api_socket": (run("--use-api-socket -v notes-data:/data"), {"config_valid"},
                   "`--use-api-socket` is left out"),
}


def _folder(folder: Path, name: str) -> Path:
    """The folder `docklab check volumes` grades, holding the answer ``name``."""
    return answer_folder(folder, "volumes", {"run.sh": ANSWERS[name][0]})


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


@pytest.mark.parametrize("name", ["good", "good_mount_syntax", "good_continued"])
def test_right_scripts_pass_every_check(reports, name):
    report = reports["reports"][name]
    assert_fails_exactly(report, set())
    assert report.score == report.max_score == 7
    assert [g["starts"] for g in report.details["generations"]] == [1, 2]


@pytest.mark.parametrize("name", [n for n, (_, bad, _) in ANSWERS.items() if bad])
def test_wrong_scripts_fail_exactly_the_checks_they_break(reports, name):
    _, expected, words = ANSWERS[name]
    assert_fails_saying(reports["reports"][name], expected, words, "03-volumes")


def test_no_shell_ever_runs_a_script(reports):
    assert not MARKER.exists()
    for name in ("semicolon", "substitution", "backquotes", "other_engine", "not_docker",
                 "other_command", "unknown_option"):
        report = reports["reports"][name]
        assert "was not run, none of it" in report["config_valid"].feedback, name
        assert "generations" not in report.details, name


def test_what_grading_does_not_run_is_left_out_and_named(reports):
    feedback = reports["reports"]["privileged"]["config_valid"].feedback
    assert "`--pid` is left out" in feedback
    for generation in reports["reports"]["host_root"].details["generations"]:
        assert generation["data_mount"]["Type"] == "volume"
        assert generation["commands"][-1]["status"] == 0


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

def _submission(script: str):
    return hands_in({"run": writefile("run.sh", script)})


# student → (submission, expected score out of 7)
STUDENTS = {
    "ada": (_submission(GOOD), 7),
    # an anonymous volume: only config_valid
    "bo": (_submission(run("-v /data")), 1),
    # a named volume below /data: the visible checks pass, the hidden test (the start counter
    # is lost) takes data_survives' 3 points
    "cy": (_submission(run("-v notes-data:/data/notes")), 4),
    # read-only: named, but the app cannot write
    "di": (_submission(run("-v notes-data:/data:ro")), 3),
    "eve": (None, 0),
    "mal": (Cheat("volumes", "run"), 0),
    # --mount instead of -v, in its short spelling (src, dst), and a tagged image name
    "odo": (_submission(run("--mount type=volume,src=notes-data,dst=/data", "notes:latest")), 7),
    # a shell's second command: nothing runs
    "sam": (_submission(f"docker volume create notes-data && touch {MARKER}\n"
                        + run("-v notes-data:/data")), 0),
    # privileges and the host's root: left out, named, the rest judged
    "pat": (_submission(run("--privileged -v /:/host -v notes-data:/data")), 6),
}

CASE = LabCase(
    "volumes", max_score=7, students=STUDENTS,
    right_answer=lambda folder: _folder(folder, "good"),
    not_released=("HIDDEN", "assert_all_data_kept", "notes-data:/data notes"),
    release_files=("notes.sh", "app.Dockerfile"),
    cells={"cy": {"test_data_survives": 0}, "pat": {"test_config_valid": 0}},
    feedback={"bo": ("anonymous volume",), "cy": ("start counter",), "di": ("read-only",),
              "eve": ("still holds the placeholder",), "mal": ("%%writefile run.sh",),
              "sam": ("`&` is shell syntax",), "pat": ("`--privileged` is left out", "/:/host")},
    untouched_words=("run.sh",),
)
