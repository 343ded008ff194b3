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
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ipykernel.kernelspec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from tests.notebooks.course import (
    LEFTOVERS_CELL_ID,
    NOT_YET,
    NOTEBOOK_DIR,
    NOTEBOOKS,
    SOLUTIONS,
    WELL_DONE,
    leftovers,
    prepared,
    tagged,
    wrong_verdicts,
)

from docklab import engines
from docklab.engine import connect
from docklab.labels import find_labelled

RESULTS = Path(__file__).resolve().parent / "results"
CELL_TIMEOUT = 300
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _ThisPython(KernelSpecManager):
    """Kernels run with this interpreter (the venv's)."""

    def get_kernel_spec(self, kernel_name):
        return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                      **ipykernel.kernelspec.get_kernel_dict())


def _stdout(cell) -> str:
    return "".join(out.get("text", "") for out in cell.get("outputs", [])
                   if out.get("output_type") == "stream")


def _error_line(text: str) -> str:
    lines = [line for line in _ANSI.sub("", text).strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "?"


def run_notebook(path: Path, solved: bool) -> dict:
    """One run: ``{"ok": bool, "seconds": float, "problem": str}``."""
    nb = prepared(path, SOLUTIONS.get(path.stem, {}) if solved else {})
    km = KernelManager(kernel_name="python3", kernel_spec_manager=_ThisPython())
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, startup_timeout=60,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    started = time.monotonic()
    problem = ""
    try:
        client.execute()
    except CellExecutionError as exc:
        failing = next((c for c in nb.cells if c.cell_type == "code"
                        and any(o.get("output_type") == "error" for o in c.get("outputs", []))),
                       None)
        where = failing.get("id", "?") if failing is not None else "?"
        problem = f"cell {where}: {_error_line(str(exc))}"
    except Exception as exc:  # noqa: BLE001 - a timeout or a dead kernel is a result too
        problem = f"{type(exc).__name__}: {_error_line(str(exc))}"
    finally:
        if km.has_kernel:  # nbclient leaves a kernel it did not start itself running
            km.shutdown_kernel(now=True)
    seconds = time.monotonic() - started
    if not problem:
        verdicts = {cell.id: _stdout(cell).strip() for cell in tagged(nb, "self-check")}
        wrong = wrong_verdicts(verdicts, WELL_DONE if solved else NOT_YET)
        if wrong:
            problem = f"self-checks said {wrong}"
        last = nb.cells[-1]
        if not problem and last.get("id") == LEFTOVERS_CELL_ID:
            left = {k: v for k, v in leftovers(_stdout(last)).items() if v}
            if left:
                problem = f"cleanup left {left}"
    left = find_labelled(connect(fresh=True), lesson=path.stem)
    left = {kind: [getattr(r, "name", None) or r.id for r in found]
            for kind, found in left.items() if found}
    if left and not problem:
        problem = f"left on the engine: {left}"
    return {"ok": not problem, "seconds": round(seconds, 1), "problem": problem}


def _use(engine: str, keep: bool):
    """Point DOCKER_HOST at ``engine`` (starting it); returns a function that undoes it."""
    if engine == "host":
        return lambda: None
    version, _, store = engine.partition("-")
    host = connect()
    started = time.monotonic()
    running = engines.start(host, version, containerd_store=store == "containerd",
                            say=lambda line: print(f"  {line}", flush=True))
    print(f"  {engine}: ready in {time.monotonic() - started:.1f} s", flush=True)
    os.environ["DOCKER_HOST"] = running.docker_host
    os.environ.pop("DOCKER_TLS_VERIFY", None)
    # A learner of its own: the lessons keep files on this machine per learner (05's compose
    # project under /tmp/docklab-LEARNER), which a run on another engine must not share.
    os.environ.setdefault("DOCKLAB_LEARNER", f"matrix-{engine}")

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
