"""Drives a real JupyterLab in headless Chromium: the course's notebooks run as a learner runs
them, from the Run menu, and what they show is read from the page.

    with serve_jupyterlab(folder, env) as jupyterlab, chromium() as browser:
        run_shipped_in_browser(browser, jupyterlab, path, screenshots)

Used by tests/browser (the host engine) and tests/engines (11-orchestration on Engine 26: it swarms
the engine it runs on, which must not be the shared host engine: tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.notebooks.course import (
    LEFTOVERS_CELL_ID,
    NOT_YET,
    prepared,
    visualizers_in,
    wrong_verdicts,
)
from tests.notebooks.course import leftovers as leftovers_in

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN_TIMEOUT = 600  # seconds for a whole notebook; the lessons take about a minute each
_SCREENSHOTS_TAKEN: set[str] = set()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(folder: Path) -> None:
    """Lab settings for a test: every cell in the DOM (no windowing). (No news prompt: that is
    the course's own setting, from `docklab setup lab-settings`.)"""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }
    for name, value in settings.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(value))


@contextlib.contextmanager
def serve_jupyterlab(base: Path, notebooks: list[Path], env: dict[str, str]) -> Iterator[dict]:
    """A JupyterLab server on a free port, serving a copy of notebooks/ in ``base``, with
    ``notebooks`` as shipped plus the leftovers cell at the end; its kernels get ``env`` added to
    this process's environment (``DOCKLAB_LEARNER``, and ``DOCKER_HOST`` for another engine)."""
    root = base / "root"
    shutil.copytree(ROOT / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for path in notebooks:
        nbformat.write(prepared(path, {}), root / path.name)
    _write_settings(base / "settings")
    token, port = secrets.token_hex(16), _free_port()
    env = {**os.environ, **env, "JUPYTER_CONFIG_DIR": str(base / "config"),
           "JUPYTER_RUNTIME_DIR": str(base / "runtime")}
    if "DOCKER_HOST" in env:
        env.pop("DOCKER_TLS_VERIFY", None)
    log = open(base / "jupyterlab.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
         f"--port={port}", "--ServerApp.port_retries=0", f"--ServerApp.token={token}",
         f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={base / 'settings'}",
         f"--LabApp.workspaces_dir={base / 'workspaces'}"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("JupyterLab did not start:\n"
                            f"{(base / 'jupyterlab.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield {"url": url, "token": token, "root": root, "log": base / "jupyterlab.log"}
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@contextlib.contextmanager
def chromium():
    """Debian's Chromium, headless, driven by Playwright (never a browser Playwright downloads)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: scripts/ensure-browser.sh installs Debian's")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot_folder(tmp_path_factory) -> Path:
    """DOCKLAB_SCREENSHOTS if set (e.g. docs/screenshots), else a temporary folder."""
    folder = os.environ.get("DOCKLAB_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


_STATE_JS = """() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return null;
  const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
    .map(p => p.textContent.trim());
  const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  return {prompts, status: indicator ? indicator.getAttribute('data-status') : null};
}"""

_OUTPUTS_JS = """(indices) => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')];
  return indices.map(i => {
    const area = cells[i] && cells[i].querySelector('.jp-OutputArea');
    return area ? area.innerText : null;
  });
}"""

_ERRORS_JS = """() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  const outputs = [...panel.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')];
  const texts = outputs.map(o => o.textContent).filter(t => /Traceback|Error/.test(t));
  for (const o of panel.querySelectorAll('.jp-OutputArea-output')) {
    if (/Error displaying widget|No Docker Engine/.test(o.textContent)) texts.push(o.textContent);
  }
  return texts;
}"""


#: The open notebook's cells are on the page.
_NOTEBOOK_SHOWN = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell"


def _dialog_text(page) -> str | None:
    return page.evaluate("() => { const d = document.querySelector('dialog.jp-Dialog');"
                         " return d ? d.innerText : null; }")


def _connection_lost(page) -> bool:
    """JupyterLab's "Server Connection Error" dialog: seen under load in the first seconds of a
    notebook, with nothing in the server's log. Reloading the page reconnects."""
    return "Server Connection Error" in (_dialog_text(page) or "")


#: The course kernel's name in JupyterLab (scripts/setup-venv.sh installs it).
COURSE_KERNEL = "Python 3 (docklab)"


def _choose_the_course_kernel(page) -> bool:
    """JupyterLab's "Select Kernel" dialog, where it could not start the notebook's kernel by
    itself (seen once, a clean clone's 05-compose, the dialog up as Run All was to be clicked):
    choose the course's kernel, as a learner would. True if the dialog was there."""
    if not (_dialog_text(page) or "").startswith("Select Kernel"):
        return False
    with contextlib.suppress(PlaywrightError):  # else the one offered first
        page.select_option("dialog.jp-Dialog select", label=COURSE_KERNEL, timeout=5_000)
    page.click("dialog.jp-Dialog .jp-mod-accept")
    return True


def _wait_for_idle_kernel(page, jupyterlab, name: str, timeout: float = 300,
                          reload_after: float = 90) -> None:
    """Wait until the open notebook's kernel says it is idle.

    On a busy machine the page has been seen waiting 300 s for a kernel (CI, stop 19): once,
    after ``reload_after`` seconds or as soon as JupyterLab says it lost its server connection,
    the page is reloaded (it reconnects to the same session). If the kernel is still not idle,
    fail with what would explain it: the kernel's status in the page, any dialog JupyterLab
    shows, the server's sessions, and the end of the server's log.
    """
    page.wait_for_selector(_NOTEBOOK_SHOWN, timeout=300_000)
    start, reloaded, status = time.monotonic(), False, None
    while time.monotonic() - start < timeout:
        _choose_the_course_kernel(page)
        state = page.evaluate(_STATE_JS)
        status = state and state["status"]
        if status == "idle":
            return
        if not reloaded and (time.monotonic() - start > reload_after or _connection_lost(page)):
            page.reload()
            page.wait_for_selector(_NOTEBOOK_SHOWN, timeout=300_000)
            reloaded = True
        time.sleep(0.5)
    base, token = jupyterlab["url"], jupyterlab["token"]
    try:
        with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=10) as reply:
            sessions = reply.read().decode()[:2000]
    except OSError as error:
        sessions = f"(could not ask: {error})"
    log = Path(jupyterlab["log"]).read_text(errors="replace")[-3000:]
    pytest.fail(f"{name}: the kernel was not idle after {timeout:.0f} s (reloaded once): "
                f"status {status!r}, dialog {_dialog_text(page)!r}\nsessions: {sessions}\n"
                f"end of the JupyterLab log:\n{log}")


