"""What every lab's checks share: criteria with points, verdicts with feedback, and a report.

A lab module defines its criteria (id, points, what is asked) and one ``judge`` function that looks
at the learner's answer through the engine and returns a verdict per criterion. ``Lab.check`` runs
the judge inside a bounded :class:`~docklab.checks.sandbox.Sandbox` and always returns a
:class:`Report` in the criteria's order, with a score:

    report = docklab.checks.mobysay.LAB.check("path/to/answer")
    report.score, report.max_score
    report.assert_passed("builds")          # what an nbgrader test cell does

A criterion the judge could not look at (say the image never built) fails with feedback that says
why it could not be judged. A learner's answer never raises here: only problems of the course
itself (no engine, a missing course image) raise a :class:`~docklab.errors.DocklabError`.
"""

from __future__ import annotations

import hashlib
import html
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import docker.errors
import requests.exceptions

from docklab.errors import DocklabError, EngineError


@dataclass(frozen=True)
class Criterion:
    """One thing a lab asks for, worth ``points``."""

    id: str
    points: int
    title: str
    #: Checks that need the built image report "not judged" when the build failed.
    needs_image: bool = True


@dataclass(frozen=True)
class Check:
    """The verdict on one criterion: passed or not, and feedback that says why."""

    id: str
    points: int
    passed: bool
    feedback: str
    title: str = ""
    #: False when the criterion could not be looked at (its verdict was not judged).
    judged: bool = True

    @property
    def score(self) -> int:
        return self.points if self.passed else 0

    def as_dict(self) -> dict:
        return {"id": self.id, "passed": self.passed, "points": self.points,
                "feedback": self.feedback}


@dataclass(frozen=True)
class Verdict:
    """What a judge function says about one criterion (points come from the criterion)."""

    passed: bool
    feedback: str
    #: False when the criterion could not be looked at (say the image never built): such a
    #: verdict fails, and its feedback says why instead of naming a lesson to reread.
    judged: bool = True


def passed(feedback: str = "") -> Verdict:
    return Verdict(True, feedback)


def failed(feedback: str) -> Verdict:
    return Verdict(False, feedback)


class LabCheckFailed(AssertionError):
    """Raised by :meth:`Report.assert_passed`; its message is the learner's feedback."""


@dataclass
class Report:
    """Every criterion of a lab, judged, in order."""

    lab: str
    checks: list[Check]
    #: Facts about the grading run (build seconds, image id, log tail) for instructors.
    details: dict = field(default_factory=dict)

    @property
    def score(self) -> int:
        return sum(check.score for check in self.checks)

    @property
    def max_score(self) -> int:
        return sum(check.points for check in self.checks)

    @property
    def all_passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def __getitem__(self, check_id: str) -> Check:
        for check in self.checks:
            if check.id == check_id:
                return check
        raise KeyError(f"{self.lab} has no check {check_id!r}")

    def verdicts(self) -> dict[str, bool]:
        """``{check id: passed}``, handy in tests."""
        return {check.id: check.passed for check in self.checks}

    def assert_passed(self, *check_ids: str) -> None:
        """Fail (AssertionError) with the feedback of every named check that did not pass."""
        problems = [f"[{c.id}] {c.feedback}" for c in map(self.__getitem__, check_ids)
                    if not c.passed]
        if problems:
            raise LabCheckFailed("\n".join(problems))

    def as_dict(self) -> dict:
        return {"lab": self.lab, "score": self.score, "max_score": self.max_score,
                "checks": [check.as_dict() for check in self.checks]}

    def table(self) -> str:
        """The report as plain text: one line per criterion, feedback under failed ones."""
        lines = [f"{self.lab}: {self.score}/{self.max_score} points"]
        for check in self.checks:
            mark = "PASS" if check.passed else "FAIL"
            lines.append(f"  {mark}  {check.id:<22} {check.score}/{check.points}  {check.title}")
            if check.feedback and not check.passed:
                lines.extend(f"        {line}" for line in check.feedback.splitlines())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        rows = []
        for check in self.checks:
            mark = "✅" if check.passed else "❌"
            rows.append(
                f"<tr><td>{mark}</td><td><code>{html.escape(check.id)}</code></td>"
                f"<td>{html.escape(check.title)}</td><td>{check.score}/{check.points}</td>"
                f"<td style='text-align:left'>{html.escape(check.feedback)}</td></tr>")
        return (f"<p><b>{html.escape(self.lab)}</b>: {self.score}/{self.max_score} points</p>"
                "<table><thead><tr><th></th><th>check</th><th>what is asked</th><th>points</th>"
                "<th style='text-align:left'>feedback</th></tr></thead><tbody>"
                + "".join(rows) + "</tbody></table>")


