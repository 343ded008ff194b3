"""Every course notebook runs top to bottom against the real engine, twice in a row, and leaves
nothing behind.

* ``test_notebook_runs_under_nbval``: nbval (``--nbval-lax``) in a pytest subprocess, as a maintainer
  would run it: every code cell must run without an error.
* ``test_notebook_runs_twice_and_leaves_nothing``: nbclient runs the notebook as shipped, then again
  with the "try it" exercises solved. The self-checks must say "not yet" the first time and "well
  done" the second; afterwards no resource labelled with the lesson's id may be left on the engine.

Nothing here is skipped: without an engine or the course images, the notebooks fail, and so do these
tests.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import ipykernel.kernelspec
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from docklab.engine import connect
from docklab.labels import find_labelled

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]-*.ipynb"))
SANITIZE = Path(__file__).with_name("sanitize.cfg")
CELL_TIMEOUT = 120  # seconds; cells take < 5 s, but a cold engine or a busy CI machine is slower

#: Answers to each notebook's "try it" exercises, by cell id, so the self-checks' success path runs.
SOLUTIONS = {
    "01-containers": {
        "exercise": 'lesson.run("busybox", "sleep 600", name="my-limited", mem_limit="48m",'
                    ' nano_cpus=250_000_000)',
    },
    "02-running": {
        "exercise-exit": 'lesson.run("busybox", ["sh", "-c", "echo bye; exit 42"], name="my-exit")',
        "exercise-stop": 'lesson.run("busybox", "sleep 600", name="my-quick", init=True)',
    },
    "03-volumes": {
        "exercise": 'my_data = lesson.volume("my-data")\n'
                    'lesson.run("busybox", ["sh", "-c", "echo hello > /data/greeting.txt"],'
                    ' volumes=[f"{my_data.name}:/data"], detach=False, remove=True)',
    },
    "04-networking": {
        "exercise": 'lesson.run("nginx", name="my-web", network=usernet.name, networking_config='
                    '{usernet.name: client.api.create_endpoint_config(aliases=["shop"])})',
    },
    "05-compose": {
        "exercise": 'compose("up", "-d", "--scale", "worker=2")',
    },
    "06-security": {
        "exercise": 'lesson.run("busybox", "sleep 600", name="my-hardened", user="1000:1000", cap_drop=["ALL"],'
                    ' read_only=True, tmpfs={"/tmp": ""}, security_opt=["no-new-privileges"])',
    },
    "07-best-practices": {
        "exercise": 'my_data = lesson.volume("my-notes-data")\n'
                    'lesson.run(notes_tag, name="my-notes", environment={"NOTES_TITLE": "My notes"},'
                    ' volumes={my_data.name: {"bind": "/data", "mode": "rw"}}, network=notes_net.name)',
    },
    "09-multi-stage": {
        "exercise": 'write_source("flask", {"app.py": APP + """\n@app.get("/about")\ndef about():\n'
                    '    return "made with docklab"\n"""})',
    },
    "10-registry": {
        "exercise": 'app_11.tag(f"{REGISTRY}/team/my-app", "stable")\n'
                    'push(f"{REGISTRY}/team/my-app", "stable")',
    },
    "08-building": {
        "exercise": 'lesson.build(fileobj=io.BytesIO(b"FROM busybox\\nARG VERSION=1.0\\nENV APP_VERSION=$VERSION\\n"'
                    ' b"CMD [\\"sh\\", \\"-c\\", \\"echo version $APP_VERSION\\"]\\n"),'
                    ' tag=lesson.name("my-versioned"), buildargs={"VERSION": "2.5"})',
    },
    "11-orchestration": {
        "exercise": 'update_service(web, task_template={"ContainerSpec": {"Image": WEB_V1}},'
                    ' update_config=UpdateConfig(parallelism=0))',
    },
}

_ids = [p.stem for p in NOTEBOOKS]


def test_the_course_has_notebooks():
    # Guards the parametrised tests below against passing because they found nothing.
    assert {"00-index", "01-containers", "02-running"} <= set(_ids)


# --- structure (no engine needed, but cheap and close to the notebooks) ---------------------------

def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _tagged(nb, tag: str) -> list:
    return [cell for cell in nb.cells if tag in cell.metadata.get("tags", [])]


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem != "00-index"], ids=lambda p: p.stem)
def test_lesson_has_setup_exercise_and_cleanup(path: Path):
    nb = _read(path)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code[0].metadata.get("tags") == ["setup"], "the first code cell must be the setup cell"
    # The lesson id is what the leftover check below looks for: it must be the file's name.
    assert f'start("{path.stem}")' in code[0].source
    assert "lesson.cleanup()" in code[-1].source, "the last code cell must clean up"
    exercises, checks = _tagged(nb, "exercise"), _tagged(nb, "self-check")
    assert exercises and len(checks) == len(exercises), "each exercise needs its self-check cell"
    assert {cell.id for cell in exercises} == set(SOLUTIONS.get(path.stem, {})), (
        "tests/notebooks/test_notebooks.py needs a solution for each exercise cell (by cell id)"
    )


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem != "00-index"], ids=lambda p: p.stem)
def test_setup_requires_every_image_the_lesson_runs(path: Path):
    nb = _read(path)
    source = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    used = set(re.findall(r'lesson\.(?:run|create)\(\s*"([^"]+)"', source))
    call = re.search(r"lesson\.require_images\(([^)]*)\)", _tagged(nb, "setup")[0].source)
    required = set(re.findall(r'"([^"]+)"', call.group(1))) if call else set()
    assert used <= required, (
        f"the setup cell should call lesson.require_images({', '.join(map(repr, sorted(used)))}) "
        f"so a missing image gets a hint instead of a Docker Hub error; missing: {used - required}"
    )


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


