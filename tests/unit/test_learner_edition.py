"""The docklab package is part of what a learner gets (the classroom's image installs it; the
labs' self-checks import docklab.checks): its source quotes no lab's reference answer nor hidden
test. The same scan as tests/classroom/test_learner_image.py, on the source tree and with shorter
lines (12 characters: ``ENV PATH=$PATH:/usr/games`` is one), so a docstring or a feedback
sentence that writes an answer's line fails here, without building the image.
"""

from __future__ import annotations

from pathlib import Path

from tests.classroom.test_learner_image import _text_files, instructor_only_lines, leaks

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "docklab"
#: Shorter lines are too common to be an answer (``services:``, ``image: redis``).
MIN_LENGTH = 12


def test_the_docklab_package_quotes_no_reference_answer_nor_hidden_test():
    assert leaks(_text_files([PACKAGE]), instructor_only_lines(MIN_LENGTH)) == {}


def test_an_answer_written_into_a_docstring_or_feedback_is_found(tmp_path):
    lines = instructor_only_lines(MIN_LENGTH)
    # Lines only the reference answers hold, as this package once quoted them: in a docstring,
    # and in a feedback string (where its double quotes are escaped).
    for answer in ("ENV PATH=$PATH:/usr/games", 'ENTRYPOINT ["cowsay", "-f", "moby.cow"]',
                   "docker volume create notes-data"):
        assert answer in lines
    (tmp_path / "docstring.py").write_text('"""The answer::\n\n    ENV PATH=$PATH:/usr/games\n"""\n')
    (tmp_path / "feedback.py").write_text(
        'HINT = "Use ENTRYPOINT [\\"cowsay\\", \\"-f\\", \\"moby.cow\\"]."\n')
    (tmp_path / "fine.py").write_text('HINT = "Use the exec form: ENTRYPOINT [\\"prog\\"]."\n')
    found = leaks(_text_files([tmp_path]), lines)
    assert sorted(Path(name).name for name in found) == ["docstring.py", "feedback.py"]


def test_a_line_the_lab_hands_out_is_no_answer():
    # lifecycle's broken.Dockerfile is handed out with the lab; the fix keeps this line of it.
    assert "COPY start.sh /app/start.sh" not in instructor_only_lines(MIN_LENGTH)
