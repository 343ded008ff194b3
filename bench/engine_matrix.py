"""Every course notebook, as shipped and solved, on one engine of the matrix (issue 11).

An engine is ``host`` (DOCKER_HOST as it is) or one that ``docklab engines start`` runs beside the
host's: ``20``, ``26``, ``28``, ``28-containerd``. Each notebook runs in a fresh kernel (nbclient)
with DOCKER_HOST pointing at that engine, prepared as tests/notebooks does (exercises answered from
tests.notebooks.course.SOLUTIONS for the solved variant, the leftovers cell appended), and is
judged as it judges: no cell raises, every self-check says "Not yet" (as shipped) or "Well done"
(solved), nothing labelled with the lesson is left on the engine.

Run: .venv/bin/python bench/engine_matrix.py ENGINE [--keep] [--only STEM ...]
Writes bench/results/engine-matrix-ENGINE.json and prints one line per run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.notebooks.course import (
    NOT_YET,
    NOTEBOOKS,
    SOLUTIONS,
    WELL_DONE,
    NotebookFailed,
    execute,
    expect_verdicts,
)

from docklab import engines
from docklab.engine import connect

RESULTS = Path(__file__).resolve().parent / "results"


def run_notebook(path: Path, solved: bool) -> dict:
    """One run: ``{"ok": bool, "seconds": float, "problem": str}``."""
    attempt = "solved" if solved else "as shipped"
    started = time.monotonic()
    problem = ""
    try:
        nb = execute(path, SOLUTIONS.get(path.stem, {}) if solved else {}, attempt,
                     docker_host=os.environ.get("DOCKER_HOST"))
        expect_verdicts(nb, path, attempt, WELL_DONE if solved else NOT_YET)
    except NotebookFailed as exc:
        problem = str(exc).strip().splitlines()[-1][:300]
    except Exception as exc:  # noqa: BLE001 - a timeout or a dead kernel is a result too
        problem = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
    return {"ok": not problem, "seconds": round(time.monotonic() - started, 1),
            "problem": problem}


def _use(engine: str, keep: bool):
    """Point DOCKER_HOST at ``engine`` (starting it); returns a function that undoes it."""
    if engine == "host":
        return lambda: None
    version, _, store = engine.partition("-")
    # A learner of its own: the lessons keep files on this machine per learner (05's compose
    # project under /tmp/docklab-LEARNER), which a run on another engine must not share; and the
    # engine is labelled with it, so that `stop` below finds it.
    os.environ.setdefault("DOCKLAB_LEARNER", f"matrix-{engine}")
    host = connect()
    started = time.monotonic()
    running = engines.start(host, version, containerd_store=store == "containerd",
                            say=lambda line: print(f"  {line}", flush=True))
    print(f"  {engine}: ready in {time.monotonic() - started:.1f} s", flush=True)
    os.environ["DOCKER_HOST"] = running.docker_host
    os.environ.pop("DOCKER_TLS_VERIFY", None)

    def done():
        os.environ.pop("DOCKER_HOST", None)
        if not keep:
            engines.stop(connect(fresh=True), version, containerd_store=store == "containerd")
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", choices=["host", "20", "26", "28", "28-containerd"])
    parser.add_argument("--keep", action="store_true", help="leave the engine running")
    parser.add_argument("--only", nargs="*", default=None, help="notebook stems to run")
    args = parser.parse_args()
    done = _use(args.engine, args.keep)
    results: dict = {"engine": args.engine, "runs": {}}
    try:
        summary = connect(fresh=True).version()
        results["version"] = summary.get("Version")
        info = connect().info()
        results["store"] = info.get("Driver")
        for path in NOTEBOOKS:
            if args.only and path.stem not in args.only:
                continue
            variants = ["shipped"] + (["solved"] if path.stem in SOLUTIONS else [])
            for variant in variants:
                result = run_notebook(path, solved=variant == "solved")
                results["runs"][f"{path.stem} {variant}"] = result
                mark = "ok  " if result["ok"] else "FAIL"
                print(f"{args.engine} {mark} {path.stem} {variant} {result['seconds']} s "
                      f"{result['problem']}", flush=True)
    finally:
        done()
        RESULTS.mkdir(exist_ok=True)
        suffix = "-" + "-".join(args.only) if args.only else ""
        out = RESULTS / f"engine-matrix-{args.engine}{suffix}.json"
        out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
