"""The command line shortens OpenMP's spin-wait before torch loads, unless the user set it."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = (
    "import os, sys; import plankflux.cli.main, plankflux.cli.hydra_tasks; "
    "print(os.environ['GOMP_SPINCOUNT'], 'torch' in sys.modules)"
)


def _probe(env: dict) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_spin_count_is_set_before_torch_is_imported():
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    # Both entry modules load without torch, so the setting reaches OpenMP's start-up.
    assert _probe(env) == "3000 False"


def test_the_users_spin_count_wins():
    assert _probe({**os.environ, "GOMP_SPINCOUNT": "77"}) == "77 False"
