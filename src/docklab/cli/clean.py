"""``docklab clean``: remove exactly the labelled resources, nothing else."""

import json

import click

from docklab import labels
from docklab.engine import connect


@click.command()
@click.option("--yes", is_flag=True, help="Remove without asking.")
@click.option("--lesson", help="Only what this lesson or lab made.")
@click.option("--learner", help="Only what this learner made.")
@click.option("--session", help="Only what this session made.")
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
def clean(yes: bool, lesson: str | None, learner: str | None, session: str | None,
          as_json: bool) -> None:
    """Remove containers, services, networks, volumes and images labelled org.docklab.managed=true.

    Catalogue images (busybox, debian:12, ...) stay; unlabelled resources are never touched.
    """
    client = connect()
    scope = {"lesson": lesson, "learner": learner, "session": session}
    found = labels.find_labelled(client, **scope)
    count = sum(len(v) for v in found.values())
    if count == 0:
        click.echo(json.dumps(labels.Removed().as_dict()) if as_json else "Nothing to clean.")
        return
    if not yes:
        for kind, items in found.items():
            for item in items:
                name = getattr(item, "name", None) or (item.tags or [item.short_id])[0]
                click.echo(f"  {kind[:-1]:9} {name}")
        if not click.confirm(f"Remove these {count} resources?", default=False):
            raise SystemExit(1)
    removed = labels.remove_labelled(client, **scope)
    if as_json:
        click.echo(json.dumps(removed.as_dict()))
    else:
        for kind, names in removed.as_dict().items():
            if names and kind != "errors":
                click.echo(f"removed {len(names)} {kind}: {', '.join(names)}")
        for error in removed.errors:
            click.secho(f"could not remove {error}", fg="yellow", err=True)
    if removed.errors:
        raise SystemExit(1)


COMMANDS = [clean]
