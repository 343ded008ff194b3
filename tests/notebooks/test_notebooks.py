"""Every course notebook runs top to bottom against the real engine and leaves nothing behind.

Each notebook is executed once per variant (see tests/notebooks/course.py):

* ``test_notebook_runs_as_shipped``: the notebooks with no visualizer, as shipped (those with one
  run as shipped in JupyterLab, tests/browser): every code cell runs without an error and every
  self-check says "Not yet".
* ``test_notebook_runs_solved``: every notebook with its "try it" exercises solved: every
  self-check says "Well done".

Either way, the cleanup cell must leave nothing labelled with the lesson's id on the engine.
Nothing here is skipped: without an engine or the course images, the notebooks fail, and so do
these tests.
"""

from __future__ import annotations

import re
from pathlib import Path

import ipykernel.kernelspec
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from docklab.engine import connect
from docklab.labels import find_labelled
from tests.notebooks.course import (
    CLI_SOLUTIONS,
    LEFTOVERS_CELL_ID,
    NOT_IN_BROWSER,
    NOT_YET,
    NOTEBOOK_DIR,
    NOTEBOOKS,
    SOLUTIONS,
    WELL_DONE,
    leftovers,
    prepared,
    tagged,
    wrong_verdicts,
)

pytestmark = pytest.mark.engine

CELL_TIMEOUT = 120  # seconds; cells take < 5 s, but a cold engine or a busy CI machine is slower

def test_require_images_names_what_is_missing():
    from docklab.errors import ImageError
    from docklab.lesson import Lesson

    lesson = Lesson("test-require-images")
    lesson.require_images("busybox")  # present: no error
    with pytest.raises(ImageError) as caught:
        lesson.require_images("busybox", "docklab-test-absent:never")
    assert "docklab-test-absent:never" in caught.value.message
    assert "busybox" not in caught.value.message
    assert "docklab images prepare" in caught.value.hint


# --- the runs ------------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _readable(error: str, head: int = 40, tail: int = 20) -> str:
    """A cell's error without colour codes: its start (which cell, its source) and the end of the
    traceback (what went wrong), with the library frames in between left out."""
    lines = _ANSI.sub("", error).strip().splitlines()
    if len(lines) <= head + tail:
        return "\n".join(lines)
    return "\n".join(lines[:head] + [f"[... {len(lines) - head - tail} lines ...]"] + lines[-tail:])


class _ThisPython(KernelSpecManager):
    """Runs notebooks with this interpreter (the venv's), whatever kernels are installed elsewhere."""

    def get_kernel_spec(self, kernel_name):
        return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                      **ipykernel.kernelspec.get_kernel_dict())


def _execute(path: Path, solutions: dict[str, str], attempt: str):
    nb = prepared(path, solutions)
    km = KernelManager(kernel_name="python3", kernel_spec_manager=_ThisPython())
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, startup_timeout=60,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    try:
        client.execute()  # stops at the first cell that raises
    except CellExecutionError as exc:
        pytest.fail(f"{path.name} ({attempt}) failed in a cell:\n{_readable(str(exc))}",
                    pytrace=False)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code), f"{path.name}: not every cell ran"
    last = nb.cells[-1]
    if last.get("id") == LEFTOVERS_CELL_ID:
        left = leftovers(_stdout(last))
        assert not any(left.values()), (
            f"{path.name} ({attempt}): the cleanup cell left these behind: {left}"
        )
    engine_left = find_labelled(connect(), lesson=path.stem)
    assert not any(engine_left.values()), (
        f"{path.name} ({attempt}) left labelled resources on the engine: "
        + ", ".join(f"{kind}: {[getattr(r, 'name', r.id) for r in found]}"
                    for kind, found in engine_left.items() if found)
    )
    return nb


def _stdout(cell) -> str:
    return "".join(out.get("text", "") for out in cell.get("outputs", [])
                   if out.get("output_type") == "stream")


def _verdicts(nb) -> dict[str, str]:
    return {cell.id: _stdout(cell).strip() for cell in tagged(nb, "self-check")}


@pytest.mark.parametrize("path", NOT_IN_BROWSER, ids=lambda p: p.stem)
def test_notebook_runs_as_shipped(path: Path):
    shipped = _execute(path, {}, "as shipped")
    wrong = wrong_verdicts(_verdicts(shipped), NOT_YET)
    assert not wrong, f"{path.name}: with the exercises not done, self-checks said {wrong}"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem in SOLUTIONS],
                         ids=lambda p: p.stem)  # 00-index has no exercise: its one run is above
def test_notebook_runs_solved(path: Path):
    solved = _execute(path, SOLUTIONS.get(path.stem, {}), "exercises solved")
    wrong = wrong_verdicts(_verdicts(solved), WELL_DONE)
    assert not wrong, f"{path.name}: with the exercises solved, self-checks said {wrong}"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem in CLI_SOLUTIONS],
                         ids=lambda p: p.stem)
def test_notebook_runs_solved_through_docker_cells(path: Path):
    solved = _execute(path, CLI_SOLUTIONS[path.stem], "exercises solved with %docker")
    wrong = wrong_verdicts(_verdicts(solved), WELL_DONE)
    assert not wrong, f"{path.name}: with the exercises solved by %docker, self-checks said {wrong}"
