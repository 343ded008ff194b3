"""The sealed judge's bounds, one runaway or escaping build (or sandbox) at a time, on real
sealed engines: a fork bomb, a disk filler, an output flood, an endless build, a BuildKit-only
Dockerfile, the cloud metadata address, the grading host's own ports and kernel settings, the
sandbox's rootless and offline engine, and its wall clock.

These run beside the other tests (test_sealed.py, which compares the whole engine, runs alone): a
sandbox makes nothing on the host but its one labelled container (its network is none, its data
root and /var/lib/docker are tmpfs), so each test checks that nothing labelled with its own learner
is left.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from docklab import labels
from docklab.checks.sandbox import Limits
from docklab.grading.judge import judge_cells
from docklab.grading.sealed import SealedLimits

pytestmark = pytest.mark.engine

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def leaves_nothing(client, learner_env):
    """Each test's sandboxes are labelled with its own learner; none may be left afterwards."""
    yield
    left = labels.find_labelled(client, learner=learner_env)
    assert not any(left.values()), left


def _dockerfile(text: str) -> dict[str, str]:
    return {"dockerfile": "%%writefile Dockerfile\n" + text}


SMALL = SealedLimits(pids=200, disk=512 * MiB, memory=1536 * MiB)


def _judge(dockerfile: str, **limits):
    return judge_cells("mobysay", _dockerfile(dockerfile), sealed_limits=SMALL,
                       limits=Limits(**{"build_timeout": 20.0, **limits}))


def test_a_fork_bomb_stops_the_sandbox_at_its_pids_bound():
    started = time.monotonic()
    report = _judge('FROM debian:12\nRUN bash -c "f(){ f|f & }; f; sleep 100"\n')
    assert report.details["stopped_at"] == "pids"
    assert report.score == 0 and "process limit" in report["builds"].feedback
    assert time.monotonic() - started < 60


def test_a_disk_filler_stops_at_the_sandbox_disk():
    report = _judge("FROM debian:12\nRUN dd if=/dev/zero of=/fill bs=1M count=2000\n")
    assert not report["builds"].passed
    assert "No space left on device" in report["builds"].feedback


def test_an_output_flood_stops_at_the_log_bound():
    report = _judge("FROM debian:12\nRUN yes\n")
    assert "printed more than" in report["builds"].feedback  # 2 MiB, or BuildKit clipped it


def test_an_endless_build_stops_at_the_build_timeout():
    started = time.monotonic()
    report = _judge("FROM debian:12\nRUN sleep 100000\n", build_timeout=10.0)
    assert "did not finish within 10 s" in report["builds"].feedback
    assert time.monotonic() - started < 60


def test_a_buildkit_only_dockerfile_grades_as_it_builds_for_the_learner():
    # A cache mount and a heredoc: what `docker build` (BuildKit) takes and the legacy builder
    # refuses. The sealed engine's BuildKit builds it, through the proxy, with every bound.
    from tests.integration.test_sandbox_builders import BUILDKIT_ONLY

    report = judge_cells("mobysay", _dockerfile(BUILDKIT_ONLY))
    assert report.details["builder"] == "buildkit"
    assert report.score == report.max_score == 10, report.table()


def test_add_from_the_metadata_address_fails():
    report = _judge("FROM debian:12\nADD http://169.254.169.254/latest/meta-data/ /m\n")
    assert not report["builds"].passed
    assert "169.254.169.254" in report["builds"].feedback


class _Listener:
    """A TCP service on every address of the grading host; counts who connects."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen()
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nhost-secret\n")
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def test_the_hosts_own_ports_are_out_of_reach(client):
    # Every IPv4 address of the grading host but loopback: docker0's gateway, the LAN's.
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True,
                           check=True).stdout
    addresses = {line.split()[3].split("/")[0] for line in shown.splitlines()} - {"127.0.0.1"}
    assert addresses
    gateway = min(addresses)
    listener = _Listener()
    try:
        lines = ["FROM debian:12"]
        for address in sorted(addresses):
            url = f"{address}:{listener.port}"
            lines += [
                # straight out, from a RUN
                f"RUN bash -c 'exec 3<>/dev/tcp/{address}/{listener.port} && cat <&3' || true",
                # through the grading proxy, as CONNECT and as a plain proxied GET
                (f"RUN bash -c 'exec 3<>/dev/tcp/10.0.2.2/3128 && printf \"CONNECT {url} "
                 "HTTP/1.1\\r\\n\\r\\n\" >&3 && head -c 300 <&3' || true"),
                (f"RUN bash -c 'exec 3<>/dev/tcp/10.0.2.2/3128 && printf \"GET http://{url}/ "
                 "HTTP/1.1\\r\\n\\r\\n\" >&3 && head -c 300 <&3' || true"),
            ]
        report = _judge("\n".join(lines) + "\n")
        # Apart: BuildKit fetches an ADD's URL before it runs the RUNs above, and stops there.
        added = _judge(f"FROM debian:12\nADD http://{gateway}:{listener.port}/secret /secret\n")
    finally:
        listener.close()
    assert listener.connections == 0
    assert not added["builds"].passed
    assert any(entry.startswith("REFUSE") for entry in report.details["network"])
    assert not any(entry.startswith("ALLOW") for entry in report.details["network"])


def test_root_in_a_graded_build_cannot_touch_the_hosts_kernel_settings():
    core_pattern = Path("/proc/sys/kernel/core_pattern").read_text()
    report = _judge(
        "FROM debian:12\n"
        "RUN (echo '|/tmp/pwn' > /proc/sys/kernel/core_pattern) 2>&1 || true\n"
        "RUN (mkdir -p /c && mount -t cgroup -o memory cgroup /c "
        "&& echo /tmp/pwn > /c/release_agent) 2>&1 || true\n"
        "RUN (mount -t proc proc /mnt && echo '|/tmp/pwn' > /mnt/sys/kernel/core_pattern) "
        "2>&1 || true\n")
    assert report["builds"].passed, report["builds"].feedback
    assert Path("/proc/sys/kernel/core_pattern").read_text() == core_pattern


def test_the_sealed_engine_is_rootless_and_offline(client):
    from docklab.grading.sealed import SealedEngine

    with SealedEngine(client, images=["busybox"]) as sealed:
        info = sealed.client.info()
        assert any("rootless" in option for option in info["SecurityOptions"])
        assert info["ID"] != client.info()["ID"]
        script = ("timeout 5 wget -qO- http://deb.debian.org/ 2>&1; "
                  "timeout 5 wget -qO- http://1.1.1.1/ 2>&1; true")
        out = sealed.client.containers.run(sealed.references["busybox"], ["sh", "-c", script],
                                           remove=True).decode()
    no_dns, no_route = out.splitlines()[:2]
    assert "bad address" in no_dns
    assert "can't connect" in no_route or "unreachable" in no_route.lower(), no_route


def test_a_sandbox_is_stopped_at_its_wall_clock(client):
    import docker.errors
    import requests.exceptions

    from docklab.grading.sealed import SealedEngine

    started = time.monotonic()
    with SealedEngine(client, images=["busybox"], limits=SealedLimits(wall=8)) as sealed:
        with pytest.raises((docker.errors.APIError, requests.exceptions.RequestException)):
            sealed.client.containers.run(sealed.references["busybox"], ["sleep", "60"],
                                         remove=True)
        assert sealed.bound_hit() == "wall"
    assert time.monotonic() - started < 30


