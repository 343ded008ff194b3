"""Sealed grading against nbgrader's own autograde: the same 20 mobysay submissions, one run.

plain:   nbgrader autograde with its default Execute step (every cell in a kernel of the grading
         host, on the host engine, whose layer cache is warm): the way that can be forged
sealed:  `docklab grade mobysay --parallel N`: each submission judged on a rootless engine of its
         own, started from the lab's seed (course images and the reference solution's layer
         cache, made once per lab: timed here first, from nothing), then nbgrader autograde
         writes the grades

The 20 submissions are five of each of four answers (correct, shell-form ENTRYPOINT, ENV + split
RUN, CMD only), each with a comment naming its student, so that no two are the same answer and
the sealed path judges every one. The scores of both paths are compared too.

Run: .venv/bin/python bench/bench_sealed_grading.py [--batch 20] [--parallel 2]
(needs the engine and the course images: `docklab images prepare`)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section
from bench_grading import answers

ROOT = Path(__file__).resolve().parent.parent
#: nbgrader 0.9's default autograde steps: Execute runs the notebook in a kernel.
PLAIN = ["nbgrader.preprocessors.Execute", "nbgrader.preprocessors.IgnorePattern",
         "nbconvert.preprocessors.ClearMetadataPreprocessor",
         "nbgrader.preprocessors.LimitOutput", "nbgrader.preprocessors.SaveAutoGrades",
         "nbgrader.preprocessors.AssignLatePenalties",
         "nbgrader.preprocessors.CheckCellMetadata"]


def make_course(tmp: Path, batch: int) -> tuple[Path, list[str]]:
    import nbformat

    from docklab import grader

    course = tmp / "grader"
    (course / "source").mkdir(parents=True)
    shutil.copy(ROOT / "grader" / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "grader" / "source" / "mobysay", course / "source" / "mobysay")
    assert grader.nbgrader_api(course).generate_assignment("mobysay")["success"]
    release = course / "release" / "mobysay"
    kinds = list(answers().items())
    students = []
    for number in range(batch):
        kind, dockerfile = kinds[number % len(kinds)]
        student = f"s{number:02d}-{kind}"
        target = course / "submitted" / student / "mobysay"
        shutil.copytree(release, target)
        notebook = nbformat.read(target / "mobysay.ipynb", as_version=4)
        cell = next(c for c in notebook.cells if c.get("id") == "dockerfile")
        cell.source = f"%%writefile Dockerfile\n# {student}\n{dockerfile}"
        nbformat.write(notebook, target / "mobysay.ipynb")
        students.append(student)
    return course, students


def scores(course: Path, students: list[str]) -> dict[str, float]:
    from nbgrader.api import Gradebook

    from docklab import grader

    api = grader.nbgrader_api(course)
    with Gradebook(api.coursedir.db_url, api.course_id) as gradebook:
        return {s: gradebook.find_submission("mobysay", s).score for s in students}


def bench_plain(course: Path, students: list[str]) -> dict:
    from docklab import grader

    api = grader.nbgrader_api(course, Autograde={"autograde_preprocessors": PLAIN})
    started = time.perf_counter()
    for student in students:
        assert api.autograde("mobysay", student)["success"]
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "per_minute": 60 * len(students) / seconds,
            "scores": scores(course, students)}


def bench_seed() -> float:
    """Seconds to make mobysay's seed from nothing (it is made once per lab and course)."""
    from docklab.checks import get_lab
    from docklab.engine import connect
    from docklab.grading.sealed import image_cache_dir
    from docklab.grading.seed import lab_seed

    for old in image_cache_dir().glob("seed-mobysay-*.tar"):
        old.unlink()
    started = time.perf_counter()
    lab_seed(get_lab("mobysay"), connect())
    return time.perf_counter() - started


