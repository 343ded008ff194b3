"""``docklab docker ARGS``: the docker CLI with the course labels, for JupyterLab's terminal."""

from __future__ import annotations

import sys

import click


@click.command("docker", context_settings={"ignore_unknown_options": True,
                                           "allow_interspersed_args": False,
                                           "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def docker_command(args: tuple[str, ...]) -> None:
    """Run `docker ARGS` with the course's labels on what it creates (run, create, build, network
    and volume create, compose up/create/run), so `docklab clean` and the lessons' cleanup find
    it. In a terminal: `alias docker='docklab docker'`; DOCKLAB_LESSON sets the lesson label."""
    from docklab.docker_cells import main

    sys.exit(main(list(args)))


COMMANDS = [docker_command]
