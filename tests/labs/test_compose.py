"""The compose lab on the real engine: `docklab check compose` on right and wrong compose files,
run for real with the Compose v2 binary, and its nbgrader round trip.

Wrong files are the mistakes 05-compose warns about (a version: key, db on the frontend too, no
networks at all, an anonymous volume, a volume not declared, app off the backend, redis saving
outside its volume) and files grading must not run (a bind mount, privileged, not YAML). Each gets
a score and feedback; every project is taken down and nothing labelled is left behind.

The round trip is `nbgrader autograde` with the sealed judge: `docker compose` runs in a container
of docklab/compose inside a sealed engine of its own. A file that interpolates ${HOME}, ${PATH} and
a secret of the grading process, or asks for it with `environment: [NAME]`, gets none of the
host's values into any container; `env_file: /proc/self/environ` is not run; cheats score 0.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from docklab import labels
from docklab.checks import compose
from tests.conftest import run_docklab
from tests.labs.roundtrip import copy_course, feedback_html, round_trip, sealed_report, set_cell

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
ALL = [c.id for c in compose.CRITERIA]
GOOD = """services:
  app:
    image: busybox
    command: ["sleep", "infinity"]
    networks: [frontend, backend]
    depends_on: [db]
  db:
    image: redis
    networks: [backend]
    volumes:
      - db-data:/data

networks:
  frontend:
  backend:

volumes:
  db-data:
"""
RUNTIME = {"db_backend_only", "app_reaches_db", "frontend_isolated", "named_volume"}


def edit(old: str, new: str, text: str = GOOD) -> str:
    assert old in text, old
    return text.replace(old, new)


#: The same project in other words: long syntax, tags with :latest, a command as a string.
OTHER_SPELLING = """name: my-shop
services:
  db:
    image: redis:latest
    networks:
      backend: {}
    volumes:
      - type: volume
        source: redis-store
        target: /data
  app:
    image: busybox:latest
    command: sleep infinity
    depends_on:
      db:
        condition: service_started
    networks:
      frontend:
      backend:
networks:
  frontend: {driver: bridge}
  backend: {driver: bridge}
volumes:
  redis-store: {}
