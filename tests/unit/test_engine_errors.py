"""Error translation in docklab.engine, against tiny local sockets (no Docker Engine needed)."""

import json
import socket
import threading

import pytest

from docklab import engine
from docklab.errors import EngineTooOld, EngineUnavailable


def _serve_version(path, api_version):
    """A unix socket that answers every HTTP request with a /version body."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    body = json.dumps({"ApiVersion": api_version, "Version": "1.0"}).encode()

    def loop():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                             % (len(body), body))

    threading.Thread(target=loop, daemon=True).start()
    return server


def test_missing_socket_says_how_to_start_an_engine(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    with pytest.raises(EngineUnavailable) as err:
        engine.connect(fresh=True)
    assert "socket does not exist" in err.value.message
    assert "DOCKER_HOST" in err.value.hint
    assert "Docker Desktop" in err.value.hint


def test_refused_tcp_port_is_reported_as_refused(monkeypatch):
    with socket.socket() as s:  # find a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{port}")
    with pytest.raises(EngineUnavailable) as err:
        engine.connect(fresh=True)
    assert "connection refused" in err.value.message


def test_an_engine_with_an_old_api_is_refused_with_an_upgrade_hint(monkeypatch, tmp_path):
    sock = tmp_path / "old.sock"
    server = _serve_version(sock, "1.30")
    try:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
        with pytest.raises(EngineTooOld) as err:
            engine.connect(fresh=True)
        assert "1.30" in err.value.message and engine.MIN_API_VERSION in err.value.message
        assert "Upgrade" in err.value.hint
    finally:
        server.close()


def test_error_text_shows_message_and_hint():
    err = EngineUnavailable("nothing here", "start it")
    assert str(err) == "nothing here\n  → start it"
