"""A hand-made campaign for tests (importable from any test folder, unlike conftest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from plankflux.data.campaign import write_campaign


def make_campaign(root: Path, n_per_sample: int = 3) -> Path:
    """Two samples (RR, FC), ``n_per_sample`` particles each, 12×8 RGB PNGs."""
    rows = []
    for sample, domain in (("RR1", "RR"), ("FC1", "FC")):
        for i in range(n_per_sample):
            pid = f"{sample}_{i}"
            image = f"images/{pid}.png"
            (root / "images").mkdir(parents=True, exist_ok=True)
            # Distinct per image: validate reports byte-identical images.
            pixels = np.full((8, 12, 3), 40 * i + (7 if domain == "FC" else 0), dtype=np.uint8)
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
