"""The grading proxy refuses what a lab may not reach, before it connects anywhere."""

from __future__ import annotations

import socket

import pytest

from docklab.grading.proxy import AllowListProxy


def _ask(path, request: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(10)
        conn.connect(str(path))
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(4096):
            data += chunk
        return data


@pytest.fixture
def proxy(tmp_path):
    with AllowListProxy(tmp_path / "proxy.sock", ["deb.debian.org", "localhost"]) as running:
        yield running


@pytest.mark.parametrize(("request_line", "why"), [
    (b"GET http://169.254.169.254/latest/meta-data/ HTTP/1.1", b"not a host this lab may reach"),
    (b"CONNECT 10.0.0.1:443 HTTP/1.1", b"not a host this lab may reach"),
    (b"GET http://example.com/ HTTP/1.1", b"not a host this lab may reach"),
    (b"CONNECT deb.debian.org:22 HTTP/1.1", b"only 80 and 443"),
    (b"GET http://localhost/ HTTP/1.1", b"loopback or link-local"),
    (b"GET /relative HTTP/1.1", b"only absolute http:// URLs"),
    (b"hello", b"not an HTTP proxy request"),
])
def test_requests_outside_the_allow_list_are_refused(proxy, request_line, why):
    answer = _ask(proxy.socket_path, request_line + b"\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403")
    assert why in answer
    assert proxy.log[-1].startswith("REFUSE")


def test_closing_removes_the_socket(tmp_path):
    proxy = AllowListProxy(tmp_path / "p.sock", [])
    proxy.start()
    assert (tmp_path / "p.sock").is_socket()
    proxy.close()
    assert not (tmp_path / "p.sock").exists()
