"""Judge one submission on a sealed engine of its own: the host side of sealed grading.

    report = judge_cells("mobysay", {"dockerfile": "%%writefile Dockerfile\\nFROM ..."})

The answer cells (read as data, :mod:`docklab.grading.answers`) are written into a temporary
folder; a :class:`~docklab.grading.sealed.SealedEngine` is started from the lab's seed (its course
images and its reference build's cache, :mod:`docklab.grading.seed`) with the lab's network; the lab's checks judge the answer there with the hidden tests; the engine is removed.
Everything here runs in the grader's process, which holds the gradebook: nothing in it executes
learner code. Reports are kept per answer (:func:`~docklab.grading.answers.answer_key`) for the
life of the process, so ``docklab grade`` can judge many submissions in parallel first and let
``nbgrader autograde`` pick the reports up.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from docklab.checks import get_lab
from docklab.checks.base import Report, unjudged
from docklab.errors import DocklabError, EngineError
from docklab.grading.answers import answer_cells, answer_key, read_submission, write_answer
from docklab.grading.sealed import SealedEngine, SealedLimits
from docklab.grading.seed import lab_seed

_reports: dict[str, Report] = {}
_lock = threading.Lock()

#: What the learner reads when the sandbox as a whole was stopped, by bound.
_STOPPED = {
    "wall": "grading took longer than the sandbox's time limit, so it was stopped",
    "memory": "the build or a container used up the sandbox's memory, so it was stopped",
    "pids": "the build or a container started processes without end (a fork bomb?) until the "
            "sandbox's process limit, so it was stopped",
    "stopped": "the sandbox stopped while grading",
}


def judge_cells(lab_id: str, cells: dict[str, str], *, host=None, limits=None,
                sealed_limits: SealedLimits | None = None) -> Report:
    """The report on an answer given as ``{grade_id: cell source}``, judged in a sealed engine."""
    key = answer_key(lab_id, cells) + repr((limits, sealed_limits))
    with _lock:
        if key in _reports:
            return _reports[key]
    lab = get_lab(lab_id)
    if not lab.sealed_ready:
        raise DocklabError(f"The lab {lab_id} cannot be graded on a sealed engine yet: its "
                           "checks would run learner work outside it.",
                           "Grade it with `docklab check` on a machine you can throw away.")
    if host is None:
        from docklab.engine import connect

        host = connect()
    seed = lab_seed(lab, host)
    with tempfile.TemporaryDirectory(prefix=f"docklab-answer-{lab_id}-") as tmp:
        notebook = write_answer(lab_id, cells, Path(tmp))
        with SealedEngine(host, images=lab.images, allow_hosts=lab.network,
                          limits=sealed_limits, lesson=f"grade-{lab_id}", seed=seed) as sealed:
            try:
                report = lab.check(notebook, sealed=sealed, hidden=True, limits=limits)
            except EngineError:
                if not sealed.bound_hit():
                    raise
                report = None
            # A sandbox stopped at a bound fails every check, whatever was seen before it.
            bound = sealed.bound_hit()
            if bound:
                why = _STOPPED.get(bound, _STOPPED["stopped"])
                report = lab.report({check_id: unjudged(f"{why}.") for check_id in lab.check_ids})
                report.details["stopped_at"] = bound
            report.details["sealed"] = dict(sealed.details)
            report.details["network"] = sealed.proxy_log
    with _lock:
        _reports[key] = report
    return report


def judge_notebook(lab_id: str, notebook: dict, **kwargs) -> Report:
    """The report on a submitted notebook (parsed JSON): only its answer cells are read."""
    return judge_cells(lab_id, answer_cells(notebook, lab_id), **kwargs)


def judge_file(lab_id: str, path: str | Path, **kwargs) -> Report:
    """The report on a submitted notebook file."""
    return judge_notebook(lab_id, read_submission(path), **kwargs)
