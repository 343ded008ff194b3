#!/usr/bin/env bash
# Make sure the browser tests (tests/browser) have a headless Chromium: Debian's `chromium` package.
# Playwright itself comes with the test extras (pyproject.toml) and drives this browser; we never run
# `playwright install` (it downloads a browser build of its own). CHROMIUM overrides the path.
set -euo pipefail
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

say() { printf 'docklab: %s\n' "$*" >&2; }

if [ -x "$CHROMIUM" ]; then exit 0; fi

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  say "installing Debian's chromium for the browser tests ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
  exit 0
fi

say "the browser tests need Chromium at $CHROMIUM: install it (Debian/Ubuntu: sudo apt-get install"
say "chromium), or point CHROMIUM at a Chromium or Chrome binary."
exit 1
