"""The shape every lesson notebook must have (read as files, no engine): a setup cell, exercises
with self-checks and a solution for the tests, a cleanup cell, the images it runs required up
front, and a line in 00-index's contents table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.notebooks.course import NOTEBOOK_DIR, NOTEBOOKS, SOLUTIONS, read, tagged

_ids = [p.stem for p in NOTEBOOKS]


def test_the_course_has_notebooks():
    # Guards the parametrised tests below against passing because they found nothing.
    assert {"00-index", "01-containers", "02-running"} <= set(_ids)


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem != "00-index"], ids=lambda p: p.stem)
def test_lesson_has_setup_exercise_and_cleanup(path: Path):
    nb = read(path)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code[0].metadata.get("tags") == ["setup"], "the first code cell must be the setup cell"
    # The lesson id is what the leftover check below looks for: it must be the file's name.
    assert f'start("{path.stem}")' in code[0].source
    assert "lesson.cleanup()" in code[-1].source, "the last code cell must clean up"
    exercises, checks = tagged(nb, "exercise"), tagged(nb, "self-check")
    assert exercises and len(checks) == len(exercises), "each exercise needs its self-check cell"
    assert {cell.id for cell in exercises} == set(SOLUTIONS.get(path.stem, {})), (
        "tests/notebooks/course.py needs a solution for each exercise cell (by cell id)"
    )


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem != "00-index"], ids=lambda p: p.stem)
def test_setup_requires_every_image_the_lesson_runs(path: Path):
    nb = read(path)
    source = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    used = set(re.findall(r'lesson\.(?:run|create)\(\s*"([^"]+)"', source))
    call = re.search(r"lesson\.require_images\(([^)]*)\)", tagged(nb, "setup")[0].source)
    required = set(re.findall(r'"([^"]+)"', call.group(1))) if call else set()
    assert used <= required, (
        f"the setup cell should call lesson.require_images({', '.join(map(repr, sorted(used)))}) "
        f"so a missing image gets a hint instead of a Docker Hub error; missing: {used - required}"
    )


def test_index_lists_every_lesson():
    index = "\n".join(cell.source for cell in read(NOTEBOOK_DIR / "00-index.ipynb").cells
                      if cell.cell_type == "markdown")
    rows = {m.group(1): m.group(0)
            for m in re.finditer(r"\]\((\d\d-[a-z-]+)\.ipynb\)[^|]*", index)}
    assert len(rows) == 11, f"00-index should link 01 to 11, found {sorted(rows)}"
    for stem, row in rows.items():
        exists = (NOTEBOOK_DIR / f"{stem}.ipynb").exists()
        marked = "coming soon" in row
        assert exists != marked, (
            f"00-index marks {stem} as {'coming soon' if marked else 'available'}, but the "
            f"notebook {'exists' if exists else 'does not exist'}: update the contents table"
        )
    for stem in _ids:
        assert stem == "00-index" or stem in rows, f"00-index does not link {stem}"
