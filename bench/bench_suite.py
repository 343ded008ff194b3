"""Wall time of the test suite, whole and per tier (tests/<tier>/), on this machine.

warm:   `make test` in this checkout, with the engine, the course images and .venv already there
        (what a developer pays for each run)
clean:  `bash .ci/run` in a fresh clone of HEAD (what CI pays; a warm engine and its images, but
        a new venv, pip cache or not, and every test)

`make test` runs in two phases: the tests that may share the engine on three workers
(pytest-xdist), then the ``serial`` ones alone (tests/grading and test_lesson: they compare the
whole engine before and after; test_doctor: it wants every course port free). `.ci/run` adds a
third, the engine matrix (`make test-engines`: tests/engines on Engine 26 and 28, a worker per
engine). The per-tier figures are the sums of each test's set-up, call and tear-down time from the
JUnit reports (``make test JUNIT=prefix``), by the folder the test lives in; in the first phase
three workers run at once, so the sums there add up to more than the wall time.

It also writes tests/group_seconds.json, each worker group's seconds in the shared phase, from
which `make test` hands the longest groups out first (tests/conftest.py, ``LongestFirst``).

Run: .venv/bin/python bench/bench_suite.py [--clean] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section

ROOT = Path(__file__).resolve().parent.parent
TIERS = ("unit", "integration", "notebooks", "labs", "grading", "browser", "binder", "classroom",
         "engines")
PHASES = ("shared", "serial", "engines")
#: Each worker group's seconds, read by tests/conftest.py to schedule the longest first.
GROUP_SECONDS = ROOT / "tests" / "group_seconds.json"


def tier_seconds(junit: Path) -> tuple[dict[str, float], dict[str, int], dict[str, int]]:
    """Seconds, tests and failures per tier, from the JUnit reports of both phases."""
    seconds, tests, failed = defaultdict(float), defaultdict(int), defaultdict(int)
    cases = [case for phase in PHASES
             if Path(f"{junit}-{phase}.xml").exists()
             for case in ET.parse(f"{junit}-{phase}.xml").iter("testcase")]
    for case in cases:
        parts = case.get("classname", "").split(".")
        tier = parts[1] if len(parts) > 1 and parts[0] == "tests" else "other"
        seconds[tier] += float(case.get("time", 0))
        tests[tier] += 1
        failed[tier] += any(child.tag in ("failure", "error") for child in case)
    return seconds, tests, failed


def group_seconds(junit: Path) -> dict[str, float]:
    """Seconds per worker group (tests/conftest.py's ``worker_group``) in the shared phase: what
    the scheduler reads to hand out the longest groups first."""
    sys.path.insert(0, str(ROOT))
    from tests.conftest import worker_group

    seconds: dict[str, float] = defaultdict(float)
    for case in ET.parse(f"{junit}-shared.xml").iter("testcase"):
        parts = case.get("classname", "").split(".")
        module, cls = (parts[:-1], parts[-1]) if parts[-1][:1].isupper() else (parts, None)
        nodeid = "/".join(module) + ".py::" + (f"{cls}::" if cls else "") + case.get("name", "")
        seconds[worker_group(nodeid) or nodeid] += float(case.get("time", 0))
    # Groups of one quick test are left out: the scheduler's estimate for them is as good.
    return {group: round(value, 1) for group, value in sorted(seconds.items()) if value >= 5}


def phase_walls(junit: Path) -> str:
    """Each phase's wall time and test count, from the JUnit reports' own time stamps."""
    parts = []
    for phase in PHASES:
        report = Path(f"{junit}-{phase}.xml")
        if report.exists():
            suite = ET.parse(report).getroot()
            suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
            parts.append(f"{phase} {suite.get('tests')} tests in "
                         f"{float(suite.get('time', 0)) / 60:.1f} min")
    return "Phases: " + "; ".join(parts) + "."


def run(command: list[str], cwd: Path, junit: Path) -> float:
    env = {**os.environ, "JUNIT": str(junit)}
    started = time.monotonic()
    print(f"$ {' '.join(command)}  (in {cwd})", flush=True)
    done = subprocess.run(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, check=False)
    wall = time.monotonic() - started
    print(f"exit {done.returncode} after {wall / 60:.1f} min", flush=True)
    return wall


def table(wall: float, junit: Path) -> str:
    seconds, tests, failed = tier_seconds(junit)
    rows = ["| tier | tests | failed | test time |", "|---|---|---|---|"]
    for tier in (*TIERS, "other"):
        if tests.get(tier):
            rows.append(f"| {tier} | {tests[tier]} | {failed[tier]} | "
                        f"{seconds[tier] / 60:.1f} min |")
    rows.append(f"| **all** | {sum(tests.values())} | {sum(failed.values())} | "
                f"{sum(seconds.values()) / 60:.1f} min (wall {wall / 60:.1f} min) |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", action="store_true", help="a fresh clone and .ci/run")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="docklab-bench-suite-") as tmp:
        junit = Path(tmp) / "junit"
        if args.clean:
            clone = Path(tmp) / "clone"
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            wall = run(["bash", ".ci/run"], clone, junit)
            title = "clean clone, `bash .ci/run` (new venv, warm engine and images)"
        else:
            wall = run(["make", "test"], ROOT, junit)
            title = "warm `make test` (engine, images and .venv ready)"
        body = (f"{title}: **{wall / 60:.1f} min**\n\n{phase_walls(junit)}\n\n"
                f"{table(wall, junit)}")
        groups = group_seconds(junit) if Path(f"{junit}-shared.xml").exists() else {}
    print(body)
    if not args.no_write:
        if groups:
            GROUP_SECONDS.write_text(json.dumps(groups, indent=1) + "\n")
        section = "Test suite" + (" (clean clone)" if args.clean else " (warm)")
        write_section(section, "Rerun: `.venv/bin/python bench/bench_suite.py"
                      + (" --clean" if args.clean else "") + "`\n\n" + body)


if __name__ == "__main__":
    main()
