"""``docklab classroom up|status|add|down``: JupyterHub for a class on this host; ``release``,
``collect`` and ``feedback``: nbgrader's exchange between the instructor and the learners."""

import json
from pathlib import Path

import click


def _say(line: str) -> None:
    click.echo(line, err=True)


@click.group()
def classroom() -> None:
    """A class on this host: JupyterHub, each learner with JupyterLab and a private engine;
    labs released, collected and returned with feedback through nbgrader's exchange.

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


_course_option = click.option(
    "--course", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="The nbgrader course root (default: grader/ of this checkout).")


def _course(course: Path | None) -> Path:
    from docklab import grader

    return course or grader.course_dir()


@classroom.command("release")
@click.argument("lab")
@_course_option
def release_command(lab: str, course: Path | None) -> None:
    """Hand LAB out: nbgrader generate_assignment, then the student version into the exchange,
    where each learner fetches it (Assignments tab, or `nbgrader fetch_assignment LAB`)."""
    from docklab.classroom.exchange import release
    from docklab.classroom.settings import Settings

    target = release(Settings.from_env(), _course(course), lab)
    click.echo(f"released {lab}: {target}")


@classroom.command("collect")
@click.argument("lab")
@_course_option
def collect_command(lab: str, course: Path | None) -> None:
    """Copy each learner's latest submission of LAB into the course's submitted/ (then grade it
    with `docklab grade LAB`)."""
    from docklab.classroom.exchange import collect
    from docklab.classroom.settings import Settings

    root = _course(course)
    for result in collect(Settings.from_env(), root, lab):
        taken = (f"{result.timestamp}, {len(result.files)} file(s)" if result.submission
                 else "nothing handed in")
        click.echo(f"  {result.learner:20} {taken}")
        for line in result.skipped:
            click.echo(f"  {'':20} left out: {line}")
    click.echo(f"collected into {root / 'submitted'}; next: docklab grade {lab}"
               + (f" --course {course}" if course else ""))


@classroom.command("feedback")
@click.argument("lab")
@_course_option
def feedback_command(lab: str, course: Path | None) -> None:
    """Generate LAB's feedback (nbgrader generate_feedback) and give each learner theirs, where
    `nbgrader fetch_feedback LAB` (or the Assignments tab) finds it."""
    from docklab.classroom.exchange import return_feedback
    from docklab.classroom.settings import Settings

    returned = return_feedback(Settings.from_env(), _course(course), lab)
    for name, pages in sorted(returned.items()):
        click.echo(f"  {name:20} {len(pages)} page(s)")
    click.echo(f"feedback of {lab} returned to {len(returned)} learner(s)")


COMMANDS = [classroom]
