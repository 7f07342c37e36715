#!/usr/bin/env bash
# Set up .venv if needed, then run the tests. Extra arguments go to pytest.
#   bash scripts/test.sh          the fast suite (what `make test` runs): no test marked slow
#   bash scripts/test.sh --all    lint, then every test (what `make test-all` and CI run)
set -euo pipefail
cd "$(dirname "$0")/.."
all=false
if [ "${1:-}" = "--all" ]; then all=true; shift; fi
bash scripts/setup.sh
export WANDB_MODE=offline
# pytest exits 5 when it collects no tests: that is a failure here, like any other non-zero.
if $all; then
  .venv/bin/ruff check .
  .venv/bin/ruff format --check .
  exec .venv/bin/python -m pytest "$@"
fi
exec .venv/bin/python -m pytest -m "not slow" "$@"
