"""Shared fixtures: a hand-made campaign and a synthetic tiny campaign."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from plankflux.data.campaign import write_campaign

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def make_campaign(root: Path, n_per_sample: int = 3) -> Path:
    """Two samples (RR, FC), ``n_per_sample`` particles each, 12×8 RGB PNGs."""
    rows = []
    for sample, domain in (("RR1", "RR"), ("FC1", "FC")):
        for i in range(n_per_sample):
            pid = f"{sample}_{i}"
            image = f"images/{pid}.png"
            (root / "images").mkdir(parents=True, exist_ok=True)
            pixels = np.full((8, 12, 3), 40 * i, dtype=np.uint8)
            Image.fromarray(pixels).save(root / image)
            rows.append(
                {
                    "particle_id": pid,
                    "image": image,
                    "domain": domain,
                    "sample_id": sample,
                    "esd_um": 100.0 + i,
                    "label": ("aggregate", "long_pellet", "")[i % 3],
                }
            )
    samples = pd.DataFrame(
        {
            "sample_id": ["RR1", "FC1"],
            "domain": ["RR", "FC"],
            "depth_m": [150, 300],
            "imaged_area_m2": [2e-4, 3e-4],
            "deployment_days": [2.0, 3.5],
        }
    )
    return write_campaign(root, pd.DataFrame(rows), samples)


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
