"""The labs' shared harness. A lab's test file declares a :class:`LabCase` (its students, their
expected scores and feedback, a right answer); test_round_trips.py runs the nbgrader round trip,
`docklab check` and the leaves-nothing-behind tests from it, for every lab. (Answers are built with
tests/labs/answers.py; reports are judged with tests/labs/asserts.py.)

A round trip takes minutes, so :class:`RoundTrips` runs each lab's once per session: the first test
that asks for it (through the ``graded`` fixture, tests/labs/conftest.py) runs it, the others read
the same :class:`RoundTrip`.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import docker
import nbformat
import pytest

from docklab.checks import get_lab
from tests.labs.roundtrip import ROOT, Edit, copy_course, round_trip, set_cell, submitted

# -- a hostile submission -----------------------------------------------------------------------

class Cheat:
    """A hostile submission, as an ``edit`` for a lab's students.

    The answer cell rebinds the lab's checks module (under nbgrader's own Execute step every test
    cell then passed), and an added cell patches the report and writes a file on the grading
    host, :attr:`marker`, which must never exist. The added cell goes right after the answer
    cell, or before the cell ``before`` names.
    """

    def __init__(self, lab: str, answer_cell: str, *, before: str | None = None):
        self.lab, self.answer_cell, self.before = lab, answer_cell, before
        self.marker = Path(f"/tmp/docklab-pwned-{lab}-{uuid.uuid4().hex[:8]}")
        self.answer = f'{lab} = type("M", (), {{"__getattr__": lambda s, n: lambda *a, **k: s}})()\n'
        self.added = ("from docklab.checks import base\n"
                      "base.Report.assert_passed = lambda *a, **k: None\n"
                      f"open({str(self.marker)!r}, 'w').write('ran on the grading host')\n")

    def __call__(self, notebook) -> None:
        set_cell(notebook, self.answer_cell, self.answer)
        self.add_cell(notebook)

    def add_cell(self, notebook) -> None:
        ids = [c.get("id") for c in notebook.cells]
        at = ids.index(self.before) if self.before else ids.index(self.answer_cell) + 1
        notebook.cells.insert(at, nbformat.v4.new_code_cell(self.added))

    def beside(self, edit: Edit | None) -> AddedCell:
        """Only the added cell, beside the answers ``edit`` writes (None: the placeholders)."""
        return AddedCell(self, edit)

    def assert_never_ran(self, graded: RoundTrip, student: str) -> None:
        """No marker on the grading host, and the autograde log says the sealed judge graded it."""
        assert not self.marker.exists()
        assert (f"Judging {self.lab} of {student} on a sealed engine (no cell is executed)"
                in graded.results[student]["log"])

    def assert_came_to_nothing(self, graded: RoundTrip, student: str) -> None:
        """The added cell never ran, and the patched report passed nothing (every cell 0)."""
        self.assert_never_ran(graded, student)
        assert set(graded.cells[student].values()) == {0}


@dataclass(frozen=True)
class AddedCell:
    """:meth:`Cheat.beside`: the cheat's added cell handed in next to real answers. It must not
    run, nor add a point to what those answers earn (the expected score says what they earn)."""

    cheat: Cheat
    edit: Edit | None

    def __call__(self, notebook) -> None:
        if self.edit is not None:
            self.edit(notebook)
        self.cheat.add_cell(notebook)

    @property
    def marker(self) -> Path:
        return self.cheat.marker

    def assert_came_to_nothing(self, graded: RoundTrip, student: str) -> None:
        self.cheat.assert_never_ran(graded, student)


# -- what a lab declares ------------------------------------------------------------------------

def nothing_unlabelled(client: docker.DockerClient) -> list:
    return []


@dataclass(frozen=True)
class LabCase:
    """One lab, as the shared tests see it."""

    lab: str
    max_score: int
    #: student → (their edits of the released notebook, or None: handed in untouched; the score
    #: nbgrader must give). A :class:`Cheat` (or its :meth:`~Cheat.beside`) among them must come
    #: to nothing.
    students: dict[str, tuple[Edit | None, int]]
    #: Makes a folder holding a right answer at the given path, for `docklab check` on a folder.
    right_answer: Callable[[Path], Path]
    #: What the released notebook must not show: hidden tests, solutions.
    not_released: tuple[str, ...]
    #: The lab's files the released assignment hands out beside the notebook.
    release_files: tuple[str, ...] = ()
    #: student → {grade cell: score}, for the cells that matter beyond the total (a hidden test).
    cells: dict[str, dict[str, float]] = field(default_factory=dict)
    #: student → words their feedback must hold.
    feedback: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Set in grading's environment while the round trip runs, beside DOCKLAB_LEARNER.
    environment: dict[str, str] = field(default_factory=dict)
    #: Words `docklab check` must print for the untouched student notebook, beside the
    #: placeholder its first check names.
    untouched_words: tuple[str, ...] = ()
    #: What grading this lab could leave on the host engine that carries no label.
    unlabelled_leftovers: Callable[[docker.DockerClient], list] = nothing_unlabelled
    #: `docklab check` runs on a sealed engine: the lab's check makes a swarm, and the host
    #: engine must never make or join one.
    check_on_a_sealed_engine: bool = False

    @property
    def check_ids(self) -> list[str]:
        return list(get_lab(self.lab).check_ids)

    @property
    def full_cells(self) -> dict[str, int]:
        """Every grade cell with its points: what a right answer gets, cell by cell."""
        return {f"test_{c.id}": c.points for c in get_lab(self.lab).criteria}

    @property
    def cheats(self) -> dict[str, Cheat | AddedCell]:
        return {student: edit for student, (edit, _) in self.students.items()
                if isinstance(edit, Cheat | AddedCell)}

    def notebook(self, folder: str) -> Path:
        """The lab's notebook in ``folder``: "solutions" or "labs" (the untouched student's)."""
        return ROOT / folder / self.lab / f"{self.lab}.ipynb"


# -- the round trip, once per lab ---------------------------------------------------------------

@dataclass
class RoundTrip:
    """A lab's graded course: what :func:`round_trip` returned, and where."""

    lab: str
    course: Path
    learner: str
    results: dict
    feedback: dict
    cells: dict
    scores: dict
    max_scores: set
    csv: Path
    seconds: float

    @property
    def release(self) -> Path:
        return self.course / "release" / self.lab

    def feedback_html(self, student: str) -> str:
        return (self.course / "feedback" / student / self.lab / f"{self.lab}.html").read_text()

    def feedback_text(self, student: str) -> str:
        """The feedback page with HTML's escapes undone (an apostrophe may come as &#x27;)."""
        return html.unescape(self.feedback_html(student))

    def sealed_report(self, student: str):
        """The sealed judge's report on a submission (kept by the judge: not judged again)."""
        from docklab.grading.judge import judge_file

        return judge_file(self.lab, submitted(self.course, self.lab, student))


