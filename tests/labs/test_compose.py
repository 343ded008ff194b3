"""The compose lab on the real engine: `docklab check compose` on right and wrong compose files,
run for real with the Compose v2 binary, and the students of its nbgrader round trip
(tests/labs/test_round_trips.py runs it from CASE).

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

import os
import uuid
from pathlib import Path

import pytest

from docklab.checks import compose
from tests.labs.answers import answer_folder, hands_in, replaced, writefile
from tests.labs.asserts import assert_fails_exactly, assert_fails_saying, check_each
from tests.labs.harness import Cheat, LabCase

pytestmark = pytest.mark.engine

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
    return replaced(text, old, new)


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


def _folder(folder: Path, name: str) -> Path:
    """The folder `docklab check compose` grades, holding the answer ``name``."""
    return answer_folder(folder, "compose", {"compose.yaml": ANSWERS[name][0]})


@pytest.fixture(scope="module")
def reports(client, tmp_path_factory):
    """Every answer graded once, three side by side; nothing labelled may be left behind, and
    no container of a project grading started either."""
    root = tmp_path_factory.mktemp("answers")
    folders = {name: _folder(root / name, name) for name in ANSWERS}
    graded, _ = check_each(client, "compose", folders)
    projects = client.containers.list(all=True, filters={"label": "com.docker.compose.project"},
                                      ignore_removed=True)
    run_ids = {r.details["run_id"] for r in graded.values()}
    assert not [c for c in projects if any(i in c.name for i in run_ids)]
    return {"reports": graded, "folders": folders}


@pytest.mark.parametrize("name", [n for n, (_, bad, _) in ANSWERS.items() if not bad])
def test_right_files_pass_every_visible_check(reports, name):
    report = reports["reports"][name]
    assert_fails_exactly(report, set())
    assert report.score == report.max_score == 9


@pytest.mark.parametrize("name", [n for n, (_, bad, _) in ANSWERS.items() if bad])
def test_wrong_files_fail_exactly_the_checks_they_break(reports, name):
    _, expected, words = ANSWERS[name]
    assert_fails_saying(reports["reports"][name], expected, words, "05-compose")


def test_data_that_redis_saves_outside_its_volume_fails_the_hidden_test(reports):
    assert reports["reports"]["good"].details["data_survives"] is True
    compose.assert_data_survives_down_and_up(reports["folders"]["good"])
    with pytest.raises(AssertionError, match="down keeps named volumes"):
        compose.assert_data_survives_down_and_up(reports["folders"]["redis_saves_elsewhere"])


# -- the nbgrader round trip (tests/labs/test_round_trips.py) -----------------------------------

def _submission(text: str):
    return hands_in({"compose-file": writefile("compose.yaml", text)})


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
#: A rebound checks module, and an added cell patching the report and writing on the host.
CHEAT = Cheat("compose", "compose-file")


# student → (submission, expected score out of 9)
STUDENTS = {
    "ada": (_submission(GOOD), 9),
    # the same project spelled otherwise
    "flo": (_submission(OTHER_SPELLING), 9),
    # asks for the host's environment: gets the compose container's, and is otherwise right
    "gus": (_submission(HOST_VARIABLES), 9),
    # env_file is not run (compose_valid says so); no version: key
    "hal": (_submission(ENV_FILE), 1),
    # cheats: both at once; only the added cell, beside the placeholder
    "ivy": (CHEAT, 0),
    "jo": (CHEAT.beside(None), 0),
    # a version: key and db on both networks
    "bo": (_submission('version: "3.8"\n' + ANSWERS["db_on_both_networks"][0]), 5),
    # redis saves in /tmp: the visible checks pass, the hidden down/up test takes named_volume
    "cy": (_submission(ANSWERS["redis_saves_elsewhere"][0]), 7),
    # a volume used but never declared: docker compose refuses the file
    "di": (_submission(ANSWERS["undeclared_volume"][0]), 1),
    "eve": (None, 0),
}

CASE = LabCase(
    "compose", max_score=9, students=STUDENTS,
    right_answer=lambda folder: _folder(folder, "good"),
    not_released=("HIDDEN", "assert_data_survives_down_and_up"),
    cells={"cy": {"test_named_volume": 0}},
    feedback={"bo": ("Delete the line", "backend only"), "cy": ("down keeps named volumes",),
              "di": ("undefined volume",), "eve": ("placeholder",)},
    # ${HOME}, ${PATH} and a secret of the grading process, which gus's file asks for
    environment={SECRET_NAME: SECRET_VALUE, "PATH": f"{PATH_MARK}:{os.environ['PATH']}"},
)


def test_round_trip_judged_in_a_sealed_engine(graded):
    report = graded.sealed_report("ada")
    assert report.details["sealed"]["engine_start_seconds"] > 0
    assert report.details["data_survives"] is True


def test_round_trip_no_host_value_reaches_a_container(graded):
    report = graded.sealed_report("gus")
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
    refused = graded.sealed_report("hal")
    assert "env_file" in refused["compose_valid"].feedback
    assert "container_env" not in refused.details  # nothing of that file was run


def test_round_trip_feedback_shows_no_host_secret(graded):
    for student in ("gus", "hal"):
        assert SECRET_VALUE not in graded.feedback_text(student)
