"""How `make test` splits the shared phase between its two workers (tests/conftest.py): tests that
touch the same named things on the host engine must land in one group, run one after another."""

from pathlib import Path

from tests.conftest import SERIAL, is_serial, worker_group

BROWSER = "tests/browser/test_visualizers_in_jupyterlab.py::test_lesson_notebook_renders_its_visualizers"
NOTEBOOKS = "tests/notebooks/test_notebooks.py"


def test_every_run_of_a_notebook_is_in_one_group():
    groups = {worker_group(f"{BROWSER}[02-running]"),
              worker_group(f"{NOTEBOOKS}::test_notebook_runs_solved[02-running]"),
              # the Binder test runs 02-running too (its containers have fixed names)
              worker_group("tests/binder/test_binder.py::test_a_lesson_runs_in_the_binder_env")}
    assert groups == {"notebook-02-running"}


def test_notebooks_with_host_ports_share_a_group_and_doctor_runs_alone():
    assert worker_group(f"{BROWSER}[04-networking]") == "host-ports"
    assert worker_group(f"{NOTEBOOKS}::test_notebook_runs_solved[05-compose]") == "host-ports"
    assert worker_group(f"{NOTEBOOKS}::test_notebook_runs_solved[07-best-practices]") == "host-ports"
    # doctor's tests want every course port free, which any lesson may publish: the serial phase
    assert "test_doctor" in SERIAL


def test_a_lab_and_its_notebook_share_a_group():
    assert worker_group("tests/labs/test_round_trips.py::test_x[orchestration]") == "lab-orchestration"
    assert worker_group("tests/labs/test_orchestration.py::test_x") == "lab-orchestration"


def _stems(test) -> set[str]:
    """The notebooks a test is parametrised with."""
    return {p.stem for mark in test.pytestmark if mark.name == "parametrize"
            for p in mark.args[1] if isinstance(p, Path)}


def test_what_swarms_the_host_engine_runs_in_the_matrix_only():
    # A swarm leave drops the engine's DNS records of other containers (tests/conftest.py).
    from tests.browser.test_visualizers_in_jupyterlab import NOTEBOOKS as IN_BROWSER_ON_HOST
    from tests.engines.test_engine_matrix import IN_BROWSER_HERE, _runs
    from tests.labs.test_lab_notebooks import LABS
    from tests.notebooks.test_notebooks import test_notebook_runs_solved

    on_host = {p.stem for p in IN_BROWSER_ON_HOST} | _stems(test_notebook_runs_solved)
    assert "11-orchestration" not in on_host and "02-running" in on_host
    assert "orchestration" not in LABS and "networking" in LABS
    # ... and in the matrix, 11 runs as shipped once: in the browser on 26, not by nbclient too
    assert [p.stem for p in IN_BROWSER_HERE["26"]] == ["11-orchestration"]
    runs = {run.id for run in _runs()}
    assert "26:11-orchestration:shipped" not in runs and "26:02-running:shipped" in runs
    assert "28-containerd:11-orchestration:solved" in runs
    assert is_serial("tests/grading/test_sealed.py::test_x")
    assert not is_serial(f"{BROWSER}[02-running]")


def test_other_modules_group_by_module_and_unit_tests_go_anywhere():
    assert worker_group("tests/integration/test_clean.py::test_x") == "module-test_clean"
    assert worker_group("tests/unit/test_worker_groups.py::test_x") is None
    assert worker_group(f"{NOTEBOOKS}::test_require_images_names_what_is_missing") is None


def test_each_engine_of_the_matrix_is_one_group():
    matrix = "tests/engines/test_engine_matrix.py::test_notebook_on_engine"
    assert worker_group(f"{matrix}[28-containerd:02-running:solved]") == "engine-28-containerd"
    assert worker_group(f"{matrix}[28-containerd:04-networking:shipped]") == "engine-28-containerd"
    assert worker_group(f"{matrix}[26:02-running:solved]") == "engine-26"
