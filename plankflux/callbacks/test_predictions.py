"""Writes a member's test predictions and the class counts of its splits.

These two files are what the offline evaluation needs (per-class precision, recall
and F1, macro and training-frequency-weighted averages, confusion matrices, in the
14-class and the original scheme), so tables can be rebuilt from finished runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from lightning import Callback, LightningModule, Trainer

from plankflux.eval.metrics import classification_report
from plankflux.layout import CLASS_COUNTS_FILE, TEST_PREDICTIONS_FILE
from plankflux.utils.rank_parts import write_merged_across_ranks, write_table
from plankflux.utils.tracked_tables import log_table, tracking_tables


class TestPredictionWriter(Callback):
    """After testing writes ``test_predictions.csv`` (``particle_id, label, predicted``,
    plus ``label_original`` when the campaign has it) and ``class_counts.csv``
    (``class, train, val, test``) into ``out_dir``.

    Expects ``test_step`` to return ``{"row": (B,), "pred": (B,)}`` and a datamodule
    with ``campaign``, ``class_names`` and ``split_frame(split)``.
    """

    def __init__(self, out_dir: str | os.PathLike):
        self.out_dir = Path(out_dir)
        self._rows: list[torch.Tensor] = []
        self._preds: list[torch.Tensor] = []

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._rows, self._preds = [], []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if outputs:
            self._rows.append(outputs["row"].cpu())
            self._preds.append(outputs["pred"].cpu())

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._rows:
            return
        datamodule = trainer.datamodule
        classes = np.asarray(datamodule.class_names)
        rows = torch.cat(self._rows).numpy()
        particles = datamodule.campaign.particles.iloc[rows]
        frame = pd.DataFrame(
            {
                "_row": rows,
                "particle_id": particles["particle_id"].to_numpy(),
                "label": particles["label"].to_numpy(),
                "predicted": classes[torch.cat(self._preds).numpy()],
            }
        )
        if (particles["label_original"] != "").any():
            frame["label_original"] = particles["label_original"].to_numpy()
        write_merged_across_ranks(
            trainer, frame, self.out_dir / TEST_PREDICTIONS_FILE, keys=("_row",), drop=("_row",)
        )
        if trainer.is_global_zero:
            counts = pd.DataFrame({"class": classes})
            for split in ("train", "val", "test"):
                labels = datamodule.split_frame(split)["label"]
                counts[split] = counts["class"].map(labels.value_counts()).fillna(0).astype(int)
            write_table(counts, self.out_dir / CLASS_COUNTS_FILE)
            if tracking_tables(trainer):
                self._log_per_class(trainer, list(classes), counts.set_index("class")["train"])

    def _log_per_class(self, trainer: Trainer, classes: list[str], train_counts) -> None:
        """Per-class precision, recall, F1 and support as the W&B table ``test/per_class``."""
        merged = pd.read_csv(self.out_dir / TEST_PREDICTIONS_FILE, keep_default_na=False)
        report = classification_report(merged["label"], merged["predicted"], classes, train_counts)
        log_table(trainer, "test/per_class", report.rename_axis("class").reset_index())
