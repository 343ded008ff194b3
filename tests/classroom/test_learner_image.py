"""What a learner's container holds: the course's notebooks and labs, never a lab's solution nor
its hidden tests (the repository a learner clones for `make lab` ships both; the classroom's
image must not). The lines looked for are those only the instructor's copy has: hidden tests,
and solution lines that appear nowhere in the released labs or the lessons. The same scan finds
them in the repository's solutions/ and grader/source/, so it can fail.
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import docker
import nbformat
import pytest

from docklab import labels as L
from docklab.classroom.image import LEARNER_IMAGE, ensure_learner_image

ROOT = Path(__file__).resolve().parents[2]
#: What of the image a learner works in: their home (the course) and the docklab package.
INSIDE = ("/home/learner", "/usr/local/lib/python3.11/dist-packages/docklab")
_BLOCK = re.compile(r"### BEGIN (HIDDEN TESTS|SOLUTION)\n(.*?)### END \1", re.DOTALL)


def _text_files(paths) -> dict[str, str]:
    files = {}
    for path in paths:
        for file in ([path] if path.is_file() else path.rglob("*")):
            if file.is_file() and file.suffix in (".ipynb", ".py", ".md", ".txt", ""):
                files[str(file)] = file.read_text(errors="replace")
    return files


def _cell_sources(folders) -> str:
    return "\n".join(cell.source for folder in folders for path in folder.rglob("*.ipynb")
                     for cell in nbformat.read(path, as_version=4).cells)


def instructor_only_lines(min_length: int = 30) -> set[str]:
    """Lines of hidden tests and solutions (>= ``min_length`` characters) found in no released lab
    (its notebook or a file it hands out, such as lifecycle's broken.Dockerfile) and no lesson."""
    released = _cell_sources([ROOT / "labs", ROOT / "notebooks"]) + "\n".join(
        path.read_text(errors="replace") for path in (ROOT / "labs").rglob("*")
        if path.is_file() and path.suffix != ".ipynb")
    lines = set()
    for path in (ROOT / "grader" / "source").glob("*/*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            for match in _BLOCK.finditer(cell.source):
                lines.update(line.strip() for line in match.group(2).splitlines()
                             if len(line.strip()) >= min_length and line.strip() not in released)
    return lines


def leaks(files: dict[str, str], lines: set[str]) -> dict[str, list[str]]:
    """{file: instructor-only lines in it}: a notebook's JSON escapes quotes, so both forms."""
    found = {}
    for name, text in files.items():
        hits = [line for line in lines if line in text or line.replace('"', '\\"') in text]
        if hits:
            found[name] = hits
    return found


@pytest.fixture(scope="module")
def image_files() -> dict[str, str]:
    client = docker.from_env()
    try:
        ensure_learner_image(client, say=lambda line: None)
        container = client.containers.create(
            LEARNER_IMAGE, labels=L.labels_for("classroom", kind="container"))
        files = {}
        try:
            for path in INSIDE:
                stream, _ = container.get_archive(path)
                with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                    for member in tar.getmembers():
                        if member.isfile() and not member.name.endswith((".pyc", ".so")):
                            files[member.name] = tar.extractfile(member).read().decode(
                                errors="replace")
        finally:
            container.remove(force=True)
        return files
    finally:
        client.close()


def test_the_scan_finds_the_solutions_and_hidden_tests_in_the_repository():
    lines = instructor_only_lines()
    assert len(lines) > 20
    found = leaks(_text_files([ROOT / "solutions", ROOT / "grader" / "source"]), lines)
    assert len(found) >= len(list((ROOT / "grader" / "source").glob("*/*.ipynb")))


def test_a_learners_course_folder_holds_no_solution_and_no_hidden_test(image_files):
    course = {name: text for name, text in image_files.items()
              if name.startswith("learner/course/")}
    assert any(name.startswith("learner/course/labs/") for name in course)
    assert any(name.startswith("learner/course/notebooks/") for name in course)
    assert not any("/solutions/" in name or "/grader/" in name for name in image_files)
    assert leaks(course, instructor_only_lines()) == {}


def test_the_docklab_package_in_it_holds_no_solution(image_files):
    """docklab.checks is installed with the package (the labs' self-checks import it): its
    docstrings and feedback name what a lab expects, never the reference answer's lines, which
    live only in grader/source/ (tests/unit/test_learner_edition.py checks the source tree)."""
    package = {name: text for name, text in image_files.items() if name.startswith("docklab/")}
    assert package
    assert leaks(package, instructor_only_lines()) == {}


def _in_the_image(*command: str) -> str:
    client = docker.from_env()
    try:
        output = client.containers.run(
            LEARNER_IMAGE, list(command), remove=True, stdout=True, stderr=True,
            labels=L.labels_for("classroom", kind="container"))
        return output.decode(errors="replace")
    finally:
        client.close()


def test_a_learner_gets_the_assignment_list_and_not_the_instructors_nbgrader(image_files):
    """nbgrader enables all its extensions when installed; the image switches off formgrader,
    the assignment creator and the course list, server and lab, and keeps what a learner uses."""
    server = _in_the_image("jupyter", "server", "extension", "list")
    lab = _in_the_image("jupyter", "labextension", "list")

    def state(name: str) -> str:
        found = re.search(rf"^\s+nbgrader\.server_extensions\.{name} \S*?(enabled|disabled)",
                          server, re.MULTILINE)
        assert found, server
        return found[1]

    for name in ("formgrader", "course_list"):
        assert state(name) == "disabled", server
    for name in ("assignment_list", "validate_assignment"):
        assert state(name) == "enabled", server
    disabled = lab.partition("Disabled extensions:")[2]
    for name in ("formgrader", "create-assignment", "course-list"):
        assert f"@jupyter/nbgrader:{name}" in disabled, lab
    for name in ("assignment-list", "validate-assignment"):
        assert f"@jupyter/nbgrader:{name}" not in disabled, lab
