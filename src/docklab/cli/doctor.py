"""``docklab doctor``: check the machine, say what to fix."""

import json

import click

from docklab.doctor import run_checks


@click.command()
@click.option("--json", "as_json", is_flag=True, help='Print {"ok": bool, "checks": [...]}.')
def doctor(as_json: bool) -> None:
    """Check the engine (version, image store, builder), Compose, course images, free disk and
    the course's ports; warn about an end-of-life engine."""
    checks = run_checks()
    ok = all(c.ok for c in checks)
    if as_json:
        click.echo(json.dumps({"ok": ok, "checks": [c.as_dict() for c in checks]}, indent=2))
    else:
        for c in checks:
            mark = click.style("ok  ", fg="green") if c.ok else click.style("FAIL", fg="red")
            if c.ok and c.warning:
                mark = click.style("warn", fg="yellow")
            click.echo(f"{mark} {c.name:8} {c.detail}")
            if not c.ok and c.fix:
                click.echo(f"     {'':8} → {c.fix}")
            if c.warning:
                click.echo(f"     {'':8} ! {c.warning}")
        click.echo("Ready for the course." if ok else "Not ready yet: fix the items marked FAIL.")
    raise SystemExit(0 if ok else 1)


COMMANDS = [doctor]
