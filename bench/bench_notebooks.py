"""Execution time of each course notebook (warm images) and of the whole course.

Each notebook runs once, as shipped, top to bottom in a fresh kernel (nbclient), the way a learner
would run it; the time of every cell is taken from the kernel's own execution timestamps.

Run: .venv/bin/python bench/bench_notebooks.py [NOTEBOOK_STEM ...]
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
SLOW_CELL = 5.0  # seconds: over this, a cell must build an image or wait on purpose


def _cell_seconds(cell) -> float:
    meta = cell.get("metadata", {}).get("execution", {})
    start, end = meta.get("iopub.execute_input"), meta.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def run(path: Path) -> tuple[float, list[tuple[str, float]]]:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=True,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.monotonic()
    client.execute()
    total = time.monotonic() - start
    cells = [(c.get("id", "?"), _cell_seconds(c)) for c in nb.cells if c.cell_type == "code"]
    return total, sorted(cells, key=lambda item: -item[1])


def main() -> None:
    wanted = set(sys.argv[1:])
    rows, course = [], 0.0
    for path in NOTEBOOKS:
        if wanted and path.stem not in wanted:
            continue
        total, cells = run(path)
        course += total
        slow = ", ".join(f"`{cid}` {s:.1f} s" for cid, s in cells if s > SLOW_CELL) or "none"
        rows.append(f"| {path.stem} | {total:.1f} s | {cells[0][1]:.1f} s (`{cells[0][0]}`) | "
                    f"{slow} |")
        print(rows[-1], flush=True)
    body = (
        "Rerun: `.venv/bin/python bench/bench_notebooks.py` (warm course images; each notebook "
        "once, as shipped, in a fresh kernel; kernel start-up included in the total).\n\n"
        f"| notebook | total | slowest cell | cells over {SLOW_CELL:.0f} s |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n| **whole course** | **{course:.0f} s** ({course / 60:.1f} min) | | target ≤ 6 min |\n"
    )
    print(body)
    if not wanted:
        write_section("Notebooks", body)


if __name__ == "__main__":
    main()
