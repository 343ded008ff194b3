"""How fast the mobysay lab is graded.

one, cold: the correct answer with a RUN line no build had before (apt-get update/install run)
one, warm: the same answer again (every step comes from the layer cache)
batch:     20 submissions (four kinds of answer: correct, shell-form ENTRYPOINT, ENV + split RUN,
           CMD only), warm cache, one after another → submissions per minute
nbgrader:  the same 20 submissions through nbgrader autograde (kernel, self-check, hidden
           tests), warm cache → submissions per minute (skip with --no-nbgrader)

Run: .venv/bin/python bench/bench_grading.py [--batch 20] [--no-nbgrader]
(needs the engine and the course image debian:12: `docklab images prepare`). Grading builds with
the builder grading picks on this engine (section "Grading"); DOCKLAB_GRADE_BUILDER=buildkit or
legacy forces one (section "Grading (BuildKit, forced)" or "Grading (legacy builder, forced)").
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section

ROOT = Path(__file__).resolve().parent.parent
COW = ROOT / "grader" / "source" / "mobysay" / "moby.cow"


def answers() -> dict[str, str]:
    from docklab.checks.answer import dockerfile_from_notebook

    good, _ = dockerfile_from_notebook(ROOT / "solutions" / "mobysay" / "mobysay.ipynb")
    exec_form = 'ENTRYPOINT ["cowsay", "-f", "moby.cow"]'
    return {
        "correct": good,
        "shell_entrypoint": good.replace(exec_form, "ENTRYPOINT cowsay -f moby.cow"),
        "env_split_run": good.replace("ARG DEBIAN_FRONTEND", "ENV DEBIAN_FRONTEND").replace(
            "RUN apt-get update \\\n && apt-get install",
            "RUN apt-get update\nRUN apt-get install"),
        "cmd_only": good.replace(exec_form + '\nCMD ["Whale hello there"]',
                                 'CMD ["cowsay", "-f", "moby.cow", "Whale hello there"]'),
    }


def write_answer(folder: Path, dockerfile: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(dockerfile)
    shutil.copy(COW, folder / "moby.cow")
    return folder


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def bench_checks(tmp: Path, batch: int) -> dict:
    from docklab.checks import mobysay

    kinds = answers()
    # Cold: an answer whose RUN line no earlier build had (a comment makes it unique), so
    # apt-get update and install really run; afterwards its step images are removed again.
    marker = f"  # bench {uuid.uuid4().hex[:8]}"
    unique = kinds["correct"].replace("install -y --no-install-recommends cowsay",
                                      "install -y --no-install-recommends cowsay" + marker)
    assert unique != kinds["correct"]
    correct = write_answer(tmp / "one", unique)
    cold, report = timed(lambda: mobysay.LAB.check(correct))
    assert report.score == report.max_score, report.table()
    warm = [timed(lambda: mobysay.LAB.check(correct)) for _ in range(3)]
    warm_times = [seconds for seconds, _ in warm]
    cold_build = report.details.get("build_seconds", 0.0)
    warm_build = statistics.median(r.details.get("build_seconds", 0.0) for _, r in warm)
    mobysay.LAB.check(correct, keep_cache=False)
    folders = [write_answer(tmp / f"s{i:02d}", list(kinds.values())[i % len(kinds)])
               for i in range(batch)]
    for folder in folders[: len(kinds)]:  # every kind's layers in the cache once
        mobysay.LAB.check(folder)
    started = time.perf_counter()
    scores = [mobysay.LAB.check(folder).score for folder in folders]
    elapsed = time.perf_counter() - started
    return {"builder": report.details.get("builder", "legacy"),
            "cold": cold, "warm": statistics.median(warm_times), "batch": batch,
            "cold_build": cold_build, "warm_build": warm_build,
            "batch_seconds": elapsed, "per_minute": 60 * batch / elapsed, "scores": scores,
            "folders": folders, "kinds": list(kinds)}


def bench_nbgrader(tmp: Path, folders: list[Path]) -> dict:
    import nbformat

    from docklab import grader

    course = tmp / "course" / "grader"
    course.mkdir(parents=True)
    shutil.copy(ROOT / "grader" / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "grader" / "source", course / "source")
    api = grader.nbgrader_api(course)
    assert api.generate_assignment("mobysay")["success"]
    release = course / "release" / "mobysay"
    students = []
    for index, folder in enumerate(folders):
        student = f"student{index:02d}"
        target = course / "submitted" / student / "mobysay"
        target.mkdir(parents=True)
        shutil.copy(release / "moby.cow", target)
        notebook = nbformat.read(release / "mobysay.ipynb", as_version=4)
        for cell in notebook.cells:
            if cell.source.startswith("%%writefile Dockerfile"):
                cell.source = "%%writefile Dockerfile\n" + (folder / "Dockerfile").read_text()
        nbformat.write(notebook, target / "mobysay.ipynb")
        students.append(student)
    first, _ = timed(lambda: api.autograde("mobysay", students[0]))
    started = time.perf_counter()
    for student in students[1:]:
        assert api.autograde("mobysay", student)["success"]
    elapsed = time.perf_counter() - started
    return {"first": first, "per_submission": elapsed / (len(students) - 1),
            "per_minute": 60 * (len(students) - 1) / elapsed, "count": len(students) - 1}


def _verdict(checks: dict, autograde: dict | None) -> str:
    rates = [("`LAB.check`", checks["per_minute"])]
    if autograde:
        rates.append(("nbgrader autograde", autograde["per_minute"]))
    parts = [f"{'met' if rate >= 10 else 'NOT met'} by {name} ({rate:.1f}/min)"
             for name, rate in rates]
    return "Target ≥ 10 submissions/min warm on 2 cores: " + "; ".join(parts) + "."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--no-nbgrader", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DOCKLAB_LEARNER", "bench-grading")
    with tempfile.TemporaryDirectory(prefix="docklab-bench-grading-") as tmp:
        checks = bench_checks(Path(tmp), args.batch)
        autograde = None if args.no_nbgrader else bench_nbgrader(Path(tmp), checks["folders"])
    cores = f"{platform.machine()}, {os.cpu_count()} cores"
    builder = "BuildKit" if checks["builder"] == "buildkit" else "legacy builder"
    batch = f"batch of {checks['batch']} ({', '.join(checks['kinds'])}; warm)"
    rate = f"{checks['batch_seconds']:.0f} s → **{checks['per_minute']:.1f} submissions/min**"
    lines = [
        (f"Grading one mobysay submission: bounded build ({builder}), inspection, 5 runs, "
         f"cleanup ({cores})."),
        "",
        "| what | time |",
        "|---|---|",
        (f"| `LAB.check`, one submission, cold (its apt-get RUN never built before) | "
         f"{checks['cold']:.1f} s |"),
        f"| `LAB.check`, one submission, warm layer cache (median of 3) | {checks['warm']:.1f} s |",
        (f"| of which the build, cold / warm | {checks['cold_build']:.1f} s / "
         f"{checks['warm_build']:.1f} s |"),
        f"| `LAB.check`, {batch} | {rate} |",
    ]
    if autograde:
        each = (f"{autograde['per_submission']:.1f} s each → "
                f"**{autograde['per_minute']:.1f} submissions/min**")
        lines += [
            f"| nbgrader autograde, first submission | {autograde['first']:.1f} s |",
            f"| nbgrader autograde, {autograde['count']} more (warm) | {each} |",
        ]
    load = os.getloadavg()[0]
    lines += [
        "",
        f"Load average while measuring: {load:.1f} (other work on the engine slows every figure).",
        "",
        _verdict(checks, autograde),
        ("nbgrader autograde adds a kernel per notebook and its own bookkeeping; the hidden "
         "tests reuse the graded report's runs. The step images stay as layer cache between "
         "gradings (that is what \"warm\" means); a cold grading pays for apt-get."),
        "",
        ("Rerun: `.venv/bin/python bench/bench_grading.py` (`--no-nbgrader` for the checks "
         "alone; `--batch N`)."),
    ]
    body = "\n".join(lines)
    print(body)
    # DOCKLAB_GRADE_BUILDER forces a builder: its figures go to a section of their own.
    forced = os.environ.get("DOCKLAB_GRADE_BUILDER", "auto") != "auto"
    write_section(f"Grading ({builder}, forced)" if forced else "Grading", body)


if __name__ == "__main__":
    main()
