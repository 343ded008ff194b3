"""Assertions the labs' tests share: what a report fails and says, and that grading left nothing
labelled behind."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest

from docklab import labels
from docklab.checks import get_lab


def failing(report) -> set[str]:
    return {check.id for check in report.checks if not check.passed}


def assert_fails_exactly(report, expected: set[str]) -> None:
    """``report`` fails exactly ``expected``, says something about each, and scores the rest."""
    assert failing(report) == expected, report.table()
    for check in report.checks:
        if not check.passed:
            assert check.feedback, check.id
    assert report.score == report.max_score - sum(report[i].points for i in expected)


def first_failing(report, expected: set[str]):
    """The first of ``expected`` in the lab's order: the one a learner reads first."""
    return next(check for check in report.checks if check.id in expected)


def assert_fails_saying(report, expected: set[str], words: str, lesson: str) -> None:
    """:func:`assert_fails_exactly`, and the first failing check names what to fix and the
    lesson to reread, or, not judged, says so instead of sending the learner to a lesson."""
    assert_fails_exactly(report, expected)
    first = first_failing(report, expected)
    assert words in first.feedback, report.table()
    if first.judged:
        assert f"Lesson {lesson}" in first.feedback, first.feedback
    else:
        assert first.feedback.startswith("Not judged"), first.feedback


def assert_nothing_labelled_left(client: docker.DockerClient, **scope: str) -> None:
    """Nothing labelled in ``scope`` (lesson, learner) is left on the engine."""
    left = labels.find_labelled(client, **scope)
    assert not any(left.values()), f"left behind: {left}"


def check_each(client: docker.DockerClient, lab: str, folders: dict[str, Path]) -> tuple[dict, str]:
    """Every answer folder checked once, three side by side, under a learner name of their own
    (so that what they leave is theirs); nothing labelled may be left behind. Returns the reports
    by name, and that learner name."""
    learner = f"test-{lab}-{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCKLAB_LEARNER", learner)
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = {name: pool.submit(get_lab(lab).check, folder)
                       for name, folder in folders.items()}
            reports = {name: future.result() for name, future in futures.items()}
    assert_nothing_labelled_left(client, learner=learner)
    return reports, learner


def assert_only_the_hidden_test_fails(lab, folder: Path, hidden_test, check_id: str, words: str,
                                      score: int) -> None:
    """Every visible check passes ``folder``; the notebook's hidden assert, ``hidden_test``, fails
    saying ``words``, and so does grading's hidden test (the same function, reading the recorded
    details), which takes ``check_id``'s points and names its own lesson once."""
    report = lab.check(folder)
    assert report.all_passed, report.table()
    with pytest.raises(AssertionError, match=words):
        hidden_test(folder)
    hidden = lab.check(folder, hidden=True)
    assert not hidden[check_id].passed and hidden.score == score
    assert words in hidden[check_id].feedback
    assert hidden[check_id].feedback.count("(Lesson ") == 1
