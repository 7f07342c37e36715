"""Runs below a folder that did not finish: what every table command reports.

A run folder is one with ``.hydra/config.yaml``; it finished when ``metrics.json`` was
written at or below it (``plankflux train`` writes it last, after testing; an ensemble
run writes one per member). A failed, killed or still running job has none, and its
results are left out of the tables, by name, instead of failing the whole table.
"""

from __future__ import annotations

import os
from pathlib import Path

from plankflux.layout import METRICS_FILE


def unfinished_runs(folder: str | os.PathLike) -> list[Path]:
    """Run folders below ``folder`` without a ``metrics.json`` at or below them, sorted."""
    runs = {p.parent.parent for p in Path(folder).glob("**/.hydra/config.yaml")}
    finished = [p.parent for p in Path(folder).glob(f"**/{METRICS_FILE}")]
    unfinished = []
    for run in runs:
        if not any(run == f or run in f.parents for f in finished):
            unfinished.append(run)
    return sorted(unfinished, key=lambda p: [int(t) if t.isdigit() else t for t in p.parts])


def describe_unfinished(folder: str | os.PathLike) -> str | None:
    """One line naming the unfinished runs below ``folder`` (and why to look), or None."""
    runs = unfinished_runs(folder)
    if not runs:
        return None
    names = ", ".join(str(p) for p in runs)
    return (
        f"{len(runs)} run(s) unfinished or failed, left out of the tables "
        f"(no {METRICS_FILE}; see their *.log): {names}"
    )
