"""The lab-check framework without an engine: reports, scores, answers, contexts, speech bubbles."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from docklab.checks import get_lab
from docklab.checks.answer import dockerfile_from_notebook, open_answer
from docklab.checks.base import Criterion, Lab, LabCheckFailed, failed, passed, unjudged
from docklab.checks.mobysay import CRITERIA, WHALE_MARKS, bubble
from docklab.checks.sandbox import Limits
from docklab.errors import DocklabError

ROOT = Path(__file__).resolve().parents[2]
MOBYSAY_IDS = ["builds", "base_debian", "frontend_is_arg", "apt_chained", "cowfile_installed",
               "path_has_games", "default_message", "custom_message", "entrypoint_exec_form"]


def _lab() -> Lab:
    criteria = [Criterion("builds", 1, "builds", needs_image=False), Criterion("runs", 2, "runs")]
    return Lab("toy", "a toy lab", criteria, judge=lambda **_: {})


def test_mobysay_has_exactly_the_agreed_check_ids():
    assert [c.id for c in CRITERIA] == MOBYSAY_IDS
    assert get_lab("mobysay").max_score == 10


def test_unknown_lab_is_a_docklab_error():
    with pytest.raises(DocklabError):
        get_lab("no-such-lab")


def test_report_scores_only_passed_checks_and_keeps_the_criteria_order():
    lab = _lab()
    report = lab.report({"runs": passed("ok"), "builds": failed("no Dockerfile")})
    assert [c.id for c in report.checks] == ["builds", "runs"]
    assert (report.score, report.max_score) == (2, 3)
    assert report.verdicts() == {"builds": False, "runs": True}
    assert not report.all_passed


def test_missing_verdicts_fail_as_not_judged():
    report = _lab().report({"builds": passed()})
    assert report["runs"].passed is False
    assert report["runs"].feedback.startswith("Not judged")
    assert not report["runs"].judged and report["builds"].judged


def test_failed_judged_checks_name_their_lesson_and_topic():
    criteria = [Criterion("builds", 1, "builds", needs_image=False), Criterion("runs", 2, "runs"),
                Criterion("serves", 1, "serves")]
    lab = Lab("toy", "a toy lab", criteria, judge=lambda **_: {}, lesson="01-toys",
              topics={"runs": "running toys", "serves": "serving toys"})
    report = lab.report({"builds": failed("no Dockerfile"), "runs": failed("it stopped"),
                         "serves": unjudged("it did not start.")})
    assert report["builds"].feedback == "no Dockerfile"
    assert report["runs"].feedback == "it stopped (Lesson 01-toys: running toys.)"
    assert report["serves"].feedback == "Not judged: it did not start."
    assert report["runs"].judged and not report["serves"].judged
    # A hidden test's verdict names its own lesson: it is reported as written.
    hidden = lab.report({"runs": failed("PID 1 is tail (Lesson 01-toys: signals.)")},
                        as_written={"runs"})
    assert hidden["runs"].feedback == "PID 1 is tail (Lesson 01-toys: signals.)"


def test_verdicts_for_unknown_checks_are_refused():
    with pytest.raises(ValueError):
        _lab().report({"typo": passed()})


def test_assert_passed_raises_with_the_learners_feedback():
    report = _lab().report({"builds": failed("There is no Dockerfile."), "runs": passed()})
    report.assert_passed("runs")
    with pytest.raises(LabCheckFailed, match="There is no Dockerfile"):
        report.assert_passed("builds", "runs")
    assert isinstance(LabCheckFailed("x"), AssertionError)  # nbgrader counts it as a failed test


def test_json_shape_is_what_docklab_check_prints():
    data = json.loads(json.dumps(_lab().report({"builds": passed()}).as_dict()))
    assert set(data) == {"lab", "score", "max_score", "checks"}
    assert set(data["checks"][0]) == {"id", "passed", "points", "feedback"}


def test_table_and_html_show_every_check():
    report = _lab().report({"builds": failed("No <Dockerfile>")})
    assert "FAIL  builds" in report.table() and "runs" in report.table()
    assert "&lt;Dockerfile&gt;" in report._repr_html_()


def _notebook(tmp_path: Path, *sources: str) -> Path:
    cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": source} for source in sources]
    path = tmp_path / "answer.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}))
    return path


def test_the_last_writefile_dockerfile_cell_wins(tmp_path):
    path = _notebook(tmp_path, "%%writefile Dockerfile\nFROM busybox\n", "print(1)",
                     ["%%writefile Dockerfile\n", "FROM debian:12\n", "CMD [\"x\"]"])
    text, problem = dockerfile_from_notebook(path)
    assert problem is None
    assert text == 'FROM debian:12\nCMD ["x"]\n'


def test_a_notebook_without_the_cell_says_so(tmp_path):
    text, problem = dockerfile_from_notebook(_notebook(tmp_path, "%%writefile other.txt\nhi"))
    assert text is None and "%%writefile Dockerfile" in problem


def test_a_broken_notebook_is_a_problem_not_a_crash(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text("{ not json")
    text, problem = dockerfile_from_notebook(path)
    assert text is None and "could not be read" in problem


def test_notebook_answers_get_the_labs_own_files(tmp_path):
    cow = tmp_path / "lab.cow"
    cow.write_text("the lab's cow")
    path = _notebook(tmp_path, "%%writefile Dockerfile\nFROM debian:12\n")
    with open_answer(path, {"moby.cow": cow}, limits=Limits()) as answer:
        assert answer.kind == "notebook"
        assert answer.files["moby.cow"] == b"the lab's cow"
        assert answer.dockerfile == "FROM debian:12\n"
        context = answer.context
    assert not context.exists()  # the temporary context is removed afterwards


def _members(answer) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=answer.tar()) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_symlinks_go_in_as_links_and_are_never_followed(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY secret /\n")
    os.symlink("/etc/passwd", tmp_path / "secret")
    with open_answer(tmp_path, {}, limits=Limits()) as answer:
        members = _members(answer)
        assert members["secret"].issym() and members["secret"].linkname == "/etc/passwd"
        assert b"root:" not in answer.tar().getvalue()


def test_the_context_is_capped(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    (tmp_path / "big").write_bytes(b"x" * 4096)
    with open_answer(tmp_path, {}, limits=Limits(context_bytes=1024)) as answer:
        assert "big" not in _members(answer)
        assert any("larger than" in p for p in answer.problems)


def test_dockerignore_is_honoured(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    (tmp_path / ".dockerignore").write_text("*.log\n")
    (tmp_path / "build.log").write_text("noise")
    with open_answer(tmp_path, {}, limits=Limits()) as answer:
        assert "build.log" not in _members(answer)
        assert "Dockerfile" in _members(answer)


def test_a_missing_answer_is_a_docklab_error(tmp_path):
    with pytest.raises(DocklabError), open_answer(tmp_path / "nope", {}, limits=Limits()):
        pass


def test_identical_answers_share_a_fingerprint(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text("FROM debian:12\n")
    with open_answer(tmp_path / "a", {}, limits=Limits()) as a, \
            open_answer(tmp_path / "b", {}, limits=Limits()) as b:
        assert a.fingerprint() == b.fingerprint()
        (tmp_path / "b" / "Dockerfile").write_text("FROM debian:12 \n")
    with open_answer(tmp_path / "b", {}, limits=Limits()) as b:
        assert a.fingerprint() != b.fingerprint()


@pytest.mark.parametrize("output, said", [
    (" ___\n< Whale hello there >\n ---\n", "Whale hello there"),
    (" ___\n/ Ahoy from the grader 1234 Whale  \\\n\\ hello there /\n ---\n",
     "Ahoy from the grader 1234 Whale hello there"),
    (" __\n<  >\n --\n", ""),
    ("sh: 1: [cowsay,: not found\n", ""),
])
def test_bubble_reads_what_cowsay_said(output, said):
    assert bubble(output) == said


def test_the_whale_marks_are_in_mobys_drawing():
    cow = (ROOT / "grader" / "source" / "mobysay" / "moby.cow").read_text()
    assert "$the_cow" in cow and "$thoughts" in cow and "EOC" in cow
    for mark in WHALE_MARKS:
        assert mark in cow


def test_mobys_cowfile_is_valid_perl_that_draws_the_whale(tmp_path):
    import shutil
    import subprocess

    perl = shutil.which("perl")
    assert perl, "perl (Debian's perl-base) renders cowfiles; it is on every Debian system"
    script = ('$thoughts = "\\\\"; $eyes = "oo"; $tongue = "  "; '
              'do $ARGV[0] or die "$@"; print $the_cow;')
    drawn = subprocess.run([perl, "-e", script, str(ROOT / "grader/source/mobysay/moby.cow")],
                           capture_output=True, text=True, check=True).stdout
    for mark in WHALE_MARKS:
        assert mark in drawn
    assert "$" not in drawn  # every variable was interpolated


def test_limits_read_timeouts_from_the_environment(monkeypatch):
    monkeypatch.setenv("DOCKLAB_GRADE_BUILD_TIMEOUT", "7")
    assert Limits.from_env().build_timeout == 7.0
    assert Limits.from_env(build_timeout=3).build_timeout == 3


def _context(dockerfile: str):
    import io

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile.encode()), ("moby.cow", b"cow")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def _dockerfile_of(context) -> str:
    with tarfile.open(fileobj=context) as tar:
        return tar.extractfile("Dockerfile").read().decode()


def test_course_labels_become_one_label_line_with_quoted_values():
    from docklab.checks.sandbox import is_course_label_step, with_label_instruction

    labelled = with_label_instruction(_context("FROM debian:12\nCMD [\"x\"]\n# done\n"),
                                      {"org.docklab.learner": 'we"ird $USER', "org.docklab.b": "2"})
    text = _dockerfile_of(labelled)
    assert text.splitlines()[:3] == ["FROM debian:12", 'CMD ["x"]', "# done"]
    last = text.splitlines()[-1]
    assert last == 'LABEL "org.docklab.b"="2" "org.docklab.learner"="we\\"ird \\$USER"'
    assert is_course_label_step(last)
    labelled.seek(0)
    with tarfile.open(fileobj=labelled) as tar:
        assert tar.extractfile("moby.cow").read() == b"cow"


@pytest.mark.parametrize("dockerfile", [
    'FROM debian:12\nCMD ["x"] \\\n',          # the line would join the learner's last one
    "# escape=`\nFROM debian:12\nCMD x\n",     # another escape character
    "",                                         # nothing to append to
])
def test_label_line_is_not_appended_where_it_could_change_the_answer(dockerfile):
    from docklab.checks.sandbox import with_label_instruction

    assert with_label_instruction(_context(dockerfile), {"org.docklab.a": "1"}) is None
