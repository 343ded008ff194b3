"""The classroom on this host: how fast learners' servers start together, and what each costs.

For a class of N learners (1, 5, 10 by default), started together: N learners log in through the
hub's REST API and ask for their servers at once; the spawn latency of each is the time from its
request until the hub says its server is ready (the JupyterLab container up, its private engine
answering with the course images loaded). Then, per learner (the JupyterLab container and its
engine, from the engine's memory accounting, page cache left out):

idle:  the server up, no kernel
kernel: one notebook's kernel started (docklab and the SDK imported, as a lesson's set-up does)
busy:  that kernel has run 02-running's first cells and keeps three busybox containers running

and the host's available memory before and after. From the busy figure: how many learners one
2-core/24 GiB host holds by memory (2 GiB kept for the hub, the host's engine and the system).

Run: .venv/bin/python bench/bench_classroom.py [--sizes 1 5 10] [--images busybox]
(needs the engine, the course images and configurable-http-proxy: `make classroom` installs
them, or scripts/ensure-proxy.sh)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section

from docklab.classroom import hub as classroom_hub
from docklab.classroom.settings import Settings

HOST_GIB = 24
KEPT_GIB = 2

SETUP = """
import docker
from docklab.lesson import start
lesson = start("02-running")
client = lesson.client
"""
BUSY = """
print(lesson.run("busybox", "echo hello world", detach=False, remove=True).decode())
for i in range(3):
    lesson.run("busybox", "sleep 600", name=f"busy-{i}")
print(len(client.containers.list()))
"""


def available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory_mib(container) -> float:
    """What ``docker stats`` shows: usage without the inactive page cache."""
    stats = container.stats(stream=False, one_shot=True)["memory_stats"]
    inner = stats.get("stats", {})
    cache = inner.get("total_inactive_file", inner.get("inactive_file", 0))
    return (stats.get("usage", 0) - cache) / 2**20


def per_learner(host, settings: Settings, names: list[str]) -> tuple[float, float]:
    """Mean MiB per learner of the JupyterLab container and of the engine."""
    lab, engine = [], []
    for name in names:
        lab.append(memory_mib(host.containers.get(f"{settings.name}-{name}")))
        engine.append(memory_mib(host.containers.get(f"{settings.name}-{name}-engine")))
    return statistics.mean(lab), statistics.mean(engine)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def one_class(host, settings: Settings, hub, size: int) -> dict:
    names = [f"learner{i:02d}" for i in range(size)]
    hub.add_learners(*names)
    password = settings.secret("password")
    learners = [hub.login(name, password) for name in names]
    before = available_mib()

    def spawn(learner) -> float:
        started = time.monotonic()
        learner.start_server()
        learner.wait_until_ready(timeout=600)
        return time.monotonic() - started

    with ThreadPoolExecutor(size) as pool:
        latencies = list(pool.map(spawn, learners))
    time.sleep(5)  # let the servers settle
    idle = per_learner(host, settings, names)
    kernels = [learner.kernel() for learner in learners]
    with ThreadPoolExecutor(size) as pool:
        list(pool.map(lambda k: k.run(SETUP, timeout=300), kernels))
    time.sleep(3)
    with_kernel = per_learner(host, settings, names)
    with ThreadPoolExecutor(size) as pool:
        list(pool.map(lambda k: k.run(BUSY, timeout=300), kernels))
    time.sleep(3)
    busy = per_learner(host, settings, names)
    after = available_mib()
    for kernel in kernels:
        kernel.run("lesson.cleanup()", timeout=120)
        kernel.close()
    for learner in learners:
        learner.stop_server()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and any(
            host.containers.list(filters={"name": f"{settings.name}-{n}"}) for n in names):
        time.sleep(1)
    return {"size": size, "p50": statistics.median(latencies), "p95": percentile(latencies, 95),
            "max": max(latencies), "idle": idle, "kernel": with_kernel, "busy": busy,
            "host_mib_per_learner": (before - after) / size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--images", nargs="+", default=["busybox"],
                        help="course images loaded into each learner's engine")
    parser.add_argument("--engine", choices=["dind", "rootless"], default="dind",
                        help="each learner's engine: Docker-in-Docker or rootless")
    args = parser.parse_args()
    prefix = os.environ.get("DOCKLAB_PREFIX") or "bench"
    settings = Settings(name=f"{prefix}-classroom-bench", port=int(os.environ.get(
        "DOCKLAB_CLASSROOM_PORT", "8700")), images=tuple(args.images), engine_kind=args.engine)
    host = docker.from_env()
    rows = []
    try:
        from docklab.classroom.image import ensure_learner_image

        started = time.monotonic()
        ensure_learner_image(host, say=lambda line: print(line, file=sys.stderr))
        image_seconds = time.monotonic() - started
        started = time.monotonic()
        hub = classroom_hub.up(settings, say=lambda line: print(line, file=sys.stderr))
        up_seconds = time.monotonic() - started
        for size in args.sizes:
            row = one_class(host, settings, hub, size)
            print(row, file=sys.stderr)
            rows.append(row)
    finally:
        classroom_hub.down(settings, purge=True, say=lambda line: None)
        host.close()

    def mib(pair) -> str:
        return f"{pair[0]:.0f} + {pair[1]:.0f} = {sum(pair):.0f}"

    table = [("| learners started together | spawn p50 | p95 | max | idle MiB (lab + engine) "
              "| with a kernel | busy | host MemAvailable drop per learner |"),
             "|---|---|---|---|---|---|---|---|"]
    engine = {"dind": "Docker-in-Docker", "rootless": "rootless"}[args.engine]
    for row in rows:
        table.append(f"| {row['size']} | {row['p50']:.1f} s | {row['p95']:.1f} s | "
                     f"{row['max']:.1f} s | {mib(row['idle'])} | {mib(row['kernel'])} | "
                     f"{mib(row['busy'])} | {row['host_mib_per_learner']:.0f} MiB |")
    busiest = max(sum(row["busy"]) for row in rows)
    holds = int((HOST_GIB - KEPT_GIB) * 1024 // busiest)
    body = f"""Run: `.venv/bin/python bench/bench_classroom.py --engine {args.engine} --sizes {' '.join(map(str, args.sizes))} --images {' '.join(args.images)}`
(`docklab classroom up` took {up_seconds:.0f} s here with the learner image present; making that
image took {image_seconds:.0f} s, a build when the course changed.) Spawn
latency: from a learner's `POST /hub/api/users/NAME/server` until the hub reports the server ready,
which this spawner makes wait for the learner's private engine to answer with the course images
({', '.join(args.images)}) loaded. Memory per learner from the engine's accounting (`docker stats`:
page cache left out): the JupyterLab container + its {engine} engine. The host's MemAvailable
drop is noisier (other work on this shared host moves it) and is shown only as a cross-check.

{chr(10).join(table)}

By memory, one 2-core/24 GiB host holds about **{holds} learners** at the busiest figure
({busiest:.0f} MiB each, {KEPT_GIB} GiB kept for the hub, the host's engine and the system). CPU
is the tighter bound on 2 cores: spawns queue (see p95 against p50), and a class that builds
images at the same moment shares two cores; the limits (1 CPU for JupyterLab, 1 for the engine per
learner) cap one learner, not the sum. Each engine's data (the loaded images, what the learner
builds) is a volume on the host's disk, not counted above.
"""
    write_section("Classroom" if args.engine == "dind" else "Classroom (rootless engine)", body)
    print(body)


if __name__ == "__main__":
    main()
