"""A learner's answer, made ready to grade: a build context we control, whatever was handed in.

An answer is either a folder (a build context: ``Dockerfile`` and the files it copies) or a
notebook (the ``%%writefile Dockerfile`` cell is written out next to the lab's own files, e.g.
``moby.cow``). The build context sent to the engine is a tar made here, so that it is bounded:

- only files below the answer's folder go in (``.dockerignore`` is honoured, as ``docker build``
  does); a symlink goes in as a symlink and is never followed, so it cannot bring in a file from
  outside (the engine resolves it inside the context, where nothing outside exists);
- the total size is capped (``Limits.context_bytes``); sockets, pipes and devices are left out.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from docker.utils.build import exclude_paths

from docklab.checks.base import fingerprint
from docklab.errors import DocklabError

#: The text nbgrader leaves where a solution was taken out.
PLACEHOLDER = "raise NotImplementedError"


@dataclass
class PreparedAnswer:
    """A build context ready to send, and what is known about it before building."""

    source: Path
    kind: str                     # "folder" or "notebook"
    context: Path
    dockerfile: str | None        # its text, or None when there is none
    files: dict[str, bytes] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    _tar: bytes = b""

    def fingerprint(self, extra: str = "") -> str:
        return fingerprint({**self.files, "\0problems": "\n".join(self.problems).encode()},
                           extra)

    def tar(self) -> io.BytesIO:
        """The build context as an uncompressed tar stream (``docker build`` sends the same)."""
        return io.BytesIO(self._tar)

    @property
    def has_placeholder(self) -> bool:
        return self.dockerfile is not None and PLACEHOLDER in self.dockerfile


@contextlib.contextmanager
def open_answer(path: str | os.PathLike, lab_files: dict[str, Path], *, limits):
    """Yield a :class:`PreparedAnswer` for a folder or a notebook; temporary files go afterwards."""
    source = Path(path)
    if not source.exists():
        raise DocklabError(f"No answer at {source}.",
                           "Give the folder that holds your Dockerfile, or your lab notebook.")
    if source.is_dir():
        yield _prepare(source, source, "folder", limits)
        return
    if source.suffix != ".ipynb":
        raise DocklabError(f"{source} is neither a folder nor a notebook (.ipynb).",
                           "Give the folder that holds your Dockerfile, or your lab notebook.")
    with tempfile.TemporaryDirectory(prefix="docklab-answer-") as tmp:
        context = Path(tmp)
        for name, lab_file in lab_files.items():
            shutil.copyfile(lab_file, context / name)
        text, problem = dockerfile_from_notebook(source)
        if text is not None:
            (context / "Dockerfile").write_text(text)
        answer = _prepare(source, context, "notebook", limits)
        if problem:
            answer.problems.append(problem)
        yield answer


def answer_file(answer, *names: str) -> tuple[str | None, str]:
    """The text of the learner's file ``names[0]`` (or another of ``names``) in a prepared
    answer: a folder's file, or the notebook's last ``%%writefile`` cell of one of them; else
    (None, why not). Read as text, never run."""
    if answer.kind == "notebook":
        return writefile_cell(Path(answer.source), *names)
    for name in names:
        if name in answer.files:
            return answer.files[name].decode("utf-8", "replace"), ""
    return None, (f"There is no {names[0]} in {answer.source}: run the %%writefile {names[0]} "
                  "cell, which writes it next to the notebook.")


def writefile_cell(notebook: Path, *names: str) -> tuple[str | None, str]:
    """The body of the last ``%%writefile <name>`` cell (any of ``names``), or (None, why not).

    The one reader of a file a lab's notebook writes (a Dockerfile, compose.yaml, run.sh,
    publish.py ...): read as text, never run. ``-a``/``--append`` and ``./`` are accepted.
    """
    wanted = "|".join(re.escape(name) for name in names)
    pattern = re.compile(rf"^\s*%%writefile\s+(?:-a\s+|--append\s+)?[\"']?(?:\./)?(?:{wanted})"
                         rf"[\"']?\s*$")
    try:
        cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError) as exc:
        return None, (f"The notebook {Path(notebook).name} could not be read "
                      f"({exc.__class__.__name__}).")
    body = None
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        first, _, rest = source.partition("\n")
        if pattern.match(first):
            body = rest
    if body is None:
        return None, (f"{Path(notebook).name} has no cell starting with %%writefile {names[0]}: "
                      f"that cell is where the lab's {names[0]} is written.")
    return body, ""


def dockerfile_from_notebook(notebook: Path) -> tuple[str | None, str | None]:
    """The body of the last ``%%writefile Dockerfile`` cell, or (None, why not)."""
    body, problem = writefile_cell(notebook, "Dockerfile")
    if body is None:
        return None, problem
    return (body if body.endswith("\n") else body + "\n"), None


def _prepare(source: Path, context: Path, kind: str, limits) -> PreparedAnswer:
    dockerfile_path = context / "Dockerfile"
    dockerfile = None
    if dockerfile_path.is_file() and not dockerfile_path.is_symlink():
        dockerfile = dockerfile_path.read_bytes()[: limits.context_bytes].decode("utf-8", "replace")
    answer = PreparedAnswer(source=source, kind=kind, context=context, dockerfile=dockerfile)
    answer._tar = _tar_context(context, answer, limits.context_bytes)
    return answer


def _ignore_patterns(root: Path) -> list[str]:
    ignore = root / ".dockerignore"
    if not ignore.is_file() or ignore.is_symlink():
        return []
    lines = ignore.read_text(errors="replace").splitlines()[:1000]
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _tar_context(root: Path, answer: PreparedAnswer, cap: int) -> bytes:
    buffer = io.BytesIO()
    total = 0
    with tarfile.open(mode="w", fileobj=buffer, format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(exclude_paths(str(root), _ignore_patterns(root))):
            full = root / rel
            try:
                info = full.lstat()
            except OSError:
                continue
            entry = tarfile.TarInfo(rel)
            entry.mtime = int(info.st_mtime) if 0 <= info.st_mtime < 8**11 else 0
            entry.mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                # Kept as a link and never followed: the engine resolves it inside the context.
                entry.type = tarfile.SYMTYPE
                entry.linkname = os.readlink(full)
                answer.files[rel] = b"-> " + entry.linkname.encode(errors="replace")
                tar.addfile(entry)
            elif stat.S_ISDIR(info.st_mode):
                entry.type = tarfile.DIRTYPE
                tar.addfile(entry)
            elif stat.S_ISREG(info.st_mode):
                total += info.st_size
                if total > cap:
                    answer.problems.append(
                        f"The build context is larger than {cap // 1024 // 1024} MiB; grading "
                        "sends only the first files. Keep only what the Dockerfile copies.")
                    break
                with open(full, "rb") as handle:
                    data = handle.read(info.st_size)
                entry.size = len(data)
                answer.files[rel] = data
                tar.addfile(entry, io.BytesIO(data))
            # sockets, pipes and devices are left out, as they cannot be part of an image
    return buffer.getvalue()
