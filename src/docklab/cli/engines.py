"""``docklab engines start|list|stop``: other Docker Engines beside the host's."""

import json

import click

from docklab.engine import connect


@click.group()
def engines() -> None:
    """Engines 20.10, 26 and 28 in containers, to run the course on the engines learners have."""


@engines.command("start")
@click.argument("version", type=click.Choice(["20", "26", "28"]))
@click.option("--containerd-store", is_flag=True,
              help="Keep images in containerd's image store (Docker Desktop's default on new "
                   "installs) instead of overlay2.")
@click.option("--no-images", is_flag=True, help="Start it empty: load no course image.")
@click.option("--json", "as_json", is_flag=True, help="Print the engine as JSON.")
def start_engine(version: str, containerd_store: bool, no_images: bool, as_json: bool) -> None:
    """Start engine VERSION in a container, load the course images, print its DOCKER_HOST.

    Its API listens on 127.0.0.1 only (no TLS): use it from this machine, e.g.
    `eval "$(docklab engines start 28)"` (progress goes to stderr).
    """
    from docklab.engines import start

    def say(line: str) -> None:
        click.echo(line, err=True)

    engine = start(connect(), version, containerd_store=containerd_store,
                   images=() if no_images else None, say=say)
    if as_json:
        click.echo(json.dumps(engine.as_dict(), indent=2))
    else:
        click.echo(f"export DOCKER_HOST={engine.docker_host}")


@engines.command("list")
@click.option("--json", "as_json", is_flag=True, help='Print {"engines": [...]} as JSON.')
def list_engines(as_json: bool) -> None:
    """Show the course engines running beside the host's."""
    from docklab.engines import list_engines

    found = list_engines(connect())
    if as_json:
        click.echo(json.dumps({"engines": [e.as_dict() for e in found]}, indent=2))
        return
    if not found:
        click.echo("No course engine runs. Start one: docklab engines start 28")
        return
    for engine in found:
        click.echo(f"{engine.container:36} {engine.version:4} {engine.store:10} "
                   f"DOCKER_HOST={engine.docker_host}")


@engines.command("stop")
@click.argument("version", required=False, type=click.Choice(["20", "26", "28"]))
@click.option("--containerd-store/--overlay2", default=None,
              help="Only the engine with (or without) the containerd image store.")
def stop_engine(version: str | None, containerd_store: bool | None) -> None:
    """Remove the course engines (all, or VERSION's) and their data volumes."""
    from docklab.engines import stop

    removed = stop(connect(), version, containerd_store=containerd_store)
    click.echo(f"removed: {', '.join(removed)}" if removed else "no course engine to remove")


COMMANDS = [engines]
