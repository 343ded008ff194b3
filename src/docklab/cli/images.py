"""``docklab images list|prepare`` (being written)."""

import click


@click.group()
def images() -> None:
    """The course images: list them, prepare them."""


COMMANDS = [images]
