"""Helpers for the review tests: a tiny proposal folder with a two-member score table."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from plankflux.data.campaign import Campaign, load_campaign
from plankflux.hitl import steps
from plankflux.layout import SCORES_FILE, TRUTH_FILE


def _unit(pid: str) -> float:
    return int(hashlib.sha256(pid.encode()).hexdigest()[:8], 16) / 2**32


def oracle_scores(campaign: Campaign, target: str = "RR") -> pd.DataFrame:
    """Two members that give each target particle's true class a score in (0.5, 0.9)
    (member 1 a little less), the rest spread evenly: unanimous, no ties."""
    classes = list(campaign.classes)
    truth = pd.read_csv(campaign.root / TRUTH_FILE, dtype=str, keep_default_na=False)
    truth = truth.set_index("particle_id")["true_label"]
    ids = campaign.particles.loc[campaign.particles["domain"] == target, "particle_id"]
    rows = []
    for member in (0, 1):
        for pid in ids:
            top = 0.5 + 0.4 * _unit(pid) - 0.05 * member
            scores = np.full(len(classes), (1 - top) / (len(classes) - 1))
            scores[classes.index(truth[pid])] = top
            rows.append(
                {"particle_id": pid, "member": member, **dict(zip(classes, scores, strict=True))}
            )
    return pd.DataFrame(rows, columns=["particle_id", "member", *classes])


def pipeline_like_workspace(campaign_root: Path, ws: Path, k: int = 3) -> tuple[Campaign, Path]:
    """``ws/ood/scores.parquet`` and ``ws/proposals/`` as the pipeline leaves them when it
    stops for a person. Returns the campaign and the proposal folder."""
    campaign = load_campaign(campaign_root, check_images="none")
    scores = oracle_scores(campaign)
    (ws / "ood").mkdir(parents=True, exist_ok=True)
    scores.to_parquet(ws / "ood" / SCORES_FILE)
    steps.propose(scores, campaign, ws / "proposals", k=k)
    return campaign, ws / "proposals"


def checksums(root: Path) -> dict[str, str]:
    """SHA-256 of every file below ``root`` (relative path -> digest)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
