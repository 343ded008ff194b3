"""Cold and warm set-up times.

cold: a fresh clone with no .venv (pip's cache not used) → `make venv`; then, with --images-cold,
      none of the course images (they are removed first) → `make images`. Their sum is the cold
      set-up time (no images, no venv → course ready).
warm: `make lab` again in that clone → until JupyterLab answers on its port.

Run: .venv/bin/python bench/bench_setup.py [--images-cold]
(--images-cold removes and rebuilds the course images: do not run it while tests use them.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def remove_course_images() -> int:
    out = subprocess.run(["docker", "images", "-q", "--filter", "label=org.docklab.catalogue"],
                         capture_output=True, text=True, check=True).stdout.split()
    if out:
        subprocess.run(["docker", "rmi", "-f", *set(out)], capture_output=True, check=False)
    return len(set(out))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_make_lab(clone: Path) -> float:
    port = free_port()
    start = time.monotonic()
    proc = subprocess.Popen(["make", "lab", f"PORT={port}"], cwd=clone, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        while time.monotonic() - start < 120:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=1) as r:
                    if r.status == 200:
                        return time.monotonic() - start
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("JupyterLab did not answer within 120 s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images-cold", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="docklab-bench-"))
    clone = workdir / "docklab"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1"}
    rows = []
    try:
        start = time.monotonic()
        subprocess.run(["make", "venv"], cwd=clone, env=env, check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL)
        venv = time.monotonic() - start
        rows.append(f"| cold venv: fresh clone, no pip cache → `make venv` | {venv:.0f} s | |")
        if args.images_cold:
            removed = remove_course_images()
            start = time.monotonic()
            subprocess.run(["make", "images"], cwd=clone, env=env, check=True,
                           stdin=subprocess.DEVNULL)
            images = time.monotonic() - start
            rows.append(f"| cold images: {removed} course images removed → `make images` "
                        f"| {images:.0f} s | |")
            rows.append(f"| **cold set-up** (venv + images) | **{venv + images:.0f} s** "
                        "| ≤ 240 s |")
        warm = [time_make_lab(clone) for _ in range(3)]
        rows.append(f"| warm: `make lab` → JupyterLab answers (median of 3: "
                    f"{', '.join(f'{w:.1f}' for w in warm)}) | {sorted(warm)[1]:.1f} s | ≤ 15 s |")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    body = ("Rerun: `.venv/bin/python bench/bench_setup.py --images-cold` (as root; removes and "
            "rebuilds the course images); without `--images-cold` the images stay.\n\n"
            "| what | time | target |\n|---|---|---|\n" + "\n".join(rows))
    print(body)
    write_section("Set-up", body)


if __name__ == "__main__":
    main()
