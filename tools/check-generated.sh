#!/usr/bin/env bash
# Generated files must match their sources: the sample config (from the
# options) and the sample policy file (from the rule defaults). The driver
# support matrix is checked after the main pytest run, from its recorded
# outcomes (run-tests.sh), so the contract suite runs once.
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
# The sample policy file (from the rule defaults in virtstack/policies).
.venv/bin/oslopolicy-sample-generator --namespace virtstack --output-file "$tmp" 2>/dev/null
if [ ! -s "$tmp" ]; then
  echo "check: oslopolicy-sample-generator found no virtstack rules (entry points not" >&2
  echo "  installed? .venv/bin/pip install -e .)" >&2
  exit 1
fi
if ! diff -u etc/policy.yaml.sample "$tmp"; then
  echo "check: etc/policy.yaml.sample is stale; regenerate it with:" >&2
  echo "  .venv/bin/oslopolicy-sample-generator --namespace virtstack --output-file etc/policy.yaml.sample" >&2
  exit 1
fi
echo "check: sample policy up to date"
