"""An image's history (``docker history --no-trunc``) as either builder writes it.

Both builders record one history entry per Dockerfile instruction, in different words:

=====================  ===================================================  =========================
instruction            legacy builder                                       BuildKit
=====================  ===================================================  =========================
``ARG A=1``            ``/bin/sh -c #(nop)  ARG A=1``                       ``ARG A=1``
``COPY f /d/``         ``/bin/sh -c #(nop) COPY file:3a… in /d/``           ``COPY f /d/ # buildkit``
``RUN cmd`` (with A)   ``|1 A=1 /bin/sh -c cmd``                            ``RUN |1 A=1 /bin/sh -c cmd # buildkit``
=====================  ===================================================  =========================

Checks that read the history read it through :func:`legacy_form`, so one reading serves both.
"""

from __future__ import annotations

import re

#: The legacy builder's mark of an instruction that ran no command.
NOP = "#(nop)"
_BUILDKIT_MARK = re.compile(r"\s+# buildkit$")
_INSTRUCTION = re.compile(r"^([A-Z]+)\b\s*(.*)$", re.DOTALL)


def legacy_form(created_by: str) -> str:
    """A history entry as the legacy builder writes it: BuildKit's ``RUN x # buildkit`` is
    ``x``, its other instructions (``ARG A=1``) are ``/bin/sh -c #(nop)  ARG A=1``; a legacy
    entry is returned unchanged."""
    if NOP in created_by:
        return created_by
    match = _INSTRUCTION.match(created_by)
    if match is None:
        return created_by  # a legacy RUN: "/bin/sh -c cmd" or "|1 A=1 /bin/sh -c cmd"
    instruction, rest = match.groups()
    rest = _BUILDKIT_MARK.sub("", rest)
    if instruction == "RUN":
        return rest
    return f"/bin/sh -c {NOP}  {instruction} {rest}".rstrip()
