"""``docklab grader generate|check``: the lab versions generated from grader/source."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def grader() -> None:
    """The nbgrader course: generate labs/ and solutions/ from grader/source."""


@grader.command()
@click.option("--lab", "labs", multiple=True, help="Only this lab (repeatable).")
def generate(labs: tuple[str, ...]) -> None:
    """Regenerate labs/<lab>/ (nbgrader generate_assignment) and solutions/<lab>/."""
    from docklab import grader as course  # nbformat loads slowly: only when grading

    for folder in course.generate(labs=list(labs) or None):
        click.echo(f"wrote {folder}")


@grader.command("check")
def check_current() -> None:
    """Exit 1 when labs/ or solutions/ differ from what grader/source generates."""
    from docklab import grader as course

    stale = course.stale_files()
    for line in stale:
        click.echo(line)
    if stale:
        click.echo("labs/ or solutions/ are stale: run `docklab grader generate`.", err=True)
        raise SystemExit(1)
    click.echo("labs/ and solutions/ match grader/source.")


@click.command()
@click.argument("lab")
@click.option("--parallel", "-j", default=2, show_default=True,
              help="Submissions judged at once, each on a sealed engine of its own.")
@click.option("--student", "students", multiple=True, help="Only this student (repeatable).")
@click.option("--course", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The nbgrader course root (default: grader/ of this checkout).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def grade(lab: str, parallel: int, students: tuple[str, ...], course: Path | None,
          as_json: bool) -> None:
    """Autograde every submission of LAB, each judged on a sealed engine; print a summary.

    The same as `nbgrader autograde LAB` from grader/ (gradebook, feedback and export are
    nbgrader's), with submissions judged PARALLEL at a time and a progress bar. No cell of a
    submission runs on this host.
    """
    import json
    from dataclasses import asdict

    from docklab import grader as course_module
    from docklab.grading.classroom import grade_class, summary_table

    root = course or course_module.course_dir()
    results = grade_class(root, lab, parallel=parallel, students=list(students) or None)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in results], indent=2))
    else:
        click.echo(summary_table(lab, results))


COMMANDS = [grader, grade]
