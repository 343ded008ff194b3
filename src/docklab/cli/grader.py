"""``docklab grader generate|check``: the lab versions generated from grader/source."""

from __future__ import annotations

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


COMMANDS = [grader]
