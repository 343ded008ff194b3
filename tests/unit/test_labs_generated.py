"""labs/ and solutions/ are generated from grader/source, current, and free of hidden tests."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from docklab import grader

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "grader" / "source"
LABS = grader.source_labs(ROOT / "grader")
HIDDEN_MARK = "BEGIN HIDDEN TESTS"


def _hidden_lines(notebook: Path) -> list[str]:
    """The code lines between the hidden-test markers of a source notebook."""
    lines, inside = [], False
    for cell in nbformat.read(notebook, as_version=4).cells:
        for line in cell.source.splitlines():
            if line.strip() == "### BEGIN HIDDEN TESTS":
                inside = True
            elif line.strip() == "### END HIDDEN TESTS":
                inside = False
            elif inside and line.strip() and not line.strip().startswith("#"):
                lines.append(line.strip())
    return lines


def test_the_course_has_labs():
    assert "mobysay" in LABS


def test_labs_and_solutions_are_not_stale():
    stale = grader.stale_files(ROOT)
    assert stale == [], "run `docklab grader generate`:\n" + "\n".join(stale)


def test_the_staleness_check_notices_a_hand_edit(tmp_path):
    # A copy of the checkout's course with one generated file edited by hand.
    import shutil

    for folder in ("grader/source", "labs", "solutions"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    shutil.copy(ROOT / "grader" / "nbgrader_config.py", tmp_path / "grader")
    edited = tmp_path / "labs" / "mobysay" / "mobysay.ipynb"
    edited.write_text(edited.read_text().replace("Whale hello there", "Whale hi"))
    (tmp_path / "solutions" / "mobysay" / "notes.txt").write_text("hand-made")
    stale = grader.stale_files(tmp_path)
    assert "labs/mobysay/mobysay.ipynb: differs from grader/source" in stale
    assert "solutions/mobysay/notes.txt: not generated from grader/source" in stale


def test_mobysay_has_hidden_tests():
    assert _hidden_lines(SOURCE / "mobysay" / "mobysay.ipynb")


@pytest.mark.parametrize("lab", LABS)
def test_hidden_tests_exist_only_in_the_source(lab):
    source = SOURCE / lab / f"{lab}.ipynb"
    hidden = _hidden_lines(source)
    for folder in ("labs", "solutions"):
        for path in (ROOT / folder / lab).rglob("*"):
            if path.is_file():
                text = path.read_text(errors="replace")
                assert HIDDEN_MARK not in text, f"{path} shows hidden tests"
                for line in hidden:
                    assert line not in text, f"{path} shows the hidden test {line!r}"


def _cell(folder: str, lab: str, cell_id: str) -> str:
    notebook = nbformat.read(ROOT / folder / lab / f"{lab}.ipynb", as_version=4)
    return next(cell.source for cell in notebook.cells if cell.get("id") == cell_id)


def test_student_version_has_no_solution_and_solution_has_no_markup():
    student = _cell("labs", "mobysay", "dockerfile")
    solution = _cell("solutions", "mobysay", "dockerfile")
    assert student.startswith("%%writefile Dockerfile\n")
    assert "raise NotImplementedError()" in student
    assert "cowsay" not in student and "FROM debian" not in student
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "YOUR CODE HERE", "NotImplementedError"):
        assert marker not in solution
    assert 'ENTRYPOINT ["cowsay", "-f", "moby.cow"]' in solution.splitlines()


def test_student_version_carries_nbgrader_grade_cells_worth_the_checks_points():
    from docklab.checks import get_lab

    notebook = nbformat.read(ROOT / "labs" / "mobysay" / "mobysay.ipynb", as_version=4)
    graded = {cell.metadata["nbgrader"]["grade_id"]: cell.metadata["nbgrader"]["points"]
              for cell in notebook.cells
              if cell.metadata.get("nbgrader", {}).get("grade")}
    lab = get_lab("mobysay")
    assert graded == {f"test_{c.id}": c.points for c in lab.criteria}


def test_nbgrader_config_gives_builds_time():
    config = grader.nbgrader_config(ROOT / "grader")
    assert config.CourseDirectory.course_id == "docklab"
    assert config.ExecutePreprocessor.timeout >= 300
    assert config.Execute.timeout >= 300
    assert "Dockerfile" in config.CourseDirectory.ignore
