#!/usr/bin/env bash
# Set up if needed, then run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export WANDB_MODE=offline
# pytest exits 5 when it collects no tests: that is a failure here, like any other non-zero.
exec .venv/bin/python -m pytest "$@"