def _click_run_all(page, name: str) -> bool:
    """Run ▸ Run All Cells; False if JupyterLab has lost its server connection (its dialog
    takes the click). Any other dialog, or a click that fails for another reason, fails."""
    page.keyboard.press("Escape")
    if _connection_lost(page):
        return False
    dialog = _dialog_text(page)
    if dialog:  # it would take the click: say what JupyterLab asks instead
        pytest.fail(f"{name}: JupyterLab shows a dialog: {dialog[:1000]}")
    try:
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-item[data-command='runmenu:run-all']")
    except PlaywrightTimeout:
        if _connection_lost(page):  # the dialog came up between the look and the click
            return False
        raise
    return True


def run_all_cells(page, jupyterlab, name: str, on_progress=None, last_shot: int = -2
                  ) -> list[int]:
    """Open a notebook, wait for its kernel, and run every cell from the Run menu.

    ``on_progress()`` is called every few seconds until the code cell at ``last_shot`` (the one
    before the cleanup cell) has run. Returns the indices of code cells that did not run (after
    a failing cell).
    """
    # A workspace of its own: the default one would reopen the notebooks of earlier tests too.
    workspace = re.sub(r"[^a-z0-9]", "-", name.lower())
    page.goto(f"{jupyterlab['url']}/lab/workspaces/{workspace}/tree/{name}"
              f"?token={jupyterlab['token']}")
    _wait_for_idle_kernel(page, jupyterlab, name)
    deadline = time.monotonic() + RUN_TIMEOUT
    started, clicked, quiet_since, reconnects, reruns = False, 0.0, None, 0, 0
    while time.monotonic() < deadline:
        if not started and time.monotonic() - clicked > 30:
            # Run ▸ Run All Cells (again, if a kernel that was still connecting swallowed it)
            if _choose_the_course_kernel(page):
                _wait_for_idle_kernel(page, jupyterlab, name)
            if not _click_run_all(page, name):
                # Nothing has run yet: a lost connection is mended by reloading the page
                if reconnects == 2:
                    pytest.fail(f"{name}: JupyterLab lost its server connection three times")
                reconnects += 1
                page.reload()
                _wait_for_idle_kernel(page, jupyterlab, name)
                continue
            clicked = time.monotonic()
        state = page.evaluate(_STATE_JS) or {"prompts": [], "status": None}
        prompts = state["prompts"]
        busy = any("*" in p for p in prompts) or state["status"] == "busy"
        # Started once a cell is queued ([*]) or has run ([1]): the kernel alone saying "busy"
        # (it does, for its own start-up messages) once let a run that never began pass for a
        # finished one, every cell unrun (04-networking, a clean-clone run).
        started = started or any("*" in p or re.search(r"\d", p) for p in prompts)
        if on_progress and started and len(prompts) > -last_shot and not re.fullmatch(
                r"\[\d+\]:", prompts[last_shot]):
            on_progress()
        if started and not busy:
            # Done, or stopped at a failing cell (Run All skips the rest): quiet for 3 s either way
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 3:
                not_run = [i for i, p in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", p)]
                if not_run and not page.evaluate(_ERRORS_JS) and reruns == 0:
                    # Run All stops early only at a cell that raised, which shows its error. With
                    # no error shown, JupyterLab dropped the queued cells: seen once, when it
                    # replaced the notebook's kernel just as the page opened (04-networking ran
                    # its first cell only). Run All once more; a lesson's setup cell may run twice.
                    reruns += 1
                    started, clicked, quiet_since = False, 0.0, None
                    continue
                return not_run
        else:
            quiet_since = None
        time.sleep(0.5)
    pytest.fail(f"{name}: cells still running after {RUN_TIMEOUT} s: {prompts}")


def shut_down_kernels(jupyterlab) -> None:
    """Stop every kernel the server runs (a failed test must not leave one behind)."""
    base, token = jupyterlab["url"], jupyterlab["token"]
    with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=10) as reply:
        sessions = json.load(reply)
    for session in sessions:
        request = urllib.request.Request(f"{base}/api/sessions/{session['id']}?token={token}",
                                         method="DELETE")
        try:
            urllib.request.urlopen(request, timeout=30).close()
        except OSError:
            pass


