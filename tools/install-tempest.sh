#!/usr/bin/env bash
# Installs Tempest into its own virtualenv (.venv-tempest; its pins clash with
# virtstack's) and prints the path of its `tempest` command on the last line.
# Idempotent: a venv whose Tempest imports at the wanted version is kept.
# Used by tools/run-tempest.sh and by tests/e2e/test_tempest_smoke.py.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${VIRTSTACK_TEMPEST_VENV:-$ROOT/.venv-tempest}
# Tempest 47 is the release whose tests the results in docs/tempest.md come from.
TEMPEST_SPEC=${VIRTSTACK_TEMPEST_SPEC:-"tempest>=47,<48"}

say() { printf 'install-tempest: %s\n' "$*" >&2; }

find_python() {
  for py in python3.11 python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      command -v "$py"; return 0
    fi
  done
  return 1
}

STAMP="$VENV/.tempest-installed"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$TEMPEST_SPEC" ] && [ -x "$VENV/bin/tempest" ] \
   && "$VENV/bin/python" -c 'import tempest.config' >/dev/null 2>&1; then
  say "Tempest up to date in $VENV ($("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("tempest"))'))"
  echo "$VENV/bin/tempest"
  exit 0
fi

PY=$(find_python) || { echo "install-tempest: error: no Python >= 3.10" >&2; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV ($("$PY" --version))"
  "$PY" -m venv "$VENV"
fi
LOG="$VENV/pip-install.log"
say "installing $TEMPEST_SPEC into $VENV (first time: about a minute)"
if ! { "$VENV/bin/pip" install --disable-pip-version-check -q --upgrade pip \
       && "$VENV/bin/pip" install --disable-pip-version-check "$TEMPEST_SPEC"; } >"$LOG" 2>&1; then
  tail -n 30 "$LOG" >&2
  echo "install-tempest: error: pip failed; full log in $LOG" >&2
  exit 1
fi
"$VENV/bin/python" -c 'import tempest.config' >/dev/null 2>&1 \
  || { echo "install-tempest: error: tempest does not import; see $LOG" >&2; exit 1; }
printf '%s' "$TEMPEST_SPEC" >"$STAMP"
say "installed Tempest $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("tempest"))')"
echo "$VENV/bin/tempest"
