"""BuildKit through the docker CLI (its buildx plugin, which `make engine` installs where the CLI
lacks it): a secret lent to one ``RUN`` step with ``--mount=type=secret`` is in no layer and not in
the image's history, while a build argument's value is recorded in the history by BuildKit as by the
legacy builder. 06-security teaches this; here it is shown on the host engine with the CLI alone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid

import pytest

from docklab import labels as L
from docklab.docker_cells import docker_cli

pytestmark = pytest.mark.engine

LESSON = "test-buildkit"
ARG_TOKEN = "arg-token-1234"
MOUNT_TOKEN = "mount-token-5678"

DOCKERFILE = """\
FROM busybox
ARG NPM_TOKEN
RUN echo "installing with $NPM_TOKEN" > /dev/null
RUN --mount=type=secret,id=npm_token wc -c < /run/secrets/npm_token > /token-length
"""


def _build(context, tag: str, *extra: str) -> subprocess.CompletedProcess:
    label_flags = [flag for key, value in L.labels_for(LESSON, kind="image").items()
                   for flag in ("--label", f"{key}={value}")]
    return subprocess.run(
        [docker_cli(), "build", "--progress=plain", *label_flags, *extra, "-t", tag, str(context)],
        check=False, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        env={**os.environ, "MOUNT_TOKEN": MOUNT_TOKEN})


@pytest.fixture
def labelled(client):
    yield
    L.remove_labelled(client, lesson=LESSON, session=L.session_id())


def test_a_build_secret_stays_out_of_the_image_while_a_build_argument_leaks(client, tmp_path,
                                                                            labelled):
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    tag = f"docklab-test-buildkit:{uuid.uuid4().hex[:8]}"
    built = _build(tmp_path, tag, "--build-arg", f"NPM_TOKEN={ARG_TOKEN}",
                   "--secret", "id=npm_token,env=MOUNT_TOKEN")
    assert built.returncode == 0, built.stdout + built.stderr
    output = built.stdout + built.stderr
    # BuildKit's progress; which internal load is #1 (the Dockerfile or .dockerignore) varies.
    assert re.search(r"^#\d+ \[internal\] load build definition", output, re.MULTILINE), output
    assert "Step 1/" not in output  # not the legacy builder's

    image = client.images.get(tag)
    history = json.dumps(image.history())
    assert ARG_TOKEN in history  # the build argument is recorded, in clear text
    assert MOUNT_TOKEN not in history
    saved = b"".join(image.save(named=False))  # every layer and the configuration
    assert MOUNT_TOKEN.encode() not in saved
    # The step did read the secret: it wrote the secret's length into the image.
    length = client.containers.run(image.id, ["cat", "/token-length"], remove=True,
                                   labels=L.labels_for(LESSON, kind="container"))
    assert length.decode().strip() == str(len(MOUNT_TOKEN))


def test_a_secret_mount_without_its_secret_fails_the_build_with_a_message(tmp_path, labelled):
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nRUN --mount=type=secret,id=npm_token,required=true cat /run/secrets/npm_token\n")
    built = _build(tmp_path, f"docklab-test-buildkit:{uuid.uuid4().hex[:8]}")
    assert built.returncode != 0
    assert "npm_token" in built.stdout + built.stderr
