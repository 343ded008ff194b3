"""What a learner hands in, for the labs' tests: a folder for `docklab check <lab> <folder>`, or
the edits a student makes to the released notebook before the nbgrader round trip."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from tests.labs.roundtrip import ROOT, Edit, set_cell


def replaced(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced, asserting ``old`` is there (a wrong answer made from a
    right one must really differ from it)."""
    assert old in text, old
    return text.replace(old, new)


def solution_cell(lab: str, cell_id: str) -> str:
    """What the solution's ``%%writefile`` cell ``cell_id`` writes (the cell without that line)."""
    notebook = nbformat.read(ROOT / "solutions" / lab / f"{lab}.ipynb", as_version=4)
    source = next(c.source for c in notebook.cells if c.get("id") == cell_id)
    return source.partition("\n")[2] + "\n"


def answer_folder(folder: Path, lab: str, files: dict[str, str | bytes | None],
                  lab_files: tuple[str, ...] = ()) -> Path:
    """A folder for `docklab check <lab> <folder>`: ``lab_files`` copied from the lab's source
    (the files the learner is handed), and ``files`` written (None: that file is left out)."""
    folder.mkdir()
    for name in lab_files:
        shutil.copy(ROOT / "grader" / "source" / lab / name, folder)
    for name, content in files.items():
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        elif content is not None:
            (folder / name).write_text(content)
    return folder


def writefile(filename: str, text: str) -> str:
    """An answer cell that writes ``text`` to ``filename``, as the labs' cells do."""
    return f"%%writefile {filename}\n{text}"


def hands_in(cells: dict[str, str]) -> Edit:
    """A student who writes these sources into the answer cells (cell id → source)."""
    def edit(notebook) -> None:
        for cell_id, source in cells.items():
            set_cell(notebook, cell_id, source)
    return edit