class RoundTrips:
    """Each lab's round trip, run the first time a test asks for it and kept for the session.

    A failed round trip is kept too: the tests after the first see its error, not a second run.
    """

    def __init__(self, tmp: Path):
        self._tmp = tmp
        self._done: dict[str, RoundTrip] = {}
        self._failed: dict[str, Exception] = {}
        self._cases: list[LabCase] = []

    def of(self, case: LabCase) -> RoundTrip:
        if case.lab in self._failed:
            raise RuntimeError(f"the {case.lab} round trip failed in an earlier test") \
                from self._failed[case.lab]
        if case.lab not in self._done:
            self._cases.append(case)
            try:
                self._done[case.lab] = self._run(case)
            except Exception as exc:
                self._failed[case.lab] = exc
                raise
        return self._done[case.lab]

    def _run(self, case: LabCase) -> RoundTrip:
        # A learner of its own: the sealed engines carry it, so what they leave is this lab's.
        learner = f"roundtrip-{case.lab}-{uuid.uuid4().hex[:8]}"
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DOCKLAB_LEARNER", learner)
            for name, value in case.environment.items():
                mp.setenv(name, value)
            course = copy_course(self._tmp / case.lab, case.lab)
            result = round_trip(course, case.lab,
                                {student: edit for student, (edit, _) in case.students.items()})
        return RoundTrip(lab=case.lab, course=course, learner=learner, **result)

    def close(self) -> None:
        """Remove the files a cheat would have written (a failed test has seen them by now)."""
        for case in self._cases:
            for cheat in case.cheats.values():
                cheat.marker.unlink(missing_ok=True)
