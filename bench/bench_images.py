"""How long the course images take to prepare: each one from cold, and a warm `prepare`.

cold: for each course image in build order, remove it, then `prepare` it again with the build
      cache off (debian:12 is a fresh debootstrap; the others rebuild FROM it). Their sum is the
      cold set-up of the images.
warm: `docklab images prepare` (the command, as `make lab` runs it) when every image is present
      and current (median of 3 runs).

Run: .venv/bin/python bench/bench_images.py [--warm-only] [--no-write]
     (as root, with an engine; it removes and rebuilds the course images one at a time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import docker.errors

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section

from docklab.engine import connect
from docklab.images import CATALOGUE, image_status, prepare
from docklab.images.catalogue import in_build_order
from docklab.images.prepare import image_source

TARGET_COLD = 240  # seconds, the whole cold set-up of the images on 2 cores
TARGET_WARM = 10


def _remove(client, ref: str) -> None:
    try:
        # Untags it; its layers go too unless another image is built FROM it.
        client.images.remove(ref, force=True)
    except docker.errors.ImageNotFound:
        pass


def cold(client, image, attempts: int = 3) -> dict:
    """Remove ``image`` and prepare it again without the build cache."""
    for _ in range(attempts):
        _remove(client, image.ref)
        started = time.monotonic()
        results = prepare(client, [image.name], no_cache=True, progress=False)
        seconds = time.monotonic() - started
        mine = next(r for r in results if r["name"] == image.name)
        # Someone else's prepare on this engine may have put it back meanwhile: measure again.
        if mine["action"] != "present":
            return {"name": image.name, "action": mine["action"], "seconds": seconds}
    raise RuntimeError(f"{image.name} kept reappearing before it could be prepared from cold")


def warm_call(client, runs: int = 3) -> list[float]:
    """``prepare(client)`` in this process, with every image current."""
    times = []
    for _ in range(runs):
        started = time.monotonic()
        results = prepare(client, progress=False)
        times.append(time.monotonic() - started)
        assert all(r["action"] == "present" for r in results), results
    return times


def warm_command(runs: int = 3) -> list[float]:
    """`docklab images prepare` as `make lab` runs it (Python start-up included)."""
    command = [sys.executable, "-m", "docklab.cli", "images", "prepare", "--json"]
    times = []
    for _ in range(runs):
        started = time.monotonic()
        answer = subprocess.run(command, capture_output=True, text=True, check=True)
        times.append(time.monotonic() - started)
        results = json.loads(answer.stdout)["images"]
        assert all(r["action"] == "present" for r in results), results
    return times


def _how_made(rows: list[dict]) -> str:
    actions = {row["action"] for row in rows}
    if actions == {"built"}:
        return "no registry answered, so every image was built locally from Debian packages"
    if actions == {"pulled"}:
        return "every image was pulled from a registry"
    return "some images were pulled, others built locally" if rows else "warm run only"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-only", action="store_true", help="measure only the warm prepare")
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()
    client = connect()
    prepare(client, progress=True)  # start from every image present
    rows = []
    if not args.warm_only:
        for image in in_build_order(CATALOGUE):
            row = cold(client, image)
            print(f"{image.name}: {row['action']} in {row['seconds']:.1f} s", flush=True)
            rows.append(row)
    warm_times = warm_call(client)
    command_times = warm_command()
    sizes = {entry["name"]: entry["size"] or 0 for entry in image_status(client)}
    total = sum(row["seconds"] for row in rows)

    lines = [
        ("Rerun: `.venv/bin/python bench/bench_images.py` (as root, with an engine; it removes "
        "and rebuilds each course image in turn). `--warm-only` skips the cold part."),
        "",
        (f"Machine: {platform.machine()}, {os.cpu_count()} cores, engine "
         f"{client.version().get('Version')}, image source `{image_source()}`: "
         f"{_how_made(rows)}."),
        "",
    ]
    if rows:
        lines += ["| image | cold prepare | how | size |", "|---|---|---|---|"]
        for row in rows:
            how = ("debootstrap + docker import" if row["name"] == "debian:12"
                   else f"{row['action']}")
            lines.append(f"| {row['name']} | {row['seconds']:.1f} s | {how} | "
                         f"{sizes.get(row['name'], 0) / 1e6:.0f} MB |")
        lines += ["", "| what | time | target |", "|---|---|---|",
                  (f"| cold: every image, one after another, no build cache (sum) | "
                  f"{total:.0f} s | ≤ {TARGET_COLD} s |")]
    else:
        lines += ["| what | time | target |", "|---|---|---|"]
    for what, times in (("`prepare(client)` call", warm_times),
                        ("`docklab images prepare` command, Python start-up included",
                         command_times)):
        lines.append(f"| warm: {what}, everything current (median of 3: "
                     f"{', '.join(f'{t:.2f}' for t in times)}) | "
                     f"{statistics.median(times):.2f} s | ≤ {TARGET_WARM} s |")
    body = "\n".join(lines)
    print(body)
    if not args.no_write and rows:
        write_section("Course images", body)


if __name__ == "__main__":
    main()
