"""``docklab check <lab> <answer>``: grade a lab answer the way nbgrader's test cells do."""

from __future__ import annotations

import json
import sys

import click

from docklab.checks import LABS, get_lab
from docklab.checks.sandbox import Limits


@click.command()
@click.argument("lab", type=click.Choice(LABS))
@click.argument("answer", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--build-timeout", type=float, help="Seconds a build may take (default 200).")
@click.option("--run-timeout", type=float, help="Seconds a container may run (default 15).")
def check(lab: str, answer: str, as_json: bool, build_timeout: float | None,
          run_timeout: float | None) -> None:
    """Build and judge ANSWER for LAB: a folder with the Dockerfile, or the lab's notebook.

    Prints one row per check with its points and feedback; exits 0 when every check passes,
    1 when some fail. Everything built or run for grading is removed afterwards.
    """
    overrides = {k: v for k, v in (("build_timeout", build_timeout),
                                   ("run_timeout", run_timeout)) if v}
    report = get_lab(lab).check(answer, limits=Limits.from_env(**overrides))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(report.table())
    sys.exit(0 if report.all_passed else 1)


COMMANDS = [check]
