"""Answers a learner records in a lab notebook as plain values (``EXIT_CODE = <the number>``).

Grading reads them from the notebook's code cells as literals, with ``ast.literal_eval``: the
learner's code is never executed to get them. Cell magics (``%%writefile``) are skipped, and lines
of line magics or shell escapes (``%``, ``!``) are ignored. The last assignment wins, as it would
when the notebook runs top to bottom.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

#: The text nbgrader leaves where a solution was taken out.
PLACEHOLDER = "raise NotImplementedError"


def notebook_literals(notebook: Path, names: tuple[str, ...]) -> tuple[dict, str]:
    """``{name: value}`` for the names assigned literal values in the notebook, or ({}, why not)."""
    try:
        cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError) as exc:
        return {}, (f"The notebook {Path(notebook).name} could not be read "
                    f"({exc.__class__.__name__}).")
    values: dict = {}
    placeholder = False
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if source.lstrip().startswith("%%"):
            continue
        placeholder = placeholder or PLACEHOLDER in source
        code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                         for line in source.splitlines())
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name) and node.targets[0].id in names:
                try:
                    values[node.targets[0].id] = ast.literal_eval(node.value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    continue
    if not values:
        why = (f"The notebook has no cell that sets {' and '.join(names)} to plain values "
               "(numbers, strings, lists and dicts of them).")
        if placeholder:
            why += (" Its answer cell still holds the placeholder `raise NotImplementedError()`: "
                    "replace it with your answer.")
        return {}, why
    return values, ""