Judge = Callable[..., dict[str, Verdict]]
#: A hidden test: from what the judge recorded (``Report.details``), a stricter verdict on one
#: criterion, or None when it has nothing to add. Applied only when grading (``hidden=True``).
Hidden = Callable[[dict], "Verdict | None"]


class Lab:
    """A lab: its criteria and the judge that looks at an answer through the engine."""

    def __init__(self, lab_id: str, title: str, criteria: list[Criterion], judge: Judge,
                 *, files: tuple[str, ...] = (), base_image: str | None = None,
                 images: tuple[str, ...] = (), network: tuple[str, ...] = (),
                 hidden: dict[str, Hidden] | None = None, sealed_ready: bool = False,
                 lesson: str | None = None, topics: dict[str, str] | None = None):
        ids = [c.id for c in criteria]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate check ids in {lab_id}: {ids}")
        self.id = lab_id
        self.title = title
        self.criteria = tuple(criteria)
        self.files = files
        #: The image the lab builds on; it also runs the grading's limited cgroup parent.
        self.base_image = base_image
        #: Course images the judge needs on a sealed engine (loaded from the host's, by ID).
        self.images = tuple(dict.fromkeys(([base_image] if base_image else []) + list(images)))
        #: Hosts a graded build may reach through the sealed engine's proxy (e.g. Debian's mirror).
        self.network = network
        self.hidden = dict(hidden or {})
        #: The judge runs nothing of the learner's outside the engine it is given, so it can
        #: judge on a sealed engine (docklab.grading). Labs without it are refused there.
        self.sealed_ready = sealed_ready
        #: The lesson this lab practises, and its topic behind each check: a failed check's
        #: feedback ends with where to reread it.
        self.lesson = lesson
        self.topics = dict(topics or {})
        unknown = set(self.hidden) - set(ids)
        if unknown:
            raise ValueError(f"hidden tests for unknown checks in {lab_id}: {sorted(unknown)}")
        self._judge = judge
        self._cache: dict[str, Report] = {}

    @property
    def check_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.criteria)

    @property
    def max_score(self) -> int:
        return sum(c.points for c in self.criteria)

    def lab_file(self, name: str) -> Path:
        """A file the lab hands out (e.g. moby.cow), from the course's one source of the lab."""
        from docklab.checks import course_source

        path = course_source(self.id) / name
        if not path.is_file():
            raise DocklabError(f"The lab file {path} is missing.",
                               "Run docklab from a checkout of the course (grader/source/ holds "
                               "every lab), or set DOCKLAB_COURSE to that checkout.")
        return path

    def check(self, answer: str | os.PathLike, *, limits=None, client=None, sealed=None,
              hidden: bool = False, cached: bool = False, keep_cache: bool = True) -> Report:
        """Judge the answer at ``answer`` (a build-context folder or a notebook) → Report.

        ``sealed`` (a :class:`~docklab.grading.sealed.SealedEngine`) judges on that engine, with
        the course images by the IDs it loaded and the network its proxy allows; otherwise on
        ``client`` (default: the learner's engine). ``hidden=True`` adds the hidden tests.
        ``cached=True`` reuses the report of an identical answer judged earlier in this process
        (nbgrader test cells each ask for the same report; the image is built once).
        ``keep_cache=False`` also removes the answer's step images (the engine's layer cache).
        """
        from docklab.checks.answer import open_answer
        from docklab.checks.sandbox import Limits, Sandbox
        from docklab.engine import connect

        limits = limits or Limits.from_env()
        if sealed is not None:
            client = sealed.client
            engine = {"references": sealed.references, "build_args": sealed.build_args,
                      "disposable": True}
        else:
            client = client or connect()
            engine = {}
        with open_answer(answer, {name: self.lab_file(name) for name in self.files},
                         limits=limits) as prepared:
            key = prepared.fingerprint(extra=repr((limits, hidden, sealed is not None)))
            if cached and key in self._cache:
                return self._cache[key]
            try:
                with Sandbox(client, f"grade-{self.id}", limits, keep_cache=keep_cache,
                             helper_image=self.base_image, **engine) as sandbox:
                    verdicts = self._judge(sandbox=sandbox, answer=prepared, lab=self)
                    details = sandbox.details  # close() adds what it removed
            except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
                # A learner's answer never gets here (the sandbox turns its failures into
                # feedback): this is the engine failing the grader.
                raise EngineError(f"The engine failed while grading {self.id}: {exc}",
                                  "Check the engine (`docklab doctor`), then grade again.") from exc
            as_written: set[str] = set()
            if hidden:
                stricter = self.with_hidden(verdicts, details)
                as_written = {i for i in stricter if stricter[i] is not verdicts.get(i)}
                verdicts = stricter
            report = self.report(verdicts, details=details, as_written=as_written)
            self._cache[key] = report
            while len(self._cache) > 64:  # a learner re-checks many versions in one kernel
                self._cache.pop(next(iter(self._cache)))
            return report

    def grade(self, answer: str | os.PathLike = ".", **kwargs) -> Report:
        """What an nbgrader test cell asks in a kernel: the report on ``answer``, judged once per
        identical answer in this process (each test cell asks for the same report)."""
        kwargs.setdefault("cached", True)
        return self.check(answer, **kwargs)

    def self_check(self, answer: str | os.PathLike = ".") -> Report:
        """What the learner runs before handing in: the same checks, judged afresh."""
        return self.check(answer, cached=False)

    def with_hidden(self, verdicts: dict[str, Verdict], details: dict) -> dict[str, Verdict]:
        """``verdicts`` with the hidden tests applied: a passed check whose hidden test fails
        fails, with the hidden test's feedback."""
        verdicts = dict(verdicts)
        for check_id, test in self.hidden.items():
            current = verdicts.get(check_id)
            if current is None or not current.passed:
                continue
            stricter = test(details)
            if stricter is not None and not stricter.passed:
                verdicts[check_id] = stricter
        return verdicts

    def clean_up(self, client=None):
        """Remove what an interrupted check of this lab left behind: this learner's, by label.

        Equivalent CLI: ``docklab clean --lesson grade-<lab>`` (and ``--lesson <lab>``).
        """
        from docklab import labels
        from docklab.engine import connect

        client = client or connect()
        removed = labels.Removed()
        for lesson in (f"grade-{self.id}", self.id):
            found = labels.remove_labelled(client, lesson=lesson, learner=labels.learner_name())
            for kind, names in found.as_dict().items():
                getattr(removed, kind).extend(names)
        return removed

    def cached(self, answer: str | os.PathLike, *, limits=None) -> Report | None:
        """The report of an identical answer judged earlier in this process, if there is one."""
        from docklab.checks.answer import open_answer
        from docklab.checks.sandbox import Limits

        limits = limits or Limits.from_env()
        with open_answer(answer, {name: self.lab_file(name) for name in self.files},
                         limits=limits) as prepared:
            return self._cache.get(prepared.fingerprint(extra=repr((limits, False, False))))

    def report(self, verdicts: dict[str, Verdict], *, details: dict | None = None,
               as_written: Collection[str] = ()) -> Report:
        """Verdicts → a Report in the criteria's order; missing verdicts fail as not judged.

        A failed judged verdict ends with where to reread (its check's topic in the lab's
        lesson), except on the checks in ``as_written``: a hidden test's verdict names its own.
        """
        unknown = set(verdicts) - set(self.check_ids)
        if unknown:
            raise ValueError(f"{self.id}: verdicts for unknown checks {sorted(unknown)}")
        checks = []
        for criterion in self.criteria:
            verdict = verdicts.get(criterion.id) or unjudged(
                "the grader stopped before it got here.")
            feedback = verdict.feedback
            topic = self.topics.get(criterion.id)
            if (not verdict.passed and verdict.judged and topic and self.lesson
                    and criterion.id not in as_written):
                feedback = f"{feedback} (Lesson {self.lesson}: {topic}.)"
            checks.append(Check(criterion.id, criterion.points, verdict.passed,
                                feedback, criterion.title, judged=verdict.judged))
        return Report(self.id, checks, details or {})


def not_judged(lab: Lab, reason: str, *, only_needing_image: bool = True,
               skip: tuple[str, ...] = ()) -> dict[str, Verdict]:
    """Verdicts for every criterion that cannot be looked at, saying why."""
    return {c.id: unjudged(reason) for c in lab.criteria
            if c.id not in skip and (c.needs_image or not only_needing_image)}


def unjudged(reason: str) -> Verdict:
    """A failed verdict on a criterion that could not be looked at, saying why."""
    return Verdict(False, f"Not judged: {reason}", judged=False)


def fingerprint(files: dict[str, bytes], extra: str = "") -> str:
    """A digest of an answer's files (name → content), to reuse a report for identical work."""
    digest = hashlib.sha256(extra.encode())
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()
