"""No-engine mode, without an engine: the lesson opens, says how to connect, errors stay short."""

import pytest

from docklab import lesson as lesson_mod
from docklab import no_engine
from docklab.errors import EngineUnavailable


def test_a_lesson_starts_without_an_engine_and_says_how_to_connect(monkeypatch, tmp_path,
                                                                     capsys):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    monkeypatch.setattr(no_engine, "_announced", False)
    lesson = lesson_mod.start("no-engine-test")
    out = capsys.readouterr().out
    assert "DOCKER_HOST" in out and "make lab" in out and "Binder" in out
    with pytest.raises(EngineUnavailable):
        lesson.client.containers.list()
    with pytest.raises(EngineUnavailable):
        lesson.run("busybox", "true")
    lesson_mod.start("no-engine-test-2")  # announced once per kernel, not per lesson
    assert "DOCKER_HOST" not in capsys.readouterr().out


def test_the_short_message_names_the_problem():
    exc = EngineUnavailable("No Docker Engine answers at unix:///x: gone.", "hint")
    assert no_engine.short_message(exc) == (
        "No Docker Engine for this cell: No Docker Engine answers at unix:///x: gone.")
