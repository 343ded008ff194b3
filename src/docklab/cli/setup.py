"""``docklab setup ...``: set-up steps the Makefile runs."""

import click

from docklab import compose


@click.group()
def setup() -> None:
    """Set-up steps (the Makefile runs these)."""


@setup.command("compose-plugin")
def compose_plugin() -> None:
    """Link the Compose v2 binary as the `docker compose` CLI plugin."""
    target = compose.install_plugin()
    click.echo(f"docker compose → {target} (Compose {compose.compose_version()})")


COMMANDS = [setup]
