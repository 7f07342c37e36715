"""Writes POC flux tables at the end of prediction (thin: the work is in plankflux.flux)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from lightning import Callback, LightningModule, Trainer

from plankflux.flux.predictions import PREDICTION_COLUMNS
from plankflux.flux.tables import flux_tables, write_flux_tables
from plankflux.layout import PREDICTIONS_FILE
from plankflux.utils.rank_parts import write_merged_across_ranks
from plankflux.utils.tracked_tables import log_table

log = logging.getLogger(__name__)


class FluxTables(Callback):
    """After ``trainer.predict``: ``predictions.csv``, ``flux_by_sample.csv``, ``flux_summary.csv``.

    Expects ``predict_step`` to return ``{"row": (B,), "probs": (B, C)}`` (one member,
    numbered ``member``) or ``(M, B, C)`` (members 0..M-1), rows indexing
    ``trainer.datamodule.campaign.particles`` and columns ``trainer.datamodule.class_names``.
    Each member's label is the argmax. With ``keep_training_labels`` the particles of
    the datamodule's train and val splits that lie in the predicted domains keep their
    verified label (docs/paper_a.md). Under DDP each rank writes its part of the predictions,
    rank 0 merges them and writes the flux tables.

    Args:
        out_dir: folder for the three files.
        treatment: name of this run's treatment in the tables (e.g. ``OOD``).
        member: member number for single-member ``(B, C)`` outputs.
        allometry: allometry table (path, mapping or None for Table 1).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        treatment: str = "model",
        member: int = 0,
        allometry: str | os.PathLike | Mapping | None = None,
        keep_training_labels: bool = True,
    ):
        self.out_dir = Path(out_dir)
        self.treatment = treatment
        self.member = member
        self.allometry = allometry
        self.keep_training_labels = keep_training_labels
        self._rows: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []  # (M, B) class indices

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._rows, self._labels = [], []

    def on_predict_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not isinstance(outputs, dict) or "row" not in outputs or "probs" not in outputs:
            raise TypeError("FluxTables needs predict_step to return {'row': ..., 'probs': ...}")
        probs = outputs["probs"]
        labels = probs.argmax(dim=-1) if isinstance(probs, torch.Tensor) else probs.argmax(-1)
        labels = torch.as_tensor(labels).cpu().numpy()
        self._rows.append(torch.as_tensor(outputs["row"]).cpu().numpy())
        self._labels.append(labels[None] if labels.ndim == 1 else labels)

    def predictions(self, trainer: Trainer) -> pd.DataFrame:
        """This rank's predictions table (``_row`` column kept for the DDP merge)."""
        datamodule = trainer.datamodule
        particles = datamodule.campaign.particles
        rows = np.concatenate(self._rows) if self._rows else np.zeros(0, np.int64)
        labels = np.concatenate(self._labels, axis=1) if self._labels else np.zeros((1, 0), int)
        n_members, n = labels.shape
        members = [self.member] if n_members == 1 else list(range(n_members))
        names = np.asarray(datamodule.class_names, dtype=object)
        return pd.DataFrame(
            {
                "_row": np.tile(rows, n_members),
                "particle_id": np.tile(particles["particle_id"].to_numpy()[rows], n_members),
                "treatment": self.treatment,
                "member": np.repeat(members, n),
                "label": names[labels.reshape(-1)],
            }
        )

    def _fixed_labels(self, trainer: Trainer, predicted: pd.DataFrame) -> pd.DataFrame | None:
        datamodule = trainer.datamodule
        splits = getattr(datamodule, "splits", None) or {}
        rows = [splits[s] for s in ("train", "val") if s in splits]
        if not self.keep_training_labels or not rows:
            return None
        particles = datamodule.campaign.particles.iloc[np.unique(np.concatenate(rows))]
        domains = set(datamodule.campaign.particles["domain"].to_numpy()[predicted["_row"]])
        particles = particles[particles["domain"].isin(domains) & (particles["label"] != "")]
        return particles[["particle_id", "label"]] if len(particles) else None

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        frame = self.predictions(trainer)
        path = write_merged_across_ranks(
            trainer, frame, self.out_dir / PREDICTIONS_FILE, keys=("member", "_row"),
            drop=("_row",),
        )  # fmt: skip
        if path is None:  # not rank 0
            return
        merged = pd.read_csv(path, dtype={"particle_id": str}, keep_default_na=False)
        ids = pd.Index(trainer.datamodule.campaign.particles["particle_id"].astype(str))
        rows = ids.get_indexer(merged["particle_id"])
        fixed = self._fixed_labels(trainer, merged.assign(_row=rows))
        by_sample, summary = flux_tables(
            trainer.datamodule.campaign, merged[list(PREDICTION_COLUMNS)], self.allometry, fixed
        )
        paths = write_flux_tables(self.out_dir, by_sample, summary)
        log_table(trainer, "flux/summary", summary)
        log.info("flux tables written: %s, %s", *paths)
