"""Shared fixtures: a hand-made campaign and a synthetic tiny campaign."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from campaign_helpers import make_campaign

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


@pytest.fixture
def small_campaign(tmp_path: Path) -> Path:
    return make_campaign(tmp_path / "campaign")


@pytest.fixture(scope="session")
def tiny_campaign(tmp_path_factory) -> Path:
    """The synthetic ``tiny`` campaign, generated once per test session (read-only!)."""
    from plankflux.synthetic.trap import generate_trap_campaign

    return generate_trap_campaign(tmp_path_factory.mktemp("synthetic") / "tiny", "tiny", seed=0)


@pytest.fixture(scope="session")
def demo_campaign(tmp_path_factory) -> Path:
    """The synthetic ``demo`` campaign (3,500 particles), generated once per session."""
    from plankflux.synthetic.trap import generate_trap_campaign

    return generate_trap_campaign(tmp_path_factory.mktemp("synthetic") / "demo", "demo", seed=0)


@pytest.fixture
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"real data not found at {REALDATA}")
    return REALDATA
