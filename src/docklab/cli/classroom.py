"""``docklab classroom up|status|add|down``: JupyterHub for a class on this host."""

import json

import click


def _say(line: str) -> None:
    click.echo(line, err=True)


@click.group()
def classroom() -> None:
    """A class on this host: JupyterHub, each learner with JupyterLab and a private engine.

    Settings come from DOCKLAB_CLASSROOM_* (PORT, IP, IMAGES, MEMORY, CPUS, PIDS, ENGINE_MEMORY,
    IDLE_TIMEOUT, ...; see docklab.classroom.settings).
    """


@classroom.command("up")
def up_command() -> None:
    """Build what is missing and start the hub; prints where to log in."""
    from docklab.classroom.hub import up
    from docklab.classroom.settings import Settings

    settings = Settings.from_env()
    up(settings, say=_say)
    state = settings.state_dir()
    click.echo(f"Open {settings.url} and log in.")
    click.echo(f"  instructor: {settings.admin}, password in {state / 'admin-password'}")
    click.echo(f"  learners:   the names you add (docklab classroom add NAME...), "
               f"password in {state / 'password'}")


@classroom.command("add")
@click.argument("names", nargs=-1, required=True)
def add_command(names: tuple[str, ...]) -> None:
    """Let learners NAMES log in (through the hub's REST API)."""
    from docklab.classroom.hub import hub_client
    from docklab.classroom.settings import Settings

    hub_client(Settings.from_env()).add_learners(*names)
    click.echo(f"added: {', '.join(names)}")


@classroom.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def status_command(as_json: bool) -> None:
    """The hub, each learner's server and engine, and their memory."""
    from docklab.classroom.hub import status

    report = status()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"{report['name']}: hub {report['hub']} at {report['url']}")
    for name, learner in sorted(report["learners"].items()):
        parts = [f"{c['role']} {c['status']} {c['memory_mib']} MiB"
                 for c in learner["containers"].values()]
        click.echo(f"  {name:20} server {learner['server']:8} {'; '.join(parts)}")


@classroom.command("down")
@click.option("--purge", is_flag=True, help="Also forget the learners, secrets and log.")
def down_command(purge: bool) -> None:
    """Stop the hub and remove every learner's container, engine and volume."""
    from docklab.classroom.hub import down

    down(purge=purge, say=_say)


COMMANDS = [classroom]
