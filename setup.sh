#!/usr/bin/env bash
# The one command: install everything, then run virtstack all-in-one and
# create a demo server through the Compute API. Ctrl-C stops it.
# Extra arguments go to 'virtstack up' (e.g. --demo-exit, --debug).
set -euo pipefail
cd "$(dirname "$0")"
tools/install.sh
exec .venv/bin/virtstack up --demo "$@"
