"""How `make test` hands out its tests to the workers (tests/conftest.py): by group, longest first."""

import json

from tests import conftest

MOBYSAY = ["tests/labs/test_mobysay.py::test_one", "tests/labs/test_mobysay.py::test_two"]
COMPOSE = [("tests/browser/test_visualizers_in_jupyterlab.py::"
            "test_lesson_notebook_renders_its_visualizers[05-compose]"),
           "tests/notebooks/test_notebooks.py::test_notebook_runs_solved[05-compose]"]
UNIT = ["tests/unit/test_a.py::test_quick", "tests/unit/test_b.py::test_quick"]


def test_the_longest_groups_go_first_each_in_its_own_order(tmp_path, monkeypatch):
    measured = tmp_path / "group_seconds.json"
    measured.write_text(json.dumps({"lab-mobysay": 100, "notebook-05-compose": 180}))
    monkeypatch.setattr(conftest, "GROUP_SECONDS", measured)
    collected = [UNIT[0], MOBYSAY[0], COMPOSE[0], MOBYSAY[1], UNIT[1], COMPOSE[1]]
    assert conftest.longest_first(collected) == [*COMPOSE, *MOBYSAY, *UNIT]


def test_a_group_not_measured_is_estimated_by_its_tier(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "GROUP_SECONDS", tmp_path / "none.json")
    # Two browser and notebook runs (about 78 s) before two lab tests (7 s), unit tests last.
    collected = [UNIT[0], *MOBYSAY, *COMPOSE]
    assert conftest.longest_first(collected) == [*COMPOSE, *MOBYSAY, UNIT[0]]
