"""The nbgrader course in ``grader/``, and the lab versions generated from it.

``grader/source/<lab>/`` is the one place a lab is written (a notebook with nbgrader markup, plus the
files it hands out). Everything else is generated from it, never edited by hand:

- ``labs/<lab>/``: the student version, made by nbgrader's ``generate_assignment`` (solutions
  replaced by a stub, hidden tests removed) into ``grader/release/<lab>/``, then copied;
- ``solutions/<lab>/``: the source with the nbgrader markup lines and the hidden tests taken out.

    docklab grader generate      # regenerate labs/ and solutions/
    docklab grader check         # exit 1 when labs/ or solutions/ are stale (CI runs it as a test)
"""

from __future__ import annotations

import filecmp
import fnmatch
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from docklab.checks import course_root
from docklab.errors import DocklabError

GENERATED = ("labs", "solutions")
_SOLUTION_MARKERS = {"### BEGIN SOLUTION", "### END SOLUTION"}
_HIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
_MARK_SCHEME = ("=== BEGIN MARK SCHEME ===", "=== END MARK SCHEME ===")


def course_dir(root: Path | None = None) -> Path:
    """The nbgrader course root: ``grader/`` in the checkout."""
    return (root or course_root()) / "grader"


def nbgrader_config(course: Path):
    """``grader/nbgrader_config.py`` loaded, with the course root pointing at ``course``."""
    from traitlets.config import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    return config


def nbgrader_api(course: Path, **settings):
    """nbgrader's Python API on the course at ``course``.

    ``settings`` are extra config sections, e.g. ``{"CourseDirectory": {"ignore": [...]}}``.
    """
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    # nbgrader creates its gradebook by running `alembic` from PATH: make it this venv's.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    config = nbgrader_config(course)
    config.merge(Config(settings))
    return NbGraderAPI(config=config)


def source_labs(course: Path) -> list[str]:
    """The labs in ``source/``: folders that hold a notebook."""
    source = course / "source"
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def ignored(name: str, patterns: list[str]) -> bool:
    """Whether a file called ``name`` matches one of nbgrader's ``CourseDirectory.ignore`` globs."""
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


def generate(root: Path | None = None, *, out: Path | None = None,
             labs: list[str] | None = None) -> list[Path]:
    """Generate ``labs/<lab>/`` and ``solutions/<lab>/`` under ``out`` (default: the checkout).

    nbgrader writes its release into ``<root>/grader/release``; that is what ``labs/`` receives.
    Returns the folders written.
    """
    root = root or course_root()
    out = out or root
    course = course_dir(root)
    api = nbgrader_api(course)
    ignore = list(api.coursedir.ignore)
    written = []
    for lab in labs or source_labs(course):
        result = api.generate_assignment(lab, force=True, create=True)
        if not result.get("success"):
            raise DocklabError(f"nbgrader could not generate the lab {lab}.",
                               (result.get("error") or result.get("log") or "").strip()[-2000:])
        release = course / "release" / lab
        target = out / "labs" / lab
        _replace_tree(release, target, ignore)
        solution = out / "solutions" / lab
        _write_solution(course / "source" / lab, solution, ignore)
        written += [target, solution]
    return written


def _replace_tree(source: Path, target: Path, ignore: list[str]) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=lambda _, names: [n for n in names
                                                             if ignored(n, ignore)])


def _write_solution(source: Path, target: Path, ignore: list[str]) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if any(ignored(part, ignore) for part in rel.parts) or path.is_dir():
            continue
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".ipynb":
            notebook = solution_notebook(nbformat.read(path, as_version=4))
            nbformat.write(notebook, dest)
        else:
            shutil.copyfile(path, dest)


def solution_notebook(notebook):
    """The source notebook as a plain worked solution: no markup, no hidden tests, no outputs."""
    for cell in notebook.cells:
        kept, hidden = [], False
        for line in cell.source.splitlines():
            marker = line.strip()
            if marker in (_HIDDEN[0], _MARK_SCHEME[0]):
                hidden = True
            elif marker in (_HIDDEN[1], _MARK_SCHEME[1]):
                hidden = False
            elif not hidden and marker not in _SOLUTION_MARKERS:
                kept.append(line)
        cell.source = "\n".join(kept)
        cell.metadata.pop("nbgrader", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return notebook


def stale_files(root: Path | None = None) -> list[str]:
    """What differs between the committed ``labs/``/``solutions/`` and a fresh generation.

    Generates into a temporary copy of the course, so the checkout is not touched.
    """
    root = root or course_root()
    with tempfile.TemporaryDirectory(prefix="docklab-generate-") as tmp:
        copy = Path(tmp)
        course = course_dir(root)
        (copy / "grader").mkdir()
        shutil.copy(course / "nbgrader_config.py", copy / "grader")
        shutil.copytree(course / "source", copy / "grader" / "source")
        labs = source_labs(copy / "grader")
        generate(copy, out=copy, labs=labs)
        differences = []
        for folder in GENERATED:
            differences += _compare(copy / folder, root / folder, folder, labs)
        return differences


def _compare(fresh: Path, committed: Path, label: str, labs: list[str]) -> list[str]:
    differences = []
    for lab in labs:
        new, old = fresh / lab, committed / lab
        new_files = {p.relative_to(new) for p in new.rglob("*") if p.is_file()}
        old_files = ({p.relative_to(old) for p in old.rglob("*") if p.is_file()
                      and ".ipynb_checkpoints" not in p.parts and p.name != "Dockerfile"}
                     if old.is_dir() else set())
        for rel in sorted(new_files - old_files):
            differences.append(f"{label}/{lab}/{rel}: missing")
        for rel in sorted(old_files - new_files):
            differences.append(f"{label}/{lab}/{rel}: not generated from grader/source")
        for rel in sorted(new_files & old_files):
            if not filecmp.cmp(new / rel, old / rel, shallow=False):
                differences.append(f"{label}/{lab}/{rel}: differs from grader/source")
    return differences
