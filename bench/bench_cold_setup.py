"""Cold set-up on a fresh Debian 12 host: `make setup` (what `make lab` does before it opens
JupyterLab) in a new debian:12 container of the host engine (tests/integration/_fresh_host.py),
with this repository's HEAD copied in, from no engine, no venv and no course images to all three
ready, and the engine it installed answering.

The fresh host is given first what a Debian 12 machine has before anyone runs `make` (python3, and
make and git, which a developer installs to clone and run the README's commands; and writable
cgroups, which a container lacks); that part is not timed. Everything the set-up then fetches comes from this machine's Debian mirror and PyPI, as on a
learner's machine (no pip cache, no wheelhouse).

Run: .venv/bin/python bench/bench_cold_setup.py [--suite trixie]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from _report import write_section
from tests.integration._fresh_host import fresh_host, run

from docklab.engine import connect

#: Where the repository goes in the fresh host.
REPO = "/home/learner/docklab"
#: What a real host has and a container of the host engine lacks: writable cgroup hierarchies
#: (the inner dockerd creates its containers' cgroups there; as the course's docker:dind entry
#: script does).
WRITABLE_CGROUPS = (
    "awk '$3 == \"cgroup\" { print $2 }' /proc/self/mounts"
    " | while read -r h; do mount -o remount,bind,rw \"$h\"; done; "
    "if [ -f /sys/fs/cgroup/cgroup.controllers ]; then mount -o remount,rw /sys/fs/cgroup; "
    "mkdir -p /sys/fs/cgroup/init; xargs -rn1 < /sys/fs/cgroup/cgroup.procs "
    "> /sys/fs/cgroup/init/cgroup.procs; sed -e 's/ / +/g' -e 's/^/+/' "
    "< /sys/fs/cgroup/cgroup.controllers > /sys/fs/cgroup/cgroup.subtree_control; fi; true")
#: The set-up's steps, by the start of the line each prints first.
STEPS = {"docklab: setting up .venv": "venv", "docker compose →": "images"}


def repository_archive() -> bytes:
    """HEAD of this repository as a tar (what a clone holds), under REPO."""
    return subprocess.run(["git", "archive", f"--prefix={REPO.lstrip('/')}/", "HEAD"], cwd=ROOT,
                          check=True, capture_output=True).stdout


def one_run(client, suite: str) -> dict:
    with fresh_host(client, "debian:12") as host:
        base = run(host, f"{WRITABLE_CGROUPS}; apt-get update -q && apt-get install -y -q "
                         "--no-install-recommends python3 make git ca-certificates", timeout=600)
        if base.exit_code != 0:
            raise SystemExit(f"the fresh host's own packages did not install:\n{base.output[-2000:]}")
        host.put_archive("/", io.BytesIO(repository_archive()).getvalue())
        marks: dict[str, float] = {"engine": 0.0}
        started = time.monotonic()

        def say(line: str) -> None:
            elapsed = time.monotonic() - started
            print(f"{elapsed:6.1f} s  {line}", flush=True)
            for prefix, step in STEPS.items():
                if line.startswith(prefix):
                    marks.setdefault(step, elapsed)

        setup = run(host, f"cd {REPO} && make setup", say=say, timeout=1800,
                    env={"DOCKLAB_ENGINE_SUITE": suite})
        seconds = time.monotonic() - started
        if setup.exit_code != 0:
            raise SystemExit(f"make setup failed ({setup.exit_code}) after {seconds:.0f} s")
        version = run(host, "docker version --format '{{.Server.Version}}'").output.strip()
        images = run(host, "docker images --format '{{.Repository}}:{{.Tag}}' | grep -vc none").output
    return {"seconds": seconds, "version": version, "images": images.strip(), "marks": marks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="trixie", help="DOCKLAB_ENGINE_SUITE (trixie or sid)")
    args = parser.parse_args()
    result = one_run(connect(), args.suite)
    steps = ", ".join(f"{step} from {at:.0f} s" for step, at in result["marks"].items())
    minutes = result["seconds"] / 60
    print(f"make setup: {result['seconds']:.0f} s ({minutes:.1f} min); Engine {result['version']}; "
          f"{result['images']} images; {steps}")
    write_section(
        "Cold set-up (fresh Debian 12 host)",
        "Rerun: `.venv/bin/python bench/bench_cold_setup.py` (as root; about 5 minutes, 2 cores "
        "busy). A new debian:12 container of the host engine gets python3, make and git (not "
        "timed: what a machine has before `make`), then HEAD of this repository; `make setup` "
        "(engine, venv, course images: what `make lab` does before JupyterLab opens) runs in it, "
        "fetching from this machine's Debian mirror and PyPI with no cache.\n\n"
        "| engine suite | make setup | Engine answering | course images | steps started at | "
        "target |\n|---|---|---|---|---|---|\n"
        f"| {args.suite} | {result['seconds']:.0f} s ({minutes:.1f} min) | {result['version']} | "
        f"{result['images']} | {steps} | ≤ 4 min |")


if __name__ == "__main__":
    main()