"""

NO_VOLUME = edit("    volumes:\n      - db-data:/data\n", "").replace(
    "\nvolumes:\n  db-data:\n", "")

# name → (compose file, or None for none; checks that fail; words in the first one's feedback)
ANSWERS = {
    "good": (GOOD, set(), ""),
    "version_key": ('version: "3.8"\n' + GOOD, {"no_version_key"}, "Delete the line"),
    "db_on_both_networks": (edit("networks: [backend]", "networks: [frontend, backend]"),
                            {"db_backend_only", "frontend_isolated"}, "backend only"),
    "no_networks": (edit("    networks: [frontend, backend]\n", "").replace(
        "    networks: [backend]\n", "").replace("networks:\n  frontend:\n  backend:\n", ""),
        {"db_backend_only", "frontend_isolated"}, "db is on default"),
    "anonymous_volume": (NO_VOLUME, {"named_volume"}, "anonymous volume"),
    "app_off_the_backend": (edit("networks: [frontend, backend]", "networks: [frontend]"),
                            {"db_backend_only", "app_reaches_db"}, "joins both"),
    "other_spelling": (OTHER_SPELLING, set(), ""),
    "redis_saves_elsewhere": (edit("    image: redis\n",
                                   '    image: redis\n    command: ["redis-server", "--dir", '
                                   '"/tmp"]\n'), set(), ""),
    "undeclared_volume": (GOOD.replace("\nvolumes:\n  db-data:\n", ""),
                          {"compose_valid", *RUNTIME}, "undefined volume"),
    "bind_mount": (edit("db-data:/data", "/etc:/data"), {"compose_valid", *RUNTIME},
                   "never mounts host folders"),
    "privileged": (edit("    image: redis\n", "    image: redis\n    privileged: true\n"),
                   {"compose_valid", *RUNTIME}, "privileged"),
    "not_yaml": ("services: [app\n", set(ALL), "not valid YAML"),
    "no_file": (None, set(ALL), "no compose.yaml"),
}


@pytest.fixture(scope="module")
def reports(client, tmp_path_factory):
    learner = f"test-compose-{uuid.uuid4().hex[:8]}"
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)
    root = tmp_path_factory.mktemp("answers")
    folders = {}
    for name, (text, _, _) in ANSWERS.items():
        folders[name] = root / name
        folders[name].mkdir()
        if text is not None:
            (folders[name] / "compose.yaml").write_text(text)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(compose.LAB.check, folder)
                   for name, folder in folders.items()}
        graded = {name: future.result() for name, future in futures.items()}
    seconds = time.monotonic() - started
    left = labels.find_labelled(client, learner=learner)
    mp.undo()
    assert not any(left.values()), f"left behind: {left}"
    projects = client.containers.list(all=True, filters={"label": "com.docker.compose.project"})
    run_ids = {r.details["run_id"] for r in graded.values()}
    assert not [c for c in projects if any(i in c.name for i in run_ids)]
    return {"reports": graded, "seconds": seconds, "folders": folders}


def failing(report) -> set[str]:
    return {check.id for check in report.checks if not check.passed}


@pytest.mark.parametrize("name", [n for n, (_, bad, _) in ANSWERS.items() if not bad])
def test_right_files_pass_every_visible_check(reports, name):
    report = reports["reports"][name]
    assert failing(report) == set(), report.table()
    assert report.score == report.max_score == 9


@pytest.mark.parametrize("name", [n for n, (_, bad, _) in ANSWERS.items() if bad])
def test_wrong_files_fail_exactly_the_checks_they_break(reports, name):
    _, expected, words = ANSWERS[name]
    report = reports["reports"][name]
    assert failing(report) == expected, report.table()
    first = next(check for check in report.checks if check.id in expected)
    assert words in first.feedback, report.table()
    if not first.feedback.startswith("Not judged"):
        assert "Lesson 05-compose" in first.feedback
    assert report.score == report.max_score - sum(report[i].points for i in expected)


def test_data_that_redis_saves_outside_its_volume_fails_the_hidden_test(reports):
    assert reports["reports"]["good"].details["data_survives"] is True
    compose.assert_data_survives_down_and_up(reports["folders"]["good"])
    with pytest.raises(AssertionError, match="down keeps named volumes"):
        compose.assert_data_survives_down_and_up(reports["folders"]["redis_saves_elsewhere"])


def test_docklab_check_cli_on_a_folder_and_notebooks(reports, learner_env, client):
    good = run_docklab("check", "compose", str(reports["folders"]["good"]), "--json")
    assert good.returncode == 0, good.stdout + good.stderr
    data = json.loads(good.stdout)
    assert (data["lab"], data["score"], data["max_score"]) == ("compose", 9, 9)
    assert [c["id"] for c in data["checks"]] == ALL
    solved = run_docklab("check", "compose",
                         str(ROOT / "solutions" / "compose" / "compose.ipynb"), "--json")
    assert solved.returncode == 0, solved.stdout + solved.stderr
    assert json.loads(solved.stdout)["score"] == 9
    untouched = run_docklab("check", "compose", str(ROOT / "labs" / "compose" / "compose.ipynb"))
    assert untouched.returncode == 1 and "Traceback" not in untouched.stderr
    assert "compose: 0/9 points" in untouched.stdout and "placeholder" in untouched.stdout
    left = labels.find_labelled(client, learner=learner_env)
    assert not any(left.values()), left


# -- the nbgrader round trip ------------------------------------------------------------------

def _submission(text: str):
    def write(notebook) -> None:
        set_cell(notebook, "compose-file", "%%writefile compose.yaml\n" + text)
    return write


SECRET_NAME = f"DOCKLAB_HOST_SECRET_{uuid.uuid4().hex[:8].upper()}"
SECRET_VALUE = f"s3cret-{uuid.uuid4().hex}"
#: Put on the grading process's PATH while grading: it must not show up in any container.
PATH_MARK = f"/nowhere-{uuid.uuid4().hex[:8]}"
#: Asks for the grading process's environment, by interpolation and by name; otherwise right.
HOST_VARIABLES = edit('    command: ["sleep", "infinity"]\n', f"""    command: ["sleep", "infinity"]
    environment:
      - WHERE=${{HOME}}:${{PATH}}
      - SECRET_TOO=${{{SECRET_NAME}}}
      - {SECRET_NAME}
