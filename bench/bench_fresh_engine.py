"""Cold engine set-up on a fresh Debian 12 host: scripts/ensure-engine.sh (`make engine`) in a new
debian:12 container of the host engine (tests/integration/_fresh_host.py), from nothing installed
to its engine answering, for Debian 13 (trixie)'s engine (the default) and sid's.

Reports the time to the engine answering, with the time of each step the script announces, and
what apt downloaded (package lists and packages, from apt's own "Fetched" lines). Each run
downloads about 100 MB from the host's Debian mirror.

Run: .venv/bin/python bench/bench_fresh_engine.py [--suite trixie --suite sid] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from _report import write_section
from tests.integration._fresh_host import (
    INNER_STATE,
    ensure_engine,
    fetched_bytes,
    fresh_host,
    run,
)

from docklab.engine import connect

#: The steps ensure-engine.sh announces, by the start of their progress line.
STEPS = {"looking for": "apt-get update", "reading Debian": "suite's lists",
         "downloading": "download", "installing Engine": "apt-get install",
         "starting dockerd": "dockerd start", "engine is up": "answers"}


def one_run(client, suite: str) -> dict:
    marks: dict[str, float] = {}
    started = time.monotonic()

    def say(line: str) -> None:
        print(f"{time.monotonic() - started:6.1f} s  {line}", flush=True)
        text = line.removeprefix("docklab: ")
        for prefix, step in STEPS.items():
            if text.startswith(prefix):
                marks.setdefault(step, time.monotonic() - started)

    with fresh_host(client, "debian:12") as host:
        started = time.monotonic()
        result = ensure_engine(host, say=say, env={"DOCKLAB_ENGINE_SUITE": suite})
        if result.exit_code != 0:
            raise SystemExit(f"ensure-engine.sh failed ({result.exit_code}):\n{result.output}")
        version = run(host, "docker version --format '{{.Server.Version}}'").output.strip()
        buildx = run(host, "docker buildx version").output.split()[1]
        log = run(host, f"cat {INNER_STATE}/apt.log").output
    # apt's downloads in order: bookworm's lists, the suite's lists, the suite's packages
    # (apt-get download), bookworm's packages (apt-get install).
    fetched = fetched_bytes(log)
    return {"suite": suite, "seconds": result.seconds, "marks": marks, "version": version,
            "buildx": buildx, "lists": sum(fetched[:2]), "packages": sum(fetched[2:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", action="append", choices=("trixie", "sid"))
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    client = connect()
    rows = []
    for suite in args.suite or ["trixie", "sid"]:
        runs = [one_run(client, suite) for _ in range(args.runs)]
        seconds = [r["seconds"] for r in runs]
        last = runs[-1]
        steps = ", ".join(f"{step} at {at:.0f} s" for step, at in last["marks"].items())
        shown = (f"{statistics.median(seconds):.0f} s" if len(runs) == 1 else
                 f"{statistics.median(seconds):.0f} s (median of {len(runs)}: "
                 f"{', '.join(f'{s:.0f}' for s in seconds)})")
        default = " (default)" if suite == "trixie" else " (`DOCKLAB_ENGINE_SUITE=sid`)"
        rows.append(f"| {suite}{default}: Engine {last['version']}, buildx {last['buildx']} "
                    f"| {shown} | {(last['lists'] + last['packages']) / 1e6:.0f} MB "
                    f"({last['lists'] / 1e6:.0f} MB lists, {last['packages'] / 1e6:.0f} MB "
                    f"packages) | {steps} |")
    body = (
        "A fresh Debian 12 host (a new `debian:12` container of the host engine, started as the "
        "course's Docker-in-Docker engines are) runs `scripts/ensure-engine.sh`, as `make lab` "
        "does: from nothing installed to `docker version` answering. Downloads come from this "
        "machine's Debian mirror, through whatever caches its network has (here about 90 MB/s): "
        "on a 10 MB/s link the 100 MB take some 10 s more. Target: cold set-up ≤ 4 min "
        "(engine, venv and images together).\n\n"
        "Rerun: `.venv/bin/python bench/bench_fresh_engine.py` (`--suite trixie`, `--runs N`); "
        "`.venv/bin/python -m pytest tests/integration/test_fresh_host_engine.py` checks the same "
        "install.\n\n"
        "| engine installed | time to engine answering | apt downloaded (lists + packages) "
        "| steps started at (last run) |\n|---|---|---|---|\n" + "\n".join(rows))
    print(body)
    write_section("Fresh-host engine", body)


if __name__ == "__main__":
    main()
