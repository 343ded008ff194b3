"""Helpers shared by the visualizers' integration tests."""

from __future__ import annotations

import time

import pytest

from docklab.lesson import Lesson


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except (KeyError, IndexError, TypeError):
            pass
        time.sleep(interval)
    return False


@pytest.fixture
def lesson(client, learner_env):
    """A lesson whose resources carry this test's learner name; everything is removed after."""
    lesson = Lesson("test-widgets", client)
    yield lesson
    lesson.cleanup()
