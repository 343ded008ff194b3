"""A submission read as data: the lab's answer cells, nothing else, and never executed.

nbgrader marks the cells a learner writes in as solution cells (``"solution": true`` with a
``grade_id``). Which cells those are comes from the lab's source in ``grader/source/<lab>/`` (the
instructor's copy), not from the submission, whose metadata a learner can edit. From a submitted
notebook only the first cell with each of those grade_ids is kept (nbgrader's DeduplicateIds keeps
the first too), as text; added cells, outputs and every other file handed in are ignored. The
answer is written out as a one-notebook folder beside the lab's own files, taken from the source:

    answer/<lab>.ipynb    the answer cells only
    answer/moby.cow ...   the files the lab hands out, from grader/source/<lab>/

which the lab's checks read the same way they read a learner's notebook (``docklab check``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import nbformat

from docklab.checks import course_source


def answer_ids(lab: str) -> tuple[str, ...]:
    """The grade_ids of the lab's solution cells, in order, from the lab's source notebook."""
    notebook = nbformat.read(course_source(lab) / f"{lab}.ipynb", as_version=4)
    return tuple(cell.metadata["nbgrader"]["grade_id"] for cell in notebook.cells
                 if cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def answer_cells(notebook: dict, lab: str) -> dict[str, str]:
    """``{grade_id: source}`` of the lab's solution cells found in ``notebook`` (parsed JSON)."""
    wanted = answer_ids(lab)
    found: dict[str, str] = {}
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict):
            continue
        meta = cell.get("metadata")
        grading = meta.get("nbgrader") if isinstance(meta, dict) else None
        grade_id = grading.get("grade_id") if isinstance(grading, dict) else None
        if grade_id not in wanted or grade_id in found:
            continue
        # The learner's cell type stays as in the source: only its text is taken.
        source = cell.get("source", "")
        found[grade_id] = "".join(source) if isinstance(source, list) else str(source)
    return found


def read_submission(path: str | Path) -> dict:
    """A submitted notebook as plain JSON ({} when it cannot be read: that is a 0, not a crash)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def answer_key(lab: str, cells: dict[str, str]) -> str:
    """A digest of an answer: identical answers are judged once (``docklab grade``)."""
    return hashlib.sha256(json.dumps([lab, sorted(cells.items())]).encode()).hexdigest()


def write_answer(lab: str, cells: dict[str, str], folder: Path) -> Path:
    """Write the answer notebook and the lab's own files into ``folder``; return the notebook.

    The source notebook supplies every cell's type and metadata; answer cells get the learner's
    text, and the other cells are dropped, so nothing but the answer reaches the checks.
    """
    source = course_source(lab)
    template = nbformat.read(source / f"{lab}.ipynb", as_version=4)
    kept = []
    for cell in template.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in cells:
            cell.source = cells[grade_id]
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
            kept.append(cell)
    template.cells = kept
    folder.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_file() and item.suffix != ".ipynb" and not item.name.startswith(".") \
                and item.name != "Dockerfile":  # the learner's comes from the answer cell
            shutil.copyfile(item, folder / item.name)
    notebook = folder / f"{lab}.ipynb"
    nbformat.write(template, notebook)
    return notebook
