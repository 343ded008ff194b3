"""``docklab setup ...``: set-up steps the Makefile runs."""

import json
import sys
from pathlib import Path

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


#: JupyterLab settings the course ships (``{prefix}/share/jupyter/lab/settings/overrides.json``):
#: a learner opening the course is not first asked whether to fetch Jupyter's news, nor told of
#: JupyterLab updates (the course pins its JupyterLab).
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
}


def write_lab_overrides(prefix: Path) -> Path:
    """Merge :data:`LAB_OVERRIDES` into the environment's JupyterLab ``overrides.json``."""
    target = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    current = json.loads(target.read_text()) if target.exists() else {}
    for plugin, values in LAB_OVERRIDES.items():
        current[plugin] = {**current.get(plugin, {}), **values}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(current, indent=2) + "\n")
    return target


@setup.command("lab-settings")
@click.option("--prefix", type=click.Path(file_okay=False, path_type=Path), default=sys.prefix,
              show_default="this Python's environment", help="Where JupyterLab is installed.")
def lab_settings(prefix: Path) -> None:
    """No news or update prompts when JupyterLab opens the course."""
    click.echo(f"JupyterLab settings → {write_lab_overrides(prefix)}")


COMMANDS = [setup]
