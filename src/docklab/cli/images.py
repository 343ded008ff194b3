"""``docklab images list|prepare``: the course images."""

import json

import click

from docklab.engine import connect


@click.group()
def images() -> None:
    """The course images: list them, prepare them."""


def _size(size) -> str:
    if not size:
        return "-"
    return f"{size / 1e6:.0f} MB" if size < 1e9 else f"{size / 1e9:.2f} GB"


@images.command("list")
@click.option("--json", "as_json", is_flag=True, help='Print {"images": [...]} as JSON.')
def list_images(as_json: bool) -> None:
    """Show each course image: present or not, pulled or built here, current or stale."""
    from docklab.images import image_status

    status = image_status(connect())
    if as_json:
        click.echo(json.dumps({"images": status}, indent=2))
        return
    rows = [("IMAGE", "PRESENT", "SOURCE", "CURRENT", "SIZE", "DESCRIPTION")]
    for entry in status:
        rows.append((
            entry["name"],
            "yes" if entry["present"] else "no",
            entry["source"] or "-",
            "yes" if entry["current"] else "no",
            _size(entry["size"]),
            entry["description"],
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[5])
    missing = [e["name"] for e in status if not e["current"] and not e["on_demand"]]
    if missing:
        click.echo(f"\nTo prepare {', '.join(missing)}: docklab images prepare")
    engines = [e["name"] for e in status if not e["current"] and e["on_demand"]]
    if engines:
        click.echo(f"Built when asked for: {', '.join(engines)} (docklab engines start VERSION, "
                   "or docklab images prepare NAME)")


@images.command("prepare")
@click.argument("names", nargs=-1)
@click.option("--source", type=click.Choice(["auto", "pull", "build"]), default=None,
              help="Pull, build locally, or pull where a registry answers and build otherwise "
                   "(default: $DOCKLAB_IMAGE_SOURCE, else auto).")
@click.option("--no-cache", is_flag=True, help="Build without the engine's build cache.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
def prepare_images(names: tuple[str, ...], source: str | None, no_cache: bool, quiet: bool,
                   as_json: bool) -> None:
    """Make the course images present (all but the engines, or NAMES and what they build FROM).

    Each is pulled where a registry answers, otherwise built here from Debian packages; an image
    that is already present and current is left alone.
    """
    from docklab.images import prepare

    results = prepare(connect(), list(names) or None, source=source, no_cache=no_cache,
                      progress=not (quiet or as_json))
    if as_json:
        click.echo(json.dumps({"images": results}, indent=2))
        return
    total = sum(r["seconds"] for r in results)
    counts = {action: sum(r["action"] == action for r in results)
              for action in ("built", "pulled", "present")}
    summary = ", ".join(f"{n} {action}" for action, n in counts.items() if n)
    click.echo(f"course images ready: {summary} ({total:.0f} s)")


COMMANDS = [images]
