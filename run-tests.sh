#!/usr/bin/env bash
# The whole test suite (what CI runs): install, make sure the local
# databases and broker are up, check generated files, run pytest.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
tools/install.sh
tools/start-services.sh
echo "tests: checking the generated sample config and support matrix"
tools/check-generated.sh
echo "tests: running pytest"
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
