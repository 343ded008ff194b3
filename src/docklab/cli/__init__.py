"""The ``docklab`` command: set-up, course images, doctor, clean and lab checks."""

from __future__ import annotations

import sys

import click

from docklab.errors import DocklabError


class _Group(click.Group):
    """Shows a DocklabError as its message and hint, never as a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DocklabError as exc:
            click.secho(f"docklab: {exc.message}", fg="red", err=True)
            if exc.hint:
                click.echo(f"  → {exc.hint}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="docklab")
def cli() -> None:
    """docklab: a hands-on Docker course driving a real Docker Engine."""


def _register() -> None:
    from docklab.cli import (check, classroom, clean, docker, doctor, engines, grader, images,
                             setup)

    for module in (check, classroom, clean, docker, doctor, engines, grader, images, setup):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    cli()
