"""End-to-end runs: each test here starts the installed commands in subprocesses
(training, sweeps, DDP, the whole pipeline), so every one is marked ``slow``:
``make test`` leaves them out, ``make test-all`` (CI) runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.slow)