def bench_sealed(course: Path, students: list[str], parallel: int) -> dict:
    from docklab.grading.classroom import grade_class

    shutil.rmtree(course / "autograded", ignore_errors=True)  # autograde overwrites grades
    started = time.perf_counter()
    results = grade_class(course, "mobysay", parallel=parallel, students=students)
    seconds = time.perf_counter() - started
    errors = [r for r in results if r.error]
    assert not errors, errors
    return {"seconds": seconds, "per_minute": 60 * len(students) / seconds,
            "scores": {r.student: r.score for r in results},
            "each": sorted(r.seconds for r in results)}


def reach_table() -> list[str]:
    """What a graded build or container of each lab can reach, from the labs' own settings."""
    from docklab.checks import LABS, get_lab

    rows = ["| lab | sealed | a graded build or container can reach | course images loaded |",
            "|---|---|---|---|"]
    for name in LABS:
        lab = get_lab(name)
        reach = ", ".join(f"`{h}` (80, 443, via the proxy)" for h in lab.network) or "nothing"
        rows.append(f"| {name} | {'yes' if lab.sealed_ready else 'NO'} | {reach}; the lab's "
                    f"own containers inside its sandbox | {', '.join(lab.images) or '-'} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*not in session.*")
    os.environ.setdefault("DOCKLAB_LEARNER", "bench-sealed")
    with tempfile.TemporaryDirectory(prefix="docklab-bench-sealed-") as tmp:
        course, students = make_course(Path(tmp), args.batch)
        plain = bench_plain(course, students)
        seed = bench_seed()
        sealed = bench_sealed(course, students, args.parallel)
    same = plain["scores"] == sealed["scores"]
    ratio = sealed["per_minute"] / plain["per_minute"]
    median = sealed["each"][len(sealed["each"]) // 2]
    load = os.getloadavg()[0]
    verdict = []
    verdict.append(f"sealed ≥ 0.7× plain: {'met' if ratio >= 0.7 else 'NOT met'} "
                   f"({ratio:.2f}×)")
    verdict.append(f"sealed ≥ 10 submissions/min with --parallel {args.parallel}: "
                   f"{'met' if sealed['per_minute'] >= 10 else 'NOT met'} "
                   f"({sealed['per_minute']:.1f}/min)")
    body = "\n".join([
        (f"The same {args.batch} mobysay submissions (four answers, each made unique), graded "
        "twice in one run (x86_64, 2 cores)."),
        "",
        "| path | time | submissions/min |",
        "|---|---|---|",
        (f"| plain `nbgrader autograde` (cells run in the grader's kernel, host engine, warm "
        f"layer cache) | {plain['seconds']:.0f} s | {plain['per_minute']:.1f} |"),
        (f"| sealed `docklab grade --parallel {args.parallel}` (a rootless engine per "
        f"submission, started from the lab's seed, then autograde) | {sealed['seconds']:.0f} s "
        f"| {sealed['per_minute']:.1f} |"),
        "",
        (f"The lab's seed (its course images and the reference solution's layer cache, saved "
        f"from a sealed engine), made once per lab and course: {seed:.1f} s. Without seeds, "
        "every sealed engine loaded its images (~2 s) and built with no cache (~12 s for "
        "mobysay: ~1 s per step in a rootless engine): 7.9 submissions/min, 0.28× plain "
        "(measured 2026-12-02 before seeds)."),
        (f"Sealed, one submission judged (median, while {args.parallel} run at once): "
        f"{median:.1f} s. Same scores on both paths: {'yes' if same else 'NO'}."),
        f"Load average (1 min) at the end: {load:.1f}.",
        "",
        "; ".join(verdict) + ".",
        "",
        ("What each lab's grading can reach (never the grading host, its other sandboxes, the LAN "
        "or 169.254.169.254; no DNS):"),
        "",
        *reach_table(),
        "",
        "Rerun: `.venv/bin/python bench/bench_sealed_grading.py` (`--batch N`, `--parallel N`).",
    ])
    print(body)
    if not same:
        print({s: (plain["scores"][s], sealed["scores"][s]) for s in students
               if plain["scores"][s] != sealed["scores"][s]})
    write_section("Sealed grading", body)


if __name__ == "__main__":
    main()
