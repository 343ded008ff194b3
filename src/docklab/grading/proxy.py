"""The only way out of a sealed engine: an HTTP proxy on a unix socket that allows named hosts.

A sealed engine's container has no network (``--network none``); its rootless dockerd reaches the
outside through slirp4netns, which can only connect to the sandbox container's own loopback. There,
``socat`` relays 127.0.0.1:3128 to this proxy's unix socket, mounted from the grading host. So a
grading build's ``apt-get`` (given ``http_proxy=http://10.0.2.2:3128``) reaches exactly the hosts a
lab needs, e.g. ``deb.debian.org``, and nothing else: not the host, its other sandboxes, the LAN or
the cloud metadata address (169.254.169.254).

Two requests are understood, as any HTTP proxy does: ``CONNECT host:port`` (HTTPS) and a request
line with an absolute URL (``GET http://host/path HTTP/1.1``). A host must be on the allow list by
name (an IP literal never is), the port must be 80 or 443, and its address must not be loopback,
link-local or unspecified, whatever the name resolves to. Everything refused gets ``403`` with the
reason, which ends up in the build log the learner's feedback quotes.

Written here rather than taken from a library: it is the trust boundary of grading, ~150 lines
that can be read in one sitting, and no proxy on PyPI listens on a unix socket with an allow list
of names and an address check out of the box.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import threading
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

#: Debian's package mirror: what ``apt-get update && apt-get install`` in a lab's build needs.
DEBIAN_MIRROR = ("deb.debian.org", "security.debian.org")
#: The port socat listens on inside the sealed engine's container, and the address inner
#: containers reach it at (slirp4netns maps 10.0.2.2 to that container's loopback).
INNER_PORT = 3128
INNER_URL = f"http://10.0.2.2:{INNER_PORT}"
_PORTS = (80, 443)
_HEADER_LIMIT = 64 * 1024


def build_proxy_args() -> dict[str, str]:
    """Build arguments that send a build's HTTP(S) through the proxy (predefined: not in history)."""
    return {name: INNER_URL for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}


class Refused(Exception):
    """A request the proxy does not forward; the message says why."""


def _forbidden_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast


class AllowListProxy:
    """An HTTP proxy on a unix socket, forwarding only to ``hosts`` on ports 80 and 443.

    Runs its own event loop in a thread: ``start()`` / ``close()``, or use it as a context manager.
    ``log`` lists what was allowed and refused (``"ALLOW deb.debian.org:80"``), for instructors.
    """

    def __init__(self, socket_path: str | os.PathLike, hosts: Iterable[str]):
        self.socket_path = Path(socket_path)
        self.hosts = frozenset(h.lower() for h in hosts)
        self.log: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None

    def __enter__(self) -> AllowListProxy:  # noqa: PYI034
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_unix_server(self._handle, path=str(self.socket_path)))
                # Inner containers connect as an unprivileged uid of the sandbox.
                os.chmod(self.socket_path, 0o666)
            except BaseException as exc:  # noqa: BLE001 - handed to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=serve, name="docklab-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]

    def close(self) -> None:
        loop, server = self._loop, self._server
        if loop is None:
            return

        async def stop() -> None:
            if server is not None:
                server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(stop(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None
        with contextlib.suppress(OSError):
            self.socket_path.unlink()

    # -- one client ---------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_writer = None
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            if len(head) > _HEADER_LIMIT:
                raise Refused("request headers too large")
            method, target, version = self._request_line(head)
            if method == "CONNECT":
                host, port = self._split_host_port(target, default=443)
                forward = b""
            else:
                parts = urlsplit(target)
                if parts.scheme != "http" or not parts.hostname:
                    raise Refused("only absolute http:// URLs and CONNECT are proxied")
                host, port = parts.hostname, parts.port or 80
                path = parts.path or "/"
                if parts.query:
                    path += "?" + parts.query
                rest = head.split(b"\r\n", 1)[1]
                forward = f"{method} {path} {version}\r\n".encode() + rest
            address = await self._allowed(host, port)
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(address, port), 30)
            self.log.append(f"ALLOW {host}:{port}")
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream_writer.write(forward)
            await asyncio.gather(self._pipe(reader, upstream_writer),
                                 self._pipe(upstream_reader, writer))
        except Refused as exc:
            self.log.append(f"REFUSE {exc}")
            body = f"docklab grading proxy: {exc}\n".encode()
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                         b"Connection: close\r\nContent-Length: " + str(len(body)).encode()
                         + b"\r\n\r\n" + body)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            self.log.append(f"ERROR {exc.__class__.__name__}: {exc}")
        finally:
            for stream in (writer, upstream_writer):
                if stream is not None:
                    with contextlib.suppress(Exception):
                        stream.close()

    @staticmethod
    def _request_line(head: bytes) -> tuple[str, str, str]:
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise Refused(f"not an HTTP proxy request: {line[:80]!r}")
        return parts[0].upper(), parts[1], parts[2]

    @staticmethod
    def _split_host_port(target: str, default: int) -> tuple[str, int]:
        host, _, port = target.rpartition(":")
        if not host:
            return target, default
        try:
            return host.strip("[]"), int(port)
        except ValueError as exc:
            raise Refused(f"bad port in {target!r}") from exc

    async def _allowed(self, host: str, port: int) -> str:
        """The address to connect to for ``host:port``, or Refused saying why not."""
        name = host.lower().rstrip(".")
        if name not in self.hosts:
            allowed = ", ".join(sorted(self.hosts)) or "no host at all"
            raise Refused(f"{host} is not a host this lab may reach while graded (allowed: "
                          f"{allowed})")
        if port not in _PORTS:
            raise Refused(f"port {port} of {host}: only 80 and 443 are proxied")
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise Refused(f"{host} does not resolve ({exc})") from exc
        for *_, sockaddr in infos:
            if not _forbidden_address(sockaddr[0]):
                return sockaddr[0]
        raise Refused(f"{host} resolves only to loopback or link-local addresses")

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
