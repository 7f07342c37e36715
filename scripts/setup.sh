#!/usr/bin/env bash
# Create .venv and install plankflux (editable, with test tools) if not done yet.
# Re-installs only when pyproject.toml changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# `plankflux review`'s browser test drives the system's headless Chromium (Debian's
# chromium and chromium-driver). Install them where missing and apt-get can (as root or
# with password-less sudo), quietly; never fail the setup for it (the test then skips,
# saying why). PLANKFLUX_NO_CHROMIUM=1 leaves the system alone.
if [ -z "${PLANKFLUX_NO_CHROMIUM:-}" ] && command -v apt-get >/dev/null 2>&1 \
   && ! { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo=no; fi
  if [ "$sudo" != no ]; then
    echo "== installing chromium and chromium-driver (apt-get) for the review page's browser test"
    log=$(mktemp "${TMPDIR:-/tmp}/plankflux-apt.XXXXXX")
    apt="$sudo env DEBIAN_FRONTEND=noninteractive apt-get -y -qq"
    if { $apt update && $apt install chromium chromium-driver; } </dev/null >"$log" 2>&1; then
      rm -f "$log"
    else
      echo "== could not install chromium (log: $log); the browser test will be skipped"
    fi
  fi
fi

stamp=.venv/.plankflux-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
echo "== installing plankflux and its dependencies into .venv (a few minutes the first time)"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
echo "$want" > "$stamp"
