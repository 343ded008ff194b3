"""Choosing another engine (the connect panel's logic) against the real engine over tcp://."""

import json
import os

import pytest

from docklab import engine
from docklab.errors import EngineUnavailable
from docklab.widgets.connect import ConnectPanel

pytestmark = pytest.mark.engine


ENGINE_VARS = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKLAB_ENGINE_FILE")


@pytest.fixture
def engine_env(tmp_path):
    # use_engine sets os.environ itself, as it must for the learner: put everything back by hand,
    # or the other tests (and the notebooks they start) would talk to a closed tcp:// port.
    before = {var: os.environ.pop(var, None) for var in ENGINE_VARS}
    os.environ["DOCKLAB_ENGINE_FILE"] = str(tmp_path / "engine.json")
    yield tmp_path / "engine.json"
    for var, value in before.items():
        os.environ.pop(var, None)
        if value is not None:
            os.environ[var] = value
    engine.connect(fresh=True)  # back to the default engine for the other tests


def test_use_engine_connects_over_tcp_and_remembers_it(engine_env, tcp_engine):
    client = engine.use_engine(tcp_engine.docker_host)
    assert client.ping() and tcp_engine.connections > 0
    assert json.loads(engine_env.read_text())["DOCKER_HOST"] == tcp_engine.docker_host
    # Another kernel (no DOCKER_HOST in its environment) picks the saved engine up.
    del os.environ["DOCKER_HOST"]
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
