"""Sealed grading against hostile submissions: real engine, real nbgrader, real sealed engines.

What a learner could do under nbgrader's own autograde (which runs every cell in the grader's
kernel) is tried here through `nbgrader autograde` with SealedJudge, through `docklab grade`, and
through the sealed judge directly, and must come to nothing: no forged score, nothing written or
read on the grading host, no way out to the host's ports or the cloud metadata address, and each
runaway build stopped at its bound. Afterwards the host's engine holds nothing the grading made.

It compares the whole engine before and after, so it runs alone (the ``serial`` phase of `make
test`). The sealed judge's bounds, one build or engine at a time, are test_sealed_bounds.py's:
those run beside the other tests, each checking that its own sandbox left nothing.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import nbformat
import pytest

from docklab import labels
from docklab.checks.answer import dockerfile_from_notebook
from tests.conftest import run_docklab
from tests.labs.roundtrip import copy_course, round_trip, set_cell

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
GOOD, _ = dockerfile_from_notebook(ROOT / "solutions" / "mobysay" / "mobysay.ipynb")
GETATTR_CHEAT = 'mobysay = type("M", (), {"__getattr__": lambda s, n: lambda *a, **k: s})()'


def _added_cell(notebook, source: str) -> None:
    """A cell the learner added after the answer cell (no nbgrader metadata)."""
    index = next(i for i, c in enumerate(notebook.cells) if c.get("id") == "dockerfile")
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source))


def _host_state(client) -> dict:
    """Everything on the host's engine that grading could leave behind."""
    return {
        "containers": {c.id for c in client.containers.list(all=True)},
        "images": {i.id for i in client.images.list(all=True)},
        "volumes": {v.name for v in client.volumes.list()},
        "networks": {n.id for n in client.networks.list()},
        "swarm": (client.info().get("Swarm") or {}).get("LocalNodeState"),
    }


@pytest.fixture(scope="module")
def host_before(client):
    """The host engine's state before this module graded anything."""
    return _host_state(client)


@pytest.fixture(scope="module")
def host_marks(tmp_path_factory):
    """Places on the grading host that learner code would touch if it ever ran here."""
    folder = tmp_path_factory.mktemp("host")
    return {"file": folder / f"pwned-{uuid.uuid4().hex[:8]}",
            "bind": folder / "bind", "secret": "docklab-secret-" + uuid.uuid4().hex}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, host_marks, host_before):
    """One nbgrader round trip of mobysay with hostile submissions, through SealedJudge."""
    learner = "sealed-" + tmp_path_factory.mktemp("id").name[-6:]
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)
    host_marks["bind"].mkdir()
    course = copy_course(tmp_path_factory.mktemp("course"), "mobysay")
    (course / "gradebook-marker.txt").write_text(host_marks["secret"])

    def patched(notebook):
        set_cell(notebook, "dockerfile", "%%writefile Dockerfile\nFROM debian:12\n")
        _added_cell(notebook, "from docklab.checks import base\n"
                              "base.Report.assert_passed = lambda *a, **k: None")

    def reaches_host(notebook):
        set_cell(notebook, "dockerfile", "%%writefile Dockerfile\n" + GOOD)
        _added_cell(notebook, f"open({str(host_marks['file'])!r}, 'w').write('x')")
        _added_cell(notebook, "import docker\ndocker.from_env().containers.run('busybox', "
                              "['touch', '/h/pwned'], remove=True, volumes={"
                              f"{str(host_marks['bind'])!r}: {{'bind': '/h'}}}})")
        _added_cell(notebook, "print(open('../../../gradebook.db', 'rb').read()[:4000]); "
                              "print(open('../../../gradebook-marker.txt').read()); "
                              "print(open('../../../source/mobysay/mobysay.ipynb').read())")

    students = {
        "honest": lambda nb: set_cell(nb, "dockerfile", "%%writefile Dockerfile\n" + GOOD),
        "untouched": None,
        "getattr": lambda nb: set_cell(nb, "dockerfile", GETATTR_CHEAT),
        "patched": patched,
        "reacher": reaches_host,
    }
    yield {"course": course, "learner": learner, **round_trip(course, "mobysay", students)}
    mp.undo()