def check_views(page, name: str, views: dict[str, str], screenshots: Path,
                not_run: list[int]) -> None:
    errors = page.evaluate(_ERRORS_JS)
    assert not errors, f"{name}: error output in the notebook:\n" + "\n---\n".join(errors)[:4000]
    assert not not_run, f"{name}: code cells {not_run} did not run"
    for view, module in views.items():
        frame = page.locator(
            f".jp-OutputArea-output .widget-html .docklab-frame[data-docklab-view='{view}']")
        frame.first.wait_for(state="visible", timeout=30_000)
        text = frame.first.inner_text()
        assert "engine unreachable" not in text and "cannot draw" not in text, (
            f"{name}: {view} rendered a problem: {text[:500]}")
        if module not in _SCREENSHOTS_TAKEN:  # no picture from before the cleanup: take this one
            frame.first.scroll_into_view_if_needed()
            frame.first.screenshot(path=str(screenshots / f"{module}.png"))
            _SCREENSHOTS_TAKEN.add(module)


def check_shipped_run(page, path: Path) -> None:
    """What the "as shipped" run must show: each self-check said "Not yet", and the leftovers
    cell (the last) found nothing of the lesson's on the engine after the cleanup cell."""
    nb = prepared(path, {})
    checks = {cell.id: i for i, cell in enumerate(nb.cells)
              if "self-check" in cell.metadata.get("tags", [])}
    assert nb.cells[-1].get("id") == LEFTOVERS_CELL_ID
    texts = page.evaluate(_OUTPUTS_JS, [*checks.values(), len(nb.cells) - 1])
    verdicts = dict(zip(checks, texts[:-1], strict=True))
    wrong = wrong_verdicts({cell: text or "" for cell, text in verdicts.items()}, NOT_YET)
    assert not wrong, f"{path.name}: with the exercises not done, self-checks said {wrong}"
    assert texts[-1], f"{path.name}: the leftovers cell printed nothing"
    left = leftovers_in(texts[-1])
    assert not any(left.values()), f"{path.name}: the cleanup cell left these behind: {left}"


class Snapshots:
    """Screenshots of a notebook's views while it runs, the last one just before its cleanup
    cell (which empties most views). The first lesson that uses a view provides its picture."""

    def __init__(self, page, views: dict[str, str], folder: Path, every: float = 3.0):
        self.page, self.folder, self.every = page, folder, every
        self.views = {v: m for v, m in views.items() if m not in _SCREENSHOTS_TAKEN}
        self.taken: set[str] = set()
        self.last = 0.0

    def __call__(self) -> None:
        if time.monotonic() - self.last < self.every:
            return
        self.last = time.monotonic()
        for view, module in self.views.items():
            frames = self.page.locator(f".jp-OutputArea-output .widget-html "
                                       f".docklab-frame[data-docklab-view='{view}']")
            try:
                if frames.count():
                    frames.first.screenshot(path=str(self.folder / f"{module}.png"), timeout=5000)
                    self.taken.add(module)
            except Exception:  # noqa: BLE001, S110 - redrawn while shot: the next round takes it
                pass

    def done(self) -> None:
        _SCREENSHOTS_TAKEN.update(self.taken)


def run_shipped_in_browser(browser, jupyterlab, path: Path, screenshots: Path) -> None:
    """Run ``path`` as shipped in JupyterLab and check what a learner would see: every cell ran
    with no error output, each view rendered, each self-check said "Not yet", the cleanup cell
    left nothing behind, and the lifecycle view (where there is one) followed the containers."""
    views = visualizers_in(path)
    page = browser.new_page(viewport={"width": 1280, "height": 3000})
    try:
        snapshots = Snapshots(page, views, screenshots)
        not_run = run_all_cells(page, jupyterlab, path.name, last_shot=-3,
                                on_progress=snapshots if os.environ.get("DOCKLAB_SCREENSHOTS")
                                else None)
        snapshots.done()
        check_views(page, path.name, views, screenshots, not_run)
        check_shipped_run(page, path)
        # the lifecycle view followed the lesson live: its timeline has the lesson's containers
        if "LifecycleView" in views:
            timeline = page.locator(".docklab-frame[data-docklab-view='LifecycleView'] "
                                    ".docklab-timeline").first.inner_text()
            assert "docker stop" in timeline or "docker kill" in timeline, timeline[:1000]
    finally:
        page.close()
        shut_down_kernels(jupyterlab)
