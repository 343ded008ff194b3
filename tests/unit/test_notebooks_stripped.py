"""Notebooks are committed without outputs: what a learner opens is what the course wrote.

Fix a failure with ``.venv/bin/nbstripout --keep-id <notebook>`` (without ``--keep-id`` it renumbers
every cell id, and the tests find cells by id) (or ``nbstripout --install`` once, which
strips on every ``git add``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest
from nbstripout import strip_output

ROOT = Path(__file__).resolve().parents[2]
# Every place a committed notebook lives. grader/source is nbgrader's one source of each lab;
# labs/ and solutions/ are generated from it, and must be generated stripped too.
NOTEBOOK_DIRS = ["notebooks", "grader/source", "labs", "solutions"]
# nbgrader writes these under grader/ while it works; they are not committed.
IGNORED_PARTS = {".ipynb_checkpoints", "release", "submitted", "autograded", "feedback"}


def committed_notebooks() -> list[Path]:
    found = []
    for folder in NOTEBOOK_DIRS:
        base = ROOT / folder
        if base.is_dir():
            found += [p for p in sorted(base.rglob("*.ipynb"))
                      if not IGNORED_PARTS.intersection(p.relative_to(base).parts)]
    return found


NOTEBOOKS = committed_notebooks()


def test_the_course_has_notebooks():
    # Guards the parametrised test below against passing because it found nothing.
    assert ROOT / "notebooks" / "00-index.ipynb" in NOTEBOOKS


def _problems(nb) -> list[str]:
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"cell {index} has {len(cell.outputs)} output(s)")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {index} has execution_count {cell.execution_count}")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_stripped(path: Path):
    nb = nbformat.read(path, as_version=4)
    problems = _problems(nb)
    stripped = strip_output(copy.deepcopy(nb), keep_output=False, keep_count=False, keep_id=True)
    if not problems and stripped != nb:
        problems.append("nbstripout would change it (run-time metadata such as widget state)")
    assert not problems, (
        f"{path.relative_to(ROOT)} is committed with outputs: " + "; ".join(problems)
        + f". Strip it with `.venv/bin/nbstripout --keep-id {path.relative_to(ROOT)}`."
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_uses_the_python3_kernel(path: Path):
    nb = nbformat.read(path, as_version=4)
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    assert kernel == "python3", (
        f"{path.relative_to(ROOT)} asks for kernel {kernel!r}; the course registers 'python3'."
    )
