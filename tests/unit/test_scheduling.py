"""How `make test` hands out its tests to the workers (tests/conftest.py): by group, longest first."""

from tests.conftest import LongestFirst

MOBYSAY = {"tests/labs/test_mobysay.py::test_one": False,
           "tests/labs/test_mobysay.py::test_two": False}
COMPOSE = {("tests/browser/test_visualizers_in_jupyterlab.py::"
            "test_lesson_notebook_renders_its_visualizers[05-compose]"): False,
           "tests/notebooks/test_notebooks.py::test_notebook_runs_solved[05-compose]": False}
UNIT = "tests/unit/test_a.py::test_quick"


def _handed_out(queue: LongestFirst) -> list[str]:
    queue["lab-mobysay"] = MOBYSAY
    queue[UNIT] = {UNIT: False}
    queue["notebook-05-compose"] = COMPOSE
    order = []
    while queue:
        group, _ = queue.popitem(last=False)  # as xdist's LoadScopeScheduling takes them
        order.append(group)
    return order


def test_the_longest_groups_go_first_as_measured():
    queue = LongestFirst({"lab-mobysay": 100, "notebook-05-compose": 180})
    assert _handed_out(queue) == ["notebook-05-compose", "lab-mobysay", UNIT]


def test_a_group_not_measured_is_estimated_by_its_tier():
    # Two browser and notebook runs (about 78 s) before two lab tests (7 s), unit tests last.
    assert _handed_out(LongestFirst({})) == ["notebook-05-compose", "lab-mobysay", UNIT]
    # A measurement beats the estimate.
    assert _handed_out(LongestFirst({"lab-mobysay": 500}))[0] == "lab-mobysay"
