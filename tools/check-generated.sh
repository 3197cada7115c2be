#!/usr/bin/env bash
# Generated files must match their sources: the sample config (from the
# options). The driver support matrix is checked after the main pytest run,
# from its recorded outcomes (run-tests.sh), so the contract suite runs once.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
.venv/bin/oslo-config-generator --config-file etc/oslo-config-generator.conf \
  --output-file "$tmp" 2>/dev/null
if ! diff -u etc/virtstack.conf.sample "$tmp"; then
  echo "check: etc/virtstack.conf.sample is stale; regenerate it with:" >&2
  echo "  .venv/bin/oslo-config-generator --config-file etc/oslo-config-generator.conf" >&2
  exit 1
fi
echo "check: sample config up to date"
