# The README's commands. `make test` while working (the fast suite, minutes);
# `make test-all` before pushing (lint and every test; what CI runs).
.PHONY: demo test test-all lint
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
test-all:
	bash scripts/test.sh --all
lint:
	bash scripts/setup.sh && .venv/bin/ruff check . && .venv/bin/ruff format --check .
