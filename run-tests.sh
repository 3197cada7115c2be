#!/usr/bin/env bash
# The whole test suite (what CI runs): install, make sure the local
# databases and broker are up, check generated files, run pytest.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
tools/install.sh
tools/start-services.sh
echo "tests: checking the generated sample config"
tools/check-generated.sh
echo "tests: running pytest"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
rc=0
PYTHONPATH=tools .venv/bin/python -m pytest -q -p no:cacheprovider -p support_matrix \
  --support-matrix-results "$results" "$@" || rc=$?
# The support matrix is generated from the contract suite's outcomes; only a
# whole, passing run has all of them.
if [ "$rc" -eq 0 ] && [ "$#" -eq 0 ]; then
  echo "tests: checking docs/support-matrix.md against this run's contract outcomes"
  .venv/bin/python tools/support_matrix.py --check --results "$results" || rc=$?
fi
exit "$rc"
