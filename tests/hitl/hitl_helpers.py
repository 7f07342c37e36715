"""Helpers for the human-in-the-loop tests: score tables built by hand, checksums."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd


def score_table(per_particle: dict[str, list[list[float]]], classes: list[str]) -> pd.DataFrame:
    """Long score table from ``{particle_id: [member 0 scores, member 1 scores, ...]}``."""
    rows = []
    n_members = len(next(iter(per_particle.values())))
    for member in range(n_members):
        for pid, members in per_particle.items():
            rows.append(
                {
                    "particle_id": pid,
                    "member": member,
                    **dict(zip(classes, members[member], strict=True)),
                }
            )
    return pd.DataFrame(rows)


def checksums(root: Path) -> dict[str, str]:
    """SHA-256 of every file below ``root`` (relative path -> digest)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def proposals(rows: list[tuple[str, str, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["particle_id", "proposed_label", "score", "rank"])
