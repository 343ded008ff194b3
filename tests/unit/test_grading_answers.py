"""Reading a submission as data: only the lab's answer cells, by the source's grade_ids."""

from __future__ import annotations

import json

import nbformat

from docklab.checks import course_source
from docklab.grading.answers import answer_cells, answer_ids, answer_key, write_answer


def _release():
    return json.loads((course_source("mobysay") / "mobysay.ipynb").read_text())


def test_answer_ids_come_from_the_source_notebook():
    assert answer_ids("mobysay") == ("dockerfile",)
    assert answer_ids("lifecycle") == ("answers", "dockerfile")


def test_only_the_first_answer_cell_is_read_and_added_cells_are_ignored():
    notebook = _release()
    answer = next(c for c in notebook["cells"]
                  if c["metadata"].get("nbgrader", {}).get("grade_id") == "dockerfile")
    answer["source"] = "%%writefile Dockerfile\nFROM debian:12\n"
    forged = json.loads(json.dumps(answer))
    forged["source"] = "%%writefile Dockerfile\nFROM busybox\n"
    notebook["cells"] += [forged, {"cell_type": "code", "metadata": {}, "outputs": [],
                                   "source": "import os; os.system('id')"}]
    assert answer_cells(notebook, "mobysay") == {
        "dockerfile": "%%writefile Dockerfile\nFROM debian:12\n"}


def test_a_notebook_that_is_not_a_notebook_gives_no_answer():
    for broken in ({}, {"cells": "no"}, {"cells": [1, None, {"metadata": []}]}, []):
        assert answer_cells(broken, "mobysay") == {}


def test_the_answer_folder_holds_the_answer_cells_and_the_labs_own_files(tmp_path):
    written = write_answer("mobysay", {"dockerfile": "%%writefile Dockerfile\nFROM x\n"},
                           tmp_path)
    notebook = nbformat.read(written, as_version=4)
    assert [c.source for c in notebook.cells] == ["%%writefile Dockerfile\nFROM x\n"]
    assert (tmp_path / "moby.cow").read_bytes() == \
        (course_source("mobysay") / "moby.cow").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["moby.cow", "mobysay.ipynb"]


def test_identical_answers_share_a_key_and_different_ones_do_not():
    a = answer_key("mobysay", {"dockerfile": "FROM a"})
    assert a == answer_key("mobysay", {"dockerfile": "FROM a"})
    assert a != answer_key("mobysay", {"dockerfile": "FROM b"})
    assert a != answer_key("multistage", {"dockerfile": "FROM a"})
