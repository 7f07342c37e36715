"""Per-rank output parts merged by rank 0: how callbacks write tables under DDP.

Under DDP every rank sees a different shard of the data (the distributed sampler may
repeat a few items to even the shards out). Each rank writes its own part; after a
barrier, rank 0 concatenates the parts, drops the repeats, sorts, writes the merged
table atomically and deletes the parts. On one process this is a plain atomic write.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from lightning import Trainer

from plankflux.utils.atomic import atomic_path


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` atomically as Parquet or CSV, chosen by the file suffix."""
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False, lineterminator="\n")


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def write_merged_across_ranks(
    trainer: Trainer,
    frame: pd.DataFrame,
    path: str | os.PathLike,
    keys: Sequence[str],
    drop: Sequence[str] = (),
) -> Path | None:
    """Write this rank's ``frame``; rank 0 merges every rank's into ``path``.

    ``keys`` identify a row (duplicates from sampler padding are dropped on them) and
    give the sort order of the merged table; ``drop`` columns (such as a row index
    used only for sorting) are left out of the final file. Returns ``path`` on rank 0,
    else ``None``.
    """
    path = Path(path)
    keys = list(keys)
    if trainer.world_size == 1:
        write_table(frame.sort_values(keys, kind="stable").drop(columns=list(drop)), path)
        return path
    part = path.with_name(f"{path.stem}.rank{trainer.global_rank}{path.suffix}")
    write_table(frame, part)
    trainer.strategy.barrier("write_merged_across_ranks")
    if trainer.global_rank != 0:
        return None
    parts = [path.with_name(f"{path.stem}.rank{r}{path.suffix}") for r in range(trainer.world_size)]
    merged = pd.concat([read_table(p) for p in parts], ignore_index=True)
    merged = merged.drop_duplicates(keys).sort_values(keys, kind="stable")
    write_table(merged.drop(columns=list(drop)), path)
    for p in parts:
        p.unlink(missing_ok=True)
    return path
