"""Compose desired vs actual against the real engine and the real Compose v2 binary."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from docklab.compose import compose_binary
from docklab.widgets.compose import ComposeView
from tests.integration._widgets import wait_for

pytestmark = pytest.mark.engine

COMPOSE = """\
services:
  web:
    image: nginx
    deploy:
      replicas: 2
    labels: {org.docklab.test: widgets}
  cache:
    image: redis
    volumes: [data:/data]
    networks: [back]
networks:
  back: {}
volumes:
  data: {}
"""


def test_desired_vs_actual_follows_up_stop_and_down(client, tmp_path):
    project = f"widgets-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / project
    folder.mkdir()
    (folder / "compose.yaml").write_text(COMPOSE)
    compose = [str(compose_binary()), "--project-directory", str(folder)]
    view = ComposeView(client, folder)
    try:
        assert view.project == project
        assert {s["verdict"] for s in view.get_state()["diff"]["services"]} == {"missing"}
        assert view.wait_live(10)
        subprocess.run([*compose, "up", "-d"], check=True, capture_output=True, timeout=180)
        assert wait_for(lambda: view.get_state()["diff"]["in_sync"]), view.get_state()["diff"]
        services = {s["service"]: s for s in view.get_state()["diff"]["services"]}
        assert services["web"]["running"] == 2 and services["cache"]["running"] == 1
        subprocess.run(["docker", "stop", "-t", "0", f"{project}-web-2"], check=True,
                       capture_output=True, timeout=60)
        assert wait_for(lambda: {s["service"]: s["verdict"] for s in
                                 view.get_state()["diff"]["services"]}["web"] == "too few")
        assert "differs" in view.children[-1].value
    finally:
        subprocess.run([*compose, "down", "-v", "-t", "0"], capture_output=True, timeout=180)
        view.close()
    assert client.containers.list(all=True, filters={
        "label": f"com.docker.compose.project={project}"}) == []
