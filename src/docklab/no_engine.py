"""No-engine mode: a notebook without a reachable engine still opens, and says how to get one.

On mybinder.org (no Docker daemon) or a laptop where Docker is stopped, ``lesson.start`` calls
``announce`` once: it explains what works without an engine and how to connect one. Cells that
then need the engine stop with the same short message instead of a stack trace.
"""

from __future__ import annotations

import requests.exceptions

from docklab.errors import EngineError

HOW_TO_CONNECT = """\
What still works: reading the lessons, writing Dockerfiles, and the static checks (hadolint,
Dockerfile structure). Cells that need the engine will stop with this message.

To connect an engine, either:
  • set DOCKER_HOST to an engine on another host — ssh://user@host, or tcp://host:2376 with
    DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH=<folder with ca.pem, cert.pem, key.pem> —
    with the connect panel in 00-index.ipynb, then restart this notebook's kernel;
  • or run the course on your own machine: `make lab` installs and starts an engine (Debian/Ubuntu)
    or uses Docker Desktop.
mybinder.org gives no Docker daemon, so on Binder only a remote engine works."""

_announced = False


def short_message(exc: BaseException) -> str:
    if isinstance(exc, EngineError):
        return f"No Docker Engine for this cell: {exc.message}"
    return f"The Docker Engine stopped answering: {str(exc)[:200]}"


def announce(exc: EngineError) -> None:
    """Say once per kernel that there is no engine, and make engine errors short."""
    global _announced
    if not _announced:
        print(f"⚠ {exc.message}\n\n{HOW_TO_CONNECT}")
        _announced = True
    install_short_errors()


def install_short_errors() -> None:
    """In IPython, show engine errors as one short message, not a traceback."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def handler(shell, etype, value, tb, tb_offset=None):
        print(f"⛔ {short_message(value)}\n   See the message of the setup cell for how to connect "
              "an engine (DOCKER_HOST, or `make lab`).")
        return []

    shell.set_custom_exc((EngineError, requests.exceptions.ConnectionError), handler)


class LateClient:
    """Stands in for the docker client while no engine answers.

    Every use tries to connect again (the learner may have started Docker since), and raises
    the engine error when there is still none.
    """

    def __getattr__(self, name: str):
        from docklab.engine import connect

        return getattr(connect(), name)

    def __repr__(self) -> str:
        return "<docker client: no engine connected yet>"
