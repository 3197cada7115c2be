#!/usr/bin/env bash
# Installs everything virtstack needs on a fresh Debian machine (idempotent):
# Python 3.11 virtualenv with virtstack and its test dependencies, and the
# local services its tests use (PostgreSQL, MariaDB, RabbitMQ) started if
# they are installed but down. Prints one line per step.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${VIRTSTACK_VENV:-$ROOT/.venv}

say() { printf 'setup: %s\n' "$*"; }

find_python() {
  for py in python3.11 python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$py"; return 0
    fi
  done
  return 1
}

PY=$(find_python || true)
if [ -z "$PY" ]; then
  say "installing Python 3 from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-dev >/dev/null
  PY=$(find_python) || { echo "setup: error: no Python >= 3.11 available" >&2; exit 1; }
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV ($("$PY" --version))"
  "$PY" -m venv "$VENV"
fi

# Reinstall only when the dependency list changed.
STAMP="$VENV/.virtstack-installed"
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  say "installing virtstack and its dependencies into $VENV (first time takes a minute)"
  LOG="$VENV/pip-install.log"
  if ! { "$VENV/bin/pip" install --disable-pip-version-check --upgrade pip \
         && "$VENV/bin/pip" install --disable-pip-version-check -e ".[test,powervm]"; } >"$LOG" 2>&1; then
    tail -n 30 "$LOG" >&2
    echo "setup: error: dependency install failed; full log in $LOG" >&2
    exit 1
  fi
  PYTHONWARNINGS=ignore "$VENV/bin/python" -c 'import virtstack, taskflow, oslo_messaging, sqlalchemy' \
    || { echo "setup: error: virtstack does not import; see $LOG" >&2; exit 1; }
  touch "$STAMP"
else
  say "virtualenv up to date"
fi

# libvirt + QEMU (guests), the offline test guest's tools, and libvirt-python.
tools/install-libvirt.sh "$VENV"

# tgt iSCSI target (the 'iscsi' volume backend) and QEMU's iSCSI client.
tools/install-tgt.sh
