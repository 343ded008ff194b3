"""docklab.engine against the real engine, and its errors from the docklab command."""

import socket

import pytest

from docklab import engine
from tests.conftest import run_docklab

pytestmark = pytest.mark.engine


def test_connect_negotiates_the_engines_api_version(client):
    # version="auto": the client speaks exactly what the engine offers, never a pinned number.
    assert client.api.api_version == client.version()["ApiVersion"]
    summary = engine.engine_summary(client)
    assert summary["version"] and summary["storage_driver"]


def test_permission_denied_on_the_socket_names_the_docker_group(tmp_path):
    # A real socket the kernel refuses: mode 000, and the CLI runs without root's DAC override.
    path = tmp_path / "denied.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    path.chmod(0)
    try:
        result = run_docklab("clean", env={"DOCKER_HOST": f"unix://{path}"},
                             prefix=["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                                     "--inh-caps=-all"])
    finally:
        server.close()
    assert result.returncode == 2
    assert "Permission denied" in result.stderr
    assert "docker group" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_engine_gives_a_message_not_a_traceback(tmp_path):
    result = run_docklab("clean", "--yes", env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    assert result.returncode == 2
    assert "No Docker Engine answers" in result.stderr and "DOCKER_HOST" in result.stderr
    assert "Traceback" not in result.stderr