def test_scores_are_what_the_dockerfile_alone_earns(graded):
    assert graded["scores"] == {"honest": 10.0, "untouched": 0.0, "getattr": 0.0,
                                "patched": 2.0, "reacher": 10.0}
    assert graded["cells"]["patched"]["test_builds"] == 1
    assert graded["cells"]["patched"]["test_base_debian"] == 1


def test_added_cells_do_nothing_on_the_grading_host(graded, host_marks):
    assert not host_marks["file"].exists()
    assert not (host_marks["bind"] / "pwned").exists()


def test_added_cells_get_no_output_and_reveal_nothing(graded, host_marks):
    notebook = graded["course"] / "autograded" / "reacher" / "mobysay" / "mobysay.ipynb"
    text = notebook.read_text()
    assert host_marks["secret"] not in text and "SQLite format" not in text
    for cell in nbformat.read(notebook, as_version=4).cells:
        grading = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and not grading.get("grade"):
            assert cell.outputs == [], cell.source[:80]


def test_grade_cells_show_the_checks_feedback(graded):
    notebook = graded["course"] / "autograded" / "patched" / "mobysay" / "mobysay.ipynb"
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in nbformat.read(notebook, 4).cells
             if c.metadata.get("nbgrader", {}).get("grade")}
    assert cells["test_builds"].outputs[0]["output_type"] == "stream"
    error = cells["test_apt_chained"].outputs[0]
    assert error["output_type"] == "error" and "cowsay" in error["evalue"]


def test_feedback_is_generated_from_the_sealed_verdicts(graded):
    assert graded["feedback"]["success"], graded["feedback"].get("error")
    html = (graded["course"] / "feedback" / "patched" / "mobysay" / "mobysay.html").read_text()
    assert "LabCheckFailed" in html


def test_grading_leaves_nothing_on_the_host_engine(client, graded):
    left = labels.find_labelled(client, learner=graded["learner"])
    assert not any(left.values()), left
    sealed = client.containers.list(all=True, filters={"ancestor": "docklab/sealed-engine"})
    assert not [c for c in sealed if c.labels.get(labels.LEARNER) == graded["learner"]]


# -- docklab grade: a class at once -------------------------------------------------------------

def test_docklab_grade_judges_a_class_in_parallel(tmp_path, learner_env):
    from docklab import grader

    course = copy_course(tmp_path, "mobysay")
    api = grader.nbgrader_api(course)
    assert api.generate_assignment("mobysay")["success"]
    release = course / "release" / "mobysay"
    answers = {"ann": GOOD, "ben": GOOD.replace('ENTRYPOINT ["cowsay", "-f", "moby.cow"]',
                                                 "ENTRYPOINT cowsay -f moby.cow"),
               "cid": None, "dan": "FROM debian:12\n"}
    for student, dockerfile in answers.items():
        target = course / "submitted" / student / "mobysay"
        shutil.copytree(release, target)
        notebook = nbformat.read(target / "mobysay.ipynb", as_version=4)
        if dockerfile is not None:
            set_cell(notebook, "dockerfile", "%%writefile Dockerfile\n" + dockerfile)
        if student == "dan":  # the patch that gave 7/10 under nbgrader's own autograde
            _added_cell(notebook, "from docklab.checks import base\n"
                                  "base.Report.assert_passed = lambda *a, **k: None")
        nbformat.write(notebook, target / "mobysay.ipynb")
    out = run_docklab("grade", "mobysay", "--parallel", "2", "--course", str(course), "--json",
                      timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    results = {row["student"]: row for row in json.loads(out.stdout)}
    assert {s: r["score"] for s, r in results.items()} == {"ann": 10, "ben": 6, "cid": 0,
                                                              "dan": 2}
    assert "entrypoint_exec_form" in results["ben"]["failed"]
    assert "grading mobysay" in out.stderr  # the progress bar
    table = run_docklab("grade", "mobysay", "--course", str(course), "--student", "ann",
                        timeout=300)
    assert table.returncode == 0 and "10/10" in table.stdout


def test_the_host_engine_is_left_as_it_was(client, host_before):
    """Runs last in this module: every grading above left nothing on the host's engine."""
    assert _host_state(client) == host_before
