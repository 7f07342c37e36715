"""Writes the ensemble's per-member softmax scores as one table."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

from plankflux.layout import SCORES_FILE, SCORES_INFO_FILE
from plankflux.utils.atomic import atomic_open
from plankflux.utils.rank_parts import write_merged_across_ranks, write_table


def scores_frame(particle_ids: np.ndarray, probs: np.ndarray, class_names) -> pd.DataFrame:
    """Long score table from ``probs`` (M, N, C) for ``particle_ids`` (N,).

    Columns: ``particle_id``, ``member`` (0..M-1), then one float32 score column per
    class, in class order; rows member-major, particles in the given order.
    """
    n_members, n, n_classes = probs.shape
    frame = pd.DataFrame(probs.reshape(n_members * n, n_classes), columns=list(class_names))
    frame.insert(0, "member", np.repeat(np.arange(n_members), n))
    frame.insert(0, "particle_id", np.tile(particle_ids, n_members))
    return frame


class EnsembleScoreWriter(BasePredictionWriter):
    """At the end of prediction writes ``<out_dir>/scores.parquet`` and ``scores.json``.

    Expects ``predict_step`` outputs ``{"row": (B,), "probs": (M, B, C)}`` (or
    ``(B, C)`` for a single member) and a datamodule with ``campaign`` and
    ``class_names``. Under DDP each rank writes its part and rank 0 merges them.
    ``scores.json`` records the member checkpoints, in ``member`` order.
    """

    def __init__(self, out_dir: str | os.PathLike):
        super().__init__(write_interval="epoch")
        self.out_dir = Path(out_dir)

    def write_on_epoch_end(
        self, trainer: Trainer, pl_module: LightningModule, predictions, batch_indices
    ) -> None:
        outputs = (
            predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        )
        rows = torch.cat([o["row"] for o in outputs]).cpu().numpy()
        probs = torch.cat([o["probs"] for o in outputs], dim=-2).float().cpu().numpy()
        if probs.ndim == 2:
            probs = probs[None]
        datamodule = trainer.datamodule
        ids = datamodule.campaign.particles["particle_id"].to_numpy()[rows]
        frame = scores_frame(ids, probs, datamodule.class_names)
        frame.insert(0, "_row", np.tile(rows, probs.shape[0]))
        path = self.out_dir / SCORES_FILE
        if write_merged_across_ranks(trainer, frame, path, keys=("member", "_row"), drop=("_row",)):
            self._write_info(datamodule, pl_module)

    def write_empty(self, datamodule, pl_module: LightningModule) -> None:
        """An empty score table (no particle left to predict: Lightning then runs no
        prediction loop at all), so the stages that read it see zero rows, not no file."""
        members = len(getattr(pl_module, "members", ())) or 1
        frame = scores_frame(
            np.array([], dtype=object),
            np.zeros((members, 0, len(datamodule.class_names))),
            datamodule.class_names,
        )
        write_table(frame, self.out_dir / SCORES_FILE)
        self._write_info(datamodule, pl_module)

    def _write_info(self, datamodule, pl_module: LightningModule) -> None:
        meta = {
            "classes": list(datamodule.class_names),
            "members": getattr(pl_module, "checkpoint_paths", None),
            "campaign": str(datamodule.root),
            "domain": datamodule.target_domain,
        }
        with atomic_open(self.out_dir / SCORES_INFO_FILE) as handle:
            json.dump(meta, handle, indent=2)
