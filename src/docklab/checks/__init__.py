"""Lab checks: one module per lab, used by nbgrader test cells and by ``docklab check``.

    from docklab.checks import mobysay
    report = mobysay.grade(".")      # build and judge the answer in this folder (or a notebook)
    report.assert_passed("builds")

Every lab module has a ``LAB`` (:class:`~docklab.checks.base.Lab`); ``get_lab(name)`` finds it.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from docklab.errors import DocklabError

#: The labs that have checks, in course order.
LABS = ("mobysay", "lifecycle", "volumes", "networking", "compose", "security", "multistage",
        "registry", "orchestration")


def course_root() -> Path:
    """The course checkout: DOCKLAB_COURSE, else the repository this package is installed from."""
    env = os.environ.get("DOCKLAB_COURSE")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[3]


def course_source(lab: str) -> Path:
    """``grader/source/<lab>``: the one source of a lab (its notebook and the files it hands out)."""
    return course_root() / "grader" / "source" / lab


def get_lab(name: str):
    """The :class:`~docklab.checks.base.Lab` called ``name``."""
    if name not in LABS:
        raise DocklabError(f"There is no lab called {name!r}.",
                           f"The labs with checks are: {', '.join(LABS)}.")
    return importlib.import_module(f"docklab.checks.{name}").LAB
