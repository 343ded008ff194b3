"""`docklab doctor` on the real engine: ok when ready, and each problem named with its fix."""

import json

import pytest

from docklab.lesson import Lesson
from tests.conftest import run_docklab

pytestmark = pytest.mark.engine


def _doctor(**env):
    result = run_docklab("doctor", "--json", env=env)
    return result.returncode, json.loads(result.stdout)


def test_doctor_is_ok_on_a_prepared_machine():
    code, report = _doctor()
    assert report["ok"] is True, report
    assert code == 0
    assert {c["name"] for c in report["checks"]} == {"engine", "compose", "images", "disk",
                                                      "ports"}


def test_doctor_names_a_course_port_taken_by_a_container(client, learner_env):
    lesson = Lesson("test-doctor", client)
    squatter = lesson.run("busybox", ["sleep", "60"], name=f"squatter-{learner_env}",
                          ports={"80/tcp": 8080})
    try:
        code, report = _doctor()
    finally:
        squatter.remove(force=True)
    ports = next(c for c in report["checks"] if c["name"] == "ports")
    assert code == 1 and report["ok"] is False
    assert ports["ok"] is False
    assert "8080" in ports["detail"] and squatter.name in ports["detail"]
    assert ports["fix"]


def test_doctor_without_an_engine_fails_with_the_fix(tmp_path):
    code, report = _doctor(DOCKER_HOST=f"unix://{tmp_path}/none.sock")
    assert code == 1 and report["ok"] is False
    engine = next(c for c in report["checks"] if c["name"] == "engine")
    assert engine["ok"] is False and "DOCKER_HOST" in engine["fix"]
