"""Grading builds on the real engine with both builders: BuildKit (what the learner's `docker build`
runs) and the engine's legacy builder (engines or hosts without BuildKit).

On both, a RUN that never ends is stopped at the build's time limit and its process is gone
afterwards (looked for through the engine, in its host's process list), and a RUN that prints
without end at the log cap. Memory, pids and CPU: the builder ``auto`` picks bounds a fork bomb and
a memory hog; on this host's Engine 20.10 that is the legacy builder, because its BuildKit ignores
``--cgroup-parent`` (a test shows it), so BuildKit is graded on sealed engines, bounded as a whole
(tests/grading/test_sealed.py runs the same hostile builds there). A Dockerfile only BuildKit can
build (a cache mount, a heredoc) is graded as it builds for the learner, and labels, the image ID
and cleanup hold on both.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest

from docklab import labels as L
from docklab.checks import mobysay
from docklab.checks.answer import dockerfile_from_notebook
from docklab.checks.sandbox import Limits, Sandbox
from docklab.checks.sandbox import _one_file_context as _context
from tests.labs.answers import answer_folder
from tests.labs.asserts import assert_nothing_labelled_left

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
LESSON = "test-sandbox-builders"
MiB = 1024 * 1024
GOOD, _ = dockerfile_from_notebook(ROOT / "solutions" / "mobysay" / "mobysay.ipynb")
#: The mobysay answer with apt's cache in cache mounts: every BuildKit builds it (20.10's too), the
#: legacy builder refuses it.
CACHE_MOUNT = GOOD.replace(
    "RUN apt-get update \\\n && apt-get install -y --no-install-recommends cowsay\n",
    "RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\\n"
    "    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \\\n"
    "    rm -f /etc/apt/apt.conf.d/docker-clean \\\n"
    " && apt-get update \\\n"
    " && apt-get install -y --no-install-recommends cowsay\n")
#: The same with its commands in a heredoc too: BuildKit's Dockerfile frontend 1.4 or newer
#: (Engine 23+, the sealed engine's 26.1) builds it; 20.10's BuildKit knows no heredoc.
BUILDKIT_ONLY = GOOD.replace(
    "RUN apt-get update \\\n && apt-get install -y --no-install-recommends cowsay\n",
    "RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\\n"
    "    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked <<EOF\n"
    "set -e\n"
    "rm -f /etc/apt/apt.conf.d/docker-clean\n"
    "apt-get update\n"
    "apt-get install -y --no-install-recommends cowsay\n"
    "EOF\n")


@pytest.fixture(params=["buildkit", "legacy"])
def builder(request):
    return request.param


def _processes(client) -> str:
    """Every command line running on the engine's host (``docker run --pid=host busybox ps``)."""
    return client.containers.run("busybox", ["ps", "-o", "args"], pid_mode="host", remove=True,
                                 labels=L.labels_for(LESSON, kind="container")).decode()


def _build(client, builder: str | None, dockerfile: str, **limits):
    with Sandbox(client, LESSON, Limits(**limits), helper_image="debian:12",
                 builder=builder) as sandbox:
        result = sandbox.build(_context(dockerfile))
        details = dict(sandbox.details)
    return result, details


@pytest.fixture
def clean(client, learner_env):
    yield
    assert_nothing_labelled_left(client, lesson=LESSON, learner=learner_env)


def test_auto_takes_buildkit_only_where_its_steps_run_under_the_limited_parent(client, clean):
    with Sandbox(client, LESSON, Limits(), helper_image="debian:12") as sandbox:
        chosen = sandbox.chosen_builder()
        honoured = sandbox.details["buildkit_cgroup_parent"]
    assert chosen == ("buildkit" if honoured else "legacy")
    if client.version()["Version"].startswith("20.10"):
        # Measured: 20.10's BuildKit runs every RUN in /docker/buildkit/<id>, whatever the CLI
        # asks, so its steps would get no memory or pids bound here.
        assert not honoured
    # A sealed engine is bounded as a whole: BuildKit there (the CLI has buildx here).
    assert Sandbox(client, LESSON, disposable=True).chosen_builder() == "buildkit"


def test_an_endless_run_is_stopped_and_its_process_is_gone(client, builder, clean):
    marker = f"sleep 1000 # {uuid.uuid4().hex}"
    started = time.monotonic()
    result, details = _build(client, builder, f"FROM debian:12\nRUN {marker}\n",
                             build_timeout=8)
    assert result.timed_out and not result.ok and result.builder == builder
    assert time.monotonic() - started < 40
    assert details["builder"] == builder
    assert marker not in _processes(client)


def test_a_fork_bomb_stops_at_the_builds_pids_budget(client, clean):
    marker = uuid.uuid4().hex
    bomb = f"RUN i=0; while [ $i -lt 2000 ]; do sleep 60 & i=$((i+1)); done; wait # {marker}"
    started = time.monotonic()
    result, details = _build(client, None, f"FROM debian:12\n{bomb}\n",
                             build_timeout=40, pids=128)
    assert details["build_pids_bounded"], "cgroup v1 + cgroupfs here: a limited parent"
    assert not result.ok and not result.timed_out, result.log[-500:]
    assert "fork" in (result.log + result.error).lower(), result.log[-500:]
    assert time.monotonic() - started < 40
    assert marker not in _processes(client)


