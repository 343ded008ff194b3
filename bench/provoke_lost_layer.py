"""How often the containerd image store loses a layer mid-build (moby/buildkit#6521), and whether
``%docker build`` gets past it: builders in parallel, each rebuilding its own tag with --no-cache
(the old image left to the engine's garbage collector, as 08-building's rebuild does), through
the course's own ``docklab.docker_cells.run_command``.

    eval "$(.venv/bin/docklab engines start 28 --containerd-store)"
    .venv/bin/python bench/provoke_lost_layer.py [SECONDS] [BUILDERS]
    .venv/bin/docklab engines stop 28

Prints how many builds passed at once, passed after the one more run, or failed.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from docklab import docker_cells
from docklab.buildkit import LOST_LAYER_NOTE
from docklab.lesson import Lesson


def main(seconds: float = 360, builders: int = 3) -> dict[str, int]:
    lesson = Lesson("08-building")
    counts = {"passed": 0, "passed after one more run": 0, "failed": 0}
    lock = threading.Lock()
    end = time.time() + seconds

    def build(n: int, folder: Path) -> None:
        while time.time() < end:
            steps = "".join(f"RUN echo {uuid.uuid4()} > /{step}\n" for step in "abcd")
            (folder / "Dockerfile").write_text(f"FROM python:3.11-slim\n{steps}")
            out: list[str] = []
            try:
                docker_cells.run_command(f"build --no-cache -t lost-layer-{n} .", lesson,
                                         cwd=folder, write=out.append)
                key = "passed after one more run" if LOST_LAYER_NOTE in "".join(out) else "passed"
            except docker_cells.DockerCommandFailed:
                key = "failed"
                print("".join(out)[-500:], flush=True)
            with lock:
                counts[key] += 1

    with tempfile.TemporaryDirectory() as root:
        threads = [threading.Thread(target=build, args=(n, Path(root, str(n))))
                   for n in range(builders)]
        for n, thread in enumerate(threads):
            Path(root, str(n)).mkdir()
            thread.start()
        for thread in threads:
            thread.join()
    lesson.cleanup()  # the builds carry the lesson's labels
    print(counts, flush=True)
    return counts


if __name__ == "__main__":
    args = sys.argv[1:]
    main(float(args[0]) if args else 360, int(args[1]) if len(args) > 1 else 3)
