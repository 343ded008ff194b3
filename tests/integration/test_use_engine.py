"""Choosing another engine (the connect panel's logic) against the real engine over tcp://."""

import json
import os

import pytest

from docklab import engine
from docklab.errors import EngineUnavailable
from docklab.widgets.connect import ConnectPanel

pytestmark = pytest.mark.engine


@pytest.fixture
def engine_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKLAB_ENGINE_FILE", str(tmp_path / "engine.json"))
    for var in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        monkeypatch.delenv(var, raising=False)
    yield tmp_path / "engine.json"
    engine.connect(fresh=True)  # back to the default engine for the other tests


def test_use_engine_connects_over_tcp_and_remembers_it(engine_env, tcp_engine, monkeypatch):
    client = engine.use_engine(tcp_engine.docker_host)
    assert client.ping() and tcp_engine.connections > 0
    assert json.loads(engine_env.read_text())["DOCKER_HOST"] == tcp_engine.docker_host
    # Another kernel (no DOCKER_HOST in its environment) picks the saved engine up.
    monkeypatch.delenv("DOCKER_HOST")
    before = tcp_engine.connections
    engine.connect(fresh=True).ping()
    assert os.environ["DOCKER_HOST"] == tcp_engine.docker_host
    assert tcp_engine.connections > before


def test_a_wrong_engine_keeps_the_previous_settings(engine_env):
    with pytest.raises(EngineUnavailable):
        engine.use_engine("tcp://127.0.0.1:1")
    assert "DOCKER_HOST" not in os.environ and not engine_env.exists()


def test_the_connect_panel_reports_success_and_failure(engine_env, tcp_engine):
    panel = ConnectPanel()
    panel.host.value = "tcp://127.0.0.1:1"
    assert panel.try_engine() is False
    assert "connection refused" in panel.result.value and "DOCKER_HOST" in panel.result.value
    panel.host.value = tcp_engine.docker_host
    assert panel.try_engine() is True
    assert "Docker Engine" in panel.result.value
    panel.forget()
    assert not engine_env.exists()