def test_a_memory_hog_stops_at_the_builds_memory(client, clean):
    # tail keeps a "line" without a newline in memory: 400 MiB of zeros, under a 64 MiB bound.
    # (tail last: a killed process earlier in a pipe would not fail the RUN.)
    result, _ = _build(client, None, f"FROM debian:12\nRUN head -c 400m /dev/zero | tail "
                       f"> /dev/null # {uuid.uuid4().hex}\n", memory=64 * MiB, build_timeout=60)
    assert not result.ok and not result.timed_out, result.log[-500:]
    assert "137" in result.error or "killed" in result.log.lower(), result.error


def test_a_flood_of_output_stops_at_the_log_cap(client, builder, clean):
    marker = uuid.uuid4().hex
    started = time.monotonic()
    result, _ = _build(client, builder, f"FROM debian:12\nRUN yes # {marker}\n",
                       build_log_bytes=256 * 1024, build_timeout=60)
    assert result.flooded and not result.ok
    assert time.monotonic() - started < 40
    assert marker not in _processes(client)


def test_the_next_check_builds_from_the_cache_under_the_same_limited_parent(client, clean):
    # BuildKit keys a RUN step's cache on its --cgroup-parent too: with a parent made for each
    # build, every check ran every step again (apt-get install in each mobysay check). The
    # second sandbox borrows the first one's parent, so the step's output is the cached one.
    dockerfile = (f"FROM debian:12\nRUN cat /proc/sys/kernel/random/uuid > /made "
                  f"# {uuid.uuid4().hex}\n")
    made = []
    for _ in range(2):
        with Sandbox(client, LESSON, Limits(), helper_image="debian:12",
                     builder="buildkit") as sandbox:
            result = sandbox.build(_context(dockerfile))
            assert result.ok, result.error
            made.append(client.containers.run(result.image_id, ["cat", "/made"], remove=True,
                                              labels=L.labels_for(LESSON, kind="container")))
    assert made[0] == made[1]


def test_a_one_stage_answer_is_one_stage_beside_a_build_sharing_its_step(client, clean,
                                                                           tmp_path):
    # BuildKit runs a step that two builds in flight on one engine both have once, and reports it
    # to both under the first build's name: here "[build 2/2] RUN ...", a stage this answer does
    # not have. Read from the progress, the answer had two stages (a lab check once failed so).
    step = f"RUN sleep 6 && echo {uuid.uuid4().hex} > /made"
    iidfile = tmp_path / "other.iid"
    other = subprocess.Popen(
        ["docker", "buildx", "build", "--progress=plain", "--iidfile", str(iidfile),
         *[f"--label={k}={v}" for k, v in L.labels_for(LESSON, kind="image").items()], "-"],
        text=True, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    other.stdin.write(f"FROM busybox AS build\n{step}\nFROM busybox\n"
                      "COPY --from=build /made /made\n")
    other.stdin.close()
    try:
        time.sleep(2)  # the other build's step is running
        with Sandbox(client, LESSON, Limits(), helper_image="debian:12",
                     builder="buildkit") as sandbox:
            result = sandbox.build(_context(f"FROM busybox\n{step}\n"))
    finally:
        assert other.wait(timeout=60) == 0, other.stderr.read()
        client.images.remove(iidfile.read_text().strip(), force=True)
    assert result.ok, result.error
    assert result.stages == [("", ["FROM busybox", step])]
    assert result.base == "busybox"


def test_the_image_carries_the_labels_and_its_id(client, builder, clean):
    with Sandbox(client, LESSON, Limits(), helper_image="debian:12", builder=builder) as sandbox:
        result = sandbox.build(_context("FROM debian:12\nRUN echo built > /built\n"))
        assert result.ok, result.error
        image = client.images.get(result.image_id)
        assert image.labels[L.SESSION] == sandbox.run_id
        assert image.labels[L.LESSON] == LESSON
        assert "RUN echo built > /built" in [instruction for instruction, _ in result.steps]
        assert result.base == "debian:12"
    assert not client.images.list(filters={"label": f"{L.SESSION}={sandbox.run_id}"})


def test_a_cache_mount_answer_grades_as_it_builds_for_the_learner(tmp_path, clean, builder,
                                                                  monkeypatch):
    monkeypatch.setenv("DOCKLAB_GRADE_BUILDER", builder)
    folder = answer_folder(tmp_path / "answer", "mobysay", {"Dockerfile": CACHE_MOUNT},
                           lab_files=("moby.cow",))
    report = mobysay.LAB.check(folder)
    assert report.details["builder"] == builder
    if builder == "buildkit":
        assert report.score == report.max_score, report.table()
    else:  # the legacy builder knows neither flag: what the learner never sees
        assert not report["builds"].passed
        assert "mount" in report["builds"].feedback.lower(), report.table()