""")
#: The grading process's whole environment as an env file.
ENV_FILE = edit('    command: ["sleep", "infinity"]\n',
                '    command: ["sleep", "infinity"]\n    env_file: /proc/self/environ\n')
CHEAT_OBJECT = 'compose = type("M", (), {"__getattr__": lambda s, n: lambda *a, **k: s})()'


def _patch_the_checks(notebook) -> None:
    """Hands in the placeholder, plus a cell that makes every graded test pass when executed."""
    import nbformat

    notebook.cells.insert(4, nbformat.v4.new_code_cell(
        "from docklab.checks import base\nbase.Report.assert_passed = lambda *a, **k: None\n"))


# student → (submission, expected score out of 9)
STUDENTS = {
    "ada": (_submission(GOOD), 9),
    # the same project spelled otherwise
    "flo": (_submission(OTHER_SPELLING), 9),
    # asks for the host's environment: gets the compose container's, and is otherwise right
    "gus": (_submission(HOST_VARIABLES), 9),
    # env_file is not run (compose_valid says so); no version: key
    "hal": (_submission(ENV_FILE), 1),
    # cheats: an answer cell that answers everything; a cell that patches the checks
    "ivy": (lambda notebook: set_cell(notebook, "compose-file", CHEAT_OBJECT), 0),
    "jo": (_patch_the_checks, 0),
    # a version: key and db on both networks
    "bo": (_submission('version: "3.8"\n' + ANSWERS["db_on_both_networks"][0]), 5),
    # redis saves in /tmp: the visible checks pass, the hidden down/up test takes named_volume
    "cy": (_submission(ANSWERS["redis_saves_elsewhere"][0]), 7),
    # a volume used but never declared: docker compose refuses the file
    "di": (_submission(ANSWERS["undeclared_volume"][0]), 1),
    "eve": (None, 0),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    learner = f"roundtrip-cmp-{uuid.uuid4().hex[:8]}"
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)  # the kernels inherit it: their resources are ours
    mp.setenv(SECRET_NAME, SECRET_VALUE)
    mp.setenv("PATH", f"{PATH_MARK}:{os.environ['PATH']}")
    course = copy_course(tmp_path_factory.mktemp("course"), "compose")
    result = round_trip(course, "compose", {s: edit for s, (edit, _) in STUDENTS.items()})
    mp.undo()
    result.update(course=course, learner=learner)
    return result


def test_round_trip_release_hides_the_hidden_tests(graded):
    text = (graded["course"] / "release" / "compose" / "compose.ipynb").read_text()
    assert "HIDDEN" not in text and "assert_data_survives_down_and_up" not in text


def test_round_trip_autogrades_to_the_expected_scores(graded):
    for student, result in graded["results"].items():
        assert result["success"], f"{student}: {result['log'][-3000:]}"
    assert graded["scores"] == {s: float(score) for s, (_, score) in STUDENTS.items()}
    assert graded["max_scores"] == {9.0}
    assert graded["cells"]["ada"] == {f"test_{c.id}": c.points for c in compose.CRITERIA}
    assert graded["cells"]["cy"]["test_named_volume"] == 0
    print(f"compose round trip ({len(STUDENTS)} students): {graded['seconds']:.1f} s")


def _report(graded, student: str):
    return sealed_report(graded, "compose", student)


def test_round_trip_judged_in_a_sealed_engine(graded):
    report = _report(graded, "ada")
    assert report.details["sealed"]["engine_start_seconds"] > 0
    assert report.details["data_survives"] is True


def test_round_trip_no_host_value_reaches_a_container(graded):
    report = _report(graded, "gus")
    environments = report.details["container_env"]
    assert set(environments) == {"app", "db"}
    everything = "\n".join(line for lines in environments.values() for line in lines)
    assert SECRET_VALUE not in everything and PATH_MARK not in everything
    where = next(line for line in environments["app"] if line.startswith("WHERE="))
    home, _, path = where.removeprefix("WHERE=").partition(":")
    assert home == "/tmp" and os.environ["HOME"] not in where  # the compose container's HOME
    assert path and "/nowhere-" not in path
    assert "SECRET_TOO=" in everything and f"SECRET_TOO={SECRET_VALUE}" not in everything
    assert f"{SECRET_NAME}=" not in everything  # unset where compose ran: not passed on
    refused = _report(graded, "hal")
    assert "env_file" in refused["compose_valid"].feedback
    assert "container_env" not in refused.details  # nothing of that file was run


def test_round_trip_feedback_says_what_to_fix(graded):
    assert graded["feedback"]["success"], graded["feedback"].get("error")
    html = {s: feedback_html(graded["course"], "compose", s) for s in STUDENTS}
    assert "Delete the line" in html["bo"] and "backend only" in html["bo"]
    assert "down keeps named volumes" in html["cy"]
    assert "undefined volume" in html["di"]
    assert "placeholder" in html["eve"]
    assert SECRET_VALUE not in html["gus"] and SECRET_VALUE not in html["hal"]


def test_round_trip_leaves_nothing_labelled_behind(client, graded):
    left = labels.find_labelled(client, learner=graded["learner"])
    assert not any(left.values()), left
