"""The Binder launch, from the binder/ files alone: a fresh venv, binder/requirements.txt, then
binder/postBuild from the repository root — as mybinder.org does it, with no Docker daemon.
(The requirements are installed with uv instead of Binder's pip: the same pins, faster.)"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, SocketForwarder

pytestmark = pytest.mark.engine  # the last test runs a notebook against the real engine

UV = str(Path(sys.executable).with_name("uv"))  # from the test extras, in this venv


def _tracked_files_copy(dest: Path) -> Path:
    """The repository as Binder clones it: tracked files (and those about to be) only."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def binder(tmp_path_factory):
    repo = _tracked_files_copy(tmp_path_factory.mktemp("binder-repo"))
    venv = tmp_path_factory.mktemp("binder-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PATH": f"{venv}/bin:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    # uv installs the same pinned requirements as Binder's pip does, in a fraction of the time
    # (parallel downloads, no build of anything): the environment is what the test is about.
    uv = subprocess.run([UV, "pip", "install", "--quiet", "--python", f"{venv}/bin/python",
                         "-r", "binder/requirements.txt"],
                        cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert uv.returncode == 0, uv.stderr[-3000:]
    post = subprocess.run(["bash", "binder/postBuild"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=600)
    assert post.returncode == 0, post.stdout[-2000:] + post.stderr[-3000:]
    return repo, venv, env


def _run_notebook(binder, notebook: str, docker_host: str) -> list[dict]:
    repo, venv, env = binder
    script = (
        "import sys, json, nbformat\n"
        "from nbclient import NotebookClient\n"
        "nb = nbformat.read(sys.argv[1], as_version=4)\n"
        "NotebookClient(nb, timeout=180, kernel_name='python3', allow_errors=True,\n"
        "               resources={'metadata': {'path': sys.argv[2]}}).execute()\n"
        "print(json.dumps([c.get('outputs', []) for c in nb.cells if c.cell_type == 'code']))\n"
    )
    run_env = {**env, "DOCKER_HOST": docker_host,
               "DOCKLAB_ENGINE_FILE": str(repo / "no-saved-engine.json")}
    out = subprocess.run([f"{venv}/bin/python", "-c", script, str(repo / notebook),
                          str(repo / "notebooks")], cwd=repo, env=run_env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def _texts(outputs: list[list[dict]]) -> str:
    parts = []
    for cell in outputs:
        for o in cell:
            parts.append(o.get("text", ""))
            for key in ("text/plain", "text/html", "text/markdown"):
                value = o.get("data", {}).get(key, "")
                parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(parts)


def _errors(outputs: list[list[dict]]) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" for cell in outputs for o in cell
            if o.get("output_type") == "error"]


def test_docklab_imports_and_the_nbgrader_extension_is_enabled(binder):
    repo, venv, env = binder
    imp = subprocess.run([f"{venv}/bin/python", "-c", "import docklab, sys; print(docklab.__file__)"],
                         cwd="/", env=env, capture_output=True, text=True)
    assert imp.returncode == 0, imp.stderr
    assert str(venv) in imp.stdout  # installed into the Binder environment, not our checkout
    ext = subprocess.run([f"{venv}/bin/jupyter", "labextension", "list"], env=env,
                         capture_output=True, text=True)
    listing = ext.stdout + ext.stderr
    line = next((ln for ln in listing.splitlines() if "nbgrader" in ln), "")
    assert "enabled" in line and "OK" in line, listing


def test_jupyterlab_serves_the_notebooks(binder):
    repo, venv, env = binder
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [f"{venv}/bin/jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
         "--ServerApp.token=binder-test", f"--ServerApp.root_dir={repo}"],
        cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/api/contents/notebooks?token=binder-test"
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    listing = json.load(r)
                break
            except OSError:
                assert time.monotonic() < deadline, "JupyterLab did not answer"
                time.sleep(0.5)
        names = {item["name"] for item in listing["content"]}
        assert "00-index.ipynb" in names
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token=binder-test") as r:
            assert r.status == 200 and b"JupyterLab" in r.read()
        # postBuild's `docklab setup lab-settings`: no "get Jupyter news?" prompt on Binder.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab/api/settings/@jupyterlab/"
                                    "apputils-extension:notification?token=binder-test") as r:
            assert json.load(r)["schema"]["properties"]["fetchNews"]["default"] == "false"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_the_index_runs_without_an_engine_and_says_how_to_connect(binder, tmp_path):
    outputs = _run_notebook(binder, "notebooks/00-index.ipynb", f"unix://{tmp_path}/no.sock")
    assert _errors(outputs) == []
    text = _texts(outputs)
    assert "DOCKER_HOST" in text
    assert "ssh://" in text and "tcp://" in text


def test_a_notebook_runs_against_an_engine_over_tcp(binder):
    forwarder = SocketForwarder()
    try:
        outputs = _run_notebook(binder, "notebooks/02-running.ipynb", forwarder.docker_host)
    finally:
        forwarder.close()
    assert _errors(outputs) == []
    assert forwarder.connections > 0