def test_index_lists_every_lesson():
    index = "\n".join(cell.source for cell in _read(NOTEBOOK_DIR / "00-index.ipynb").cells
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


# --- nbval -----------------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _readable(error: str, head: int = 40, tail: int = 20) -> str:
    """A cell's error without colour codes: its start (which cell, its source) and the end of the
    traceback (what went wrong), with the library frames in between left out."""
    lines = _ANSI.sub("", error).strip().splitlines()
    if len(lines) <= head + tail:
        return "\n".join(lines)
    return "\n".join(lines[:head] + [f"[... {len(lines) - head - tail} lines ...]"] + lines[-tail:])


def _failures(output: str, most: int = 3) -> str:
    """The failing cells from nbval's report (the first few), or the output's tail if none."""
    output = _ANSI.sub("", output)
    match = re.search(r"^=+ FAILURES =+$(.*?)^=+ short test summary", output,
                      re.DOTALL | re.MULTILINE)
    if not match:
        return output[-6000:]
    blocks = [b for b in re.split(r"^_{3,} .* _{3,}$", match.group(1), flags=re.MULTILINE)
              if b.strip()]
    shown = [_readable(block) for block in blocks[:most]]
    if len(blocks) > most:
        shown.append(f"[... and {len(blocks) - most} more failing cells]")
    return "\n\n".join(shown)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_runs_under_nbval(path: Path):
    command = [
        sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
        f"--nbval-sanitize-with={SANITIZE}", f"--nbval-cell-timeout={CELL_TIMEOUT}",
        "-p", "no:cacheprovider", "-q", str(path.relative_to(ROOT)),
    ]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900,
                         check=False)  # the exit code is asserted below, with the failures
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"{path.name} failed under nbval:\n{_failures(output)}"
    code_cells = sum(cell.cell_type == "code" for cell in _read(path).cells)
    passed = re.search(r"(\d+) passed", output)
    assert passed and int(passed.group(1)) == code_cells, (
        f"nbval ran {passed.group(1) if passed else 'no'} cells of {code_cells}:\n{output[-3000:]}"
    )


# --- twice in a row, nothing left --------------------------------------------------------------------

class _ThisPython(KernelSpecManager):
    """Runs notebooks with this interpreter (the venv's), whatever kernels are installed elsewhere."""

    def get_kernel_spec(self, kernel_name):
        return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                      **ipykernel.kernelspec.get_kernel_dict())


LEFTOVERS = "from docklab.labels import find_labelled as _find\n" \
            "import json as _json\n" \
            "print(_json.dumps({kind: [getattr(r, 'name', None) or r.id for r in found]\n" \
            "                   for kind, found in _find(lesson.client, lesson=lesson.id).items()}))"


def _execute(path: Path, solutions: dict[str, str], attempt: str):
    nb = _read(path)
    for cell in nb.cells:
        if cell.get("id") in solutions:
            cell.source = solutions[cell.id]
    has_lesson = bool(_tagged(nb, "setup"))
    if has_lesson:  # ask from inside the kernel, before it exits, what the cleanup cell left
        nb.cells.append(nbformat.v4.new_code_cell(LEFTOVERS, id="test-leftovers"))
    km = KernelManager(kernel_name="python3", kernel_spec_manager=_ThisPython())
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, startup_timeout=60,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{path.name} ({attempt}) failed in a cell:\n{_readable(str(exc))}",
                    pytrace=False)
    if has_lesson:
        left = json.loads(_stdout(nb.cells[-1]))
        assert not any(left.values()), (
            f"{path.name} ({attempt}): the cleanup cell left these behind: {left}"
        )
    return nb


def _stdout(cell) -> str:
    return "".join(out.get("text", "") for out in cell.get("outputs", [])
                   if out.get("output_type") == "stream")


def _verdicts(nb) -> dict[str, str]:
    return {cell.id: _stdout(cell).strip() for cell in _tagged(nb, "self-check")}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_runs_twice_and_leaves_nothing(path: Path):
    shipped = _execute(path, {}, "first run, as shipped")
    for cell_id, verdict in _verdicts(shipped).items():
        assert verdict.startswith("✘ Not yet"), (
            f"{path.name}: with the exercise not done, self-check {cell_id} said {verdict!r}"
        )
    solved = _execute(path, SOLUTIONS.get(path.stem, {}), "second run, exercises solved")
    for cell_id, verdict in _verdicts(solved).items():
        assert verdict.startswith("✔ Well done"), (
            f"{path.name}: with the exercise solved, self-check {cell_id} said {verdict!r}"
        )
    left = find_labelled(connect(), lesson=path.stem)
    assert not any(left.values()), (
        f"{path.name} left labelled resources on the engine: "
        + ", ".join(f"{kind}: {[getattr(r, 'name', r.id) for r in found]}"
                    for kind, found in left.items() if found)
    )
