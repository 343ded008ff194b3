"""The views' tests (tests/integration/test_widgets_*.py) against each engine of the matrix: the
same tests, run by pytest in a process of their own with DOCKER_HOST pointing at the engine.

Two are left out here, since they reach what the engine publishes on 127.0.0.1 of this machine, and
a Docker-in-Docker engine publishes on its own container's: the registry view read from the kernel
(``[kernel]``; its ``[engine]`` twin, which asks through a helper container, runs) and the swarm
view's tests, whose Docker-in-Docker managers are reached through published ports. 11-orchestration
shows the swarm view on every engine of the matrix (test_engine_matrix.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engines.conftest import MATRIX, OWNER

pytestmark = pytest.mark.engine

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
#: Reach the engine's published ports from this machine (see above).
PUBLISHED_HERE = {"test_widgets_swarm.py"}
VIEW_TESTS = [str(p) for p in sorted(INTEGRATION.glob("test_widgets_*.py"))
              if p.name not in PUBLISHED_HERE]


@pytest.mark.parametrize("name", list(MATRIX))
def test_views_on_engine(started_engines, name: str):
    engine = started_engines(name)
    env = {**os.environ, "DOCKER_HOST": engine.docker_host, "DOCKLAB_LEARNER": f"{OWNER}-{name}"}
    env.pop("DOCKER_TLS_VERIFY", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-k", "not kernel", *VIEW_TESTS],
        check=False, capture_output=True, text=True, timeout=1200, env=env,
        stdin=subprocess.DEVNULL)
    assert result.returncode == 0, (
        f"the views' tests failed on engine {name}:\n{result.stdout[-6000:]}{result.stderr[-2000:]}")
