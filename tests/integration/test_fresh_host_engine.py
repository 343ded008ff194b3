"""scripts/ensure-engine.sh (`make engine`) on a fresh Debian 12 host: it installs a current engine
from Debian's packages, and an engine already installed is started as it is, never replaced.

Each "host" is a container of the host engine (tests/integration/_fresh_host.py); the first test
downloads about 100 MB from the host's Debian mirror.
"""

from __future__ import annotations

import re

import pytest

from tests.integration._fresh_host import ensure_engine, fresh_host, run

pytestmark = pytest.mark.engine

#: What the script installs on Debian 12 (scripts/ensure-engine.sh says why trixie).
EXPECTED_MAJOR = 26
EXPECTED_LINE = "installing Engine 26.1 from Debian trixie's packages"


def _major(version: str) -> int:
    return int(version.split(".")[0])


def _answer(host, command: str) -> str:
    result = run(host, command, timeout=120)
    assert result.exit_code == 0, f"{command}: {result.output}"
    return result.output.strip()


def test_a_fresh_debian_12_host_gets_a_current_engine_with_buildkit_once(client):
    with fresh_host(client, "debian:12") as host:
        assert run(host, "command -v dockerd").exit_code != 0  # nothing installed yet

        first = ensure_engine(host)
        assert first.exit_code == 0, first.output
        assert EXPECTED_LINE in first.output, first.output
        assert "engine is up" in first.output

        version = _answer(host, "docker version --format '{{.Server.Version}}'")
        assert _major(version) >= EXPECTED_MAJOR, version
        assert _answer(host, "docker buildx version").startswith("github.com/docker/buildx ")
        assert _buildx_minor(host) >= 15  # trixie's 0.13 package, then sid's plugin over it
        # BuildKit builds through the CLI (FROM scratch: nothing to pull).
        _answer(host, "mkdir /ctx && cd /ctx && echo hi >f && printf 'FROM scratch\\nCOPY f /f\\n'"
                      " >Dockerfile && docker buildx build -q -t fresh-host-check .")
        # Only the engine's own packages came from trixie: runc and libc are bookworm's.
        packages = dict(line.split() for line in _answer(
            host, "dpkg-query -W -f '${Package} ${Version}\\n' docker.io runc libc6").splitlines())
        assert "deb13" in packages["docker.io"]
        assert "deb12" in packages["runc"] and packages["libc6"].startswith("2.36-")
        # No apt source left behind.
        assert "trixie" not in _answer(host, "cat /etc/apt/sources.list.d/* /etc/apt/sources.list"
                                             " 2>/dev/null || true")

        installs = _answer(host, "wc -l </var/log/dpkg.log")
        second = ensure_engine(host)
        assert second.exit_code == 0 and second.output == "", second.output
        assert second.seconds < 5
        assert _answer(host, "wc -l </var/log/dpkg.log") == installs


def test_an_installed_end_of_life_engine_is_started_as_it_is_never_replaced(client):
    # docklab/engine:20 is Debian 12 with its docker.io 20.10 installed (here not started).
    with fresh_host(client, "docklab/engine:20") as host:
        installs = _answer(host, "wc -l </var/log/dpkg.log")
        result = ensure_engine(host)
        assert result.exit_code == 0, result.output
        assert "starting dockerd" in result.output and "installing" not in result.output
        assert _answer(host, "docker version --format '{{.Server.Version}}'").startswith("20.10.")
        # 20.10's CLI has no buildx: only the plugin's binary came, from Debian's docker-buildx
        # (sid's, >= 0.15: it has --check); no package was installed; BuildKit builds on 20.10.
        assert re.search(r"installed github\.com/docker/buildx 0\.(\d+)", result.output), result.output
        assert _buildx_minor(host) >= 15
        assert _answer(host, "wc -l </var/log/dpkg.log") == installs
        built = run(host, "mkdir /ctx && cd /ctx && printf 'FROM scratch\\nCOPY Dockerfile /\\n'"
                          " >Dockerfile && docker buildx build -q -t eol-check .")
        assert built.exit_code == 0, built.output


def _buildx_minor(host) -> int:
    """29 for ``github.com/docker/buildx 0.29.1+ds1 …``."""
    return int(_answer(host, "docker buildx version").split()[1].lstrip("v").split(".")[1])
