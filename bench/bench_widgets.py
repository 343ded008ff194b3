"""Engine event → widget state latency of the lifecycle view.

Drives a busybox container through ~50 transitions (create, start, pause, unpause, kill, stop,
rm) while a LifecycleView follows it, and records for each transition the time from the engine's
event (its ``timeNano``) to the moment the view's synced ``last_transition`` trait changed (the
view's HTML is redrawn in the same step). Engine and benchmark share one clock here (local engine);
with a remote engine, clock skew would add to the figures.

Run: .venv/bin/python bench/bench_widgets.py [--transitions 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from docklab.lesson import Lesson
from docklab.widgets.lifecycle import LifecycleView

TARGET_P95_MS = 200


def measure(transitions: int) -> list[float]:
    lesson = Lesson("bench-widgets")
    lesson.cleanup()
    latencies: list[float] = []
    seen = threading.Condition()
    view = LifecycleView(lesson.client, lesson=lesson)

    def on_change(change):
        now = time.time()
        new, old = change["new"], change["old"] or {}
        # a `stop` event renames the cause of the `die` before it: not a new transition
        if new and new.get("time_ns") and new["time_ns"] != old.get("time_ns"):
            with seen:
                latencies.append((now - new["time_ns"] / 1e9) * 1000)
                seen.notify_all()

    view.observe(on_change, names="last_transition")
    if not view.wait_live(10):
        raise RuntimeError(f"the view did not go live: {view.status}")

    def expect(count: int, action) -> None:
        with seen:
            before = len(latencies)
        action()
        with seen:
            if not seen.wait_for(lambda: len(latencies) >= before + count, timeout=10):
                raise RuntimeError("the view missed a transition")

    try:
        while len(latencies) < transitions:
            box = None

            def create():
                nonlocal box
                box = lesson.create("busybox", "sleep 600", name="bench-life", init=True)

            expect(1, create)                                  # → created
            expect(1, box.start)                               # → running
            expect(1, box.pause)                               # → paused
            expect(1, box.unpause)                             # → running
            expect(1, lambda b=box: b.stop(timeout=5))           # → exited (SIGTERM)
            expect(1, box.start)                               # → running
            expect(1, lambda b=box: (b.kill(), b.wait()))      # → exited (SIGKILL)
            expect(1, box.remove)                              # → removed
    finally:
        view.close()
        lesson.cleanup()
    return latencies[:transitions]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=50)
    args = parser.parse_args()
    # the first run warms the SDK and the engine; it is not counted
    measure(8)
    latencies = sorted(measure(args.transitions))
    median = statistics.median(latencies)
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    worst = latencies[-1]
    verdict = "met" if p95 <= TARGET_P95_MS else "MISSED"
    body = f"""
Rerun: `.venv/bin/python bench/bench_widgets.py` (with an engine; `--transitions N` to change
the count).

A `LifecycleView` follows one busybox container through {len(latencies)} transitions (create,
start, pause, unpause, stop, start, kill, rm, repeated). For each, the latency is the time from the
engine's event (`timeNano` in `docker events`) to the view's synced `last_transition` trait
changing, with the view's HTML redrawn in the same step. Engine and benchmark share one clock.

| what | median | p95 | worst | target |
|---|---|---|---|---|
| engine event → lifecycle widget state | {median:.1f} ms | {p95:.1f} ms | {worst:.1f} ms | p95 ≤ {TARGET_P95_MS} ms ({verdict}) |
"""
    write_section("Visualizers", body)
    print(f"median {median:.1f} ms, p95 {p95:.1f} ms, worst {worst:.1f} ms ({verdict})")


if __name__ == "__main__":
    main()
