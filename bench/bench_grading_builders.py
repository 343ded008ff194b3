"""Sealed grading's build with each builder: BuildKit (the learner's) against the legacy builder.

Each builder judges the same mobysay answers on sealed engines (two rounds of the four kinds of
bench_grading.py, each made unique by a comment so no report is reused), after one warm-up that
makes the lab's seed for that builder. Reported: the scores (they must be the same), the build's
seconds and the whole judgment's, per answer.

Run: .venv/bin/python bench/bench_grading_builders.py [--rounds 2]
(needs the engine, the course images and docklab/sealed-engine: `docklab images prepare`)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section
from bench_grading import answers


def judge_all(builder: str, rounds: int) -> list[tuple[str, int, float, float]]:
    from docklab.grading.judge import judge_cells

    os.environ["DOCKLAB_GRADE_BUILDER"] = builder
    cell = "%%writefile Dockerfile\n# {}\n{}"
    judge_cells("mobysay", {"dockerfile": cell.format(uuid.uuid4().hex, answers()["correct"])})
    rows = []
    for _ in range(rounds):
        for kind, dockerfile in answers().items():
            started = time.monotonic()
            report = judge_cells("mobysay", {"dockerfile": cell.format(uuid.uuid4().hex,
                                                                       dockerfile)})
            assert report.details.get("builder") == builder, report.details
            rows.append((kind, report.score, report.details.get("build_seconds", 0.0),
                         time.monotonic() - started))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("DOCKLAB_LEARNER", "bench-grading-builders")
    results = {builder: judge_all(builder, args.rounds) for builder in ("buildkit", "legacy")}
    lines = [("Each mobysay answer judged on a sealed engine (Engine 26.1, rootless) with each "
             f"builder: {args.rounds} rounds of four kinds of answer (x86_64, "
             f"{os.cpu_count()} cores)."), "",
             ("| answer | score BuildKit / legacy | build, BuildKit / legacy | judged, BuildKit / "
             "legacy |"), "|---|---|---|---|"]
    for (kind, score, build, total), (_, score2, build2, total2) in zip(
            results["buildkit"], results["legacy"], strict=True):
        lines.append(f"| {kind} | {score} / {score2} | {build:.1f} s / {build2:.1f} s | "
                     f"{total:.1f} s / {total2:.1f} s |")
    medians = {b: (statistics.median(r[2] for r in rows), statistics.median(r[3] for r in rows))
               for b, rows in results.items()}
    same = all(a[1] == b[1] for a, b in zip(results["buildkit"], results["legacy"], strict=True))
    lines += ["", (f"Median build: BuildKit {medians['buildkit'][0]:.1f} s, legacy "
                   f"{medians['legacy'][0]:.1f} s; median judgment {medians['buildkit'][1]:.1f} s "
                   f"and {medians['legacy'][1]:.1f} s. Scores "
                   f"{'the same' if same else 'DIFFER'} on both builders. Load average "
                   f"{os.getloadavg()[0]:.1f}."),
              "", "Rerun: `.venv/bin/python bench/bench_grading_builders.py` (`--rounds N`)."]
    body = "\n".join(lines)
    print(body)
    write_section("Sealed grading: BuildKit against the legacy builder", body)


if __name__ == "__main__":
    main()
