"""Writes the voting proposal folder at the end of ensemble prediction (docs/paper_a.md, step 3).

Thin: the work is in :mod:`plankflux.hitl`. The callback reads the score table that
:class:`~plankflux.callbacks.prediction_writer.EnsembleScoreWriter` wrote (that writer
runs at the end of the prediction epoch, before ``on_predict_end``), then runs
consensus -> top-k per class -> proposal folder, on global rank 0 only.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd
from lightning import Callback, LightningModule, Trainer

from plankflux.callbacks.prediction_writer import SCORES_FILE, EnsembleScoreWriter
from plankflux.hitl import steps
from plankflux.layout import MANIFEST_FILE, read_scores
from plankflux.utils.tracked_tables import log_images, tracking_tables

log = logging.getLogger(__name__)


class VotingProposals(Callback):
    """After ``trainer.predict``: unanimous top-``k`` proposals per class into ``out_dir``.

    Args:
        out_dir: the proposal folder (see :mod:`plankflux.hitl.proposals`).
        k: proposals per class (ties at the cut kept).
        link: symbolic links instead of copies of the images.
        scores_path: the ``scores.parquet`` to read; default: that of the trainer's
            :class:`EnsembleScoreWriter`.

    The datamodule must have ``campaign`` and ``class_names``.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        k: int = 1000,
        link: bool = False,
        scores_path: str | os.PathLike | None = None,
    ):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.out_dir = Path(out_dir)
        self.k = k
        self.link = link
        self.scores_path = Path(scores_path) if scores_path is not None else None

    def _scores_path(self, trainer: Trainer) -> Path:
        if self.scores_path is not None:
            return self.scores_path
        writers = [c for c in trainer.callbacks if isinstance(c, EnsembleScoreWriter)]
        if len(writers) != 1:
            raise RuntimeError(
                "VotingProposals needs scores_path or exactly one EnsembleScoreWriter "
                f"among the trainer's callbacks (found {len(writers)})"
            )
        return writers[0].out_dir / SCORES_FILE

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.global_rank != 0:
            return
        datamodule = trainer.datamodule
        proposals = steps.propose(
            read_scores(self._scores_path(trainer)),
            datamodule.campaign,
            self.out_dir,
            k=self.k,
            link=self.link,
            classes=list(datamodule.class_names),
        )
        log.info("voting proposals (%d images) in %s", len(proposals), self.out_dir)
        if tracking_tables(trainer):
            self._log_samples(trainer)

    def _log_samples(self, trainer: Trainer, per_class: int = 4) -> None:
        """The top ``per_class`` proposals of each class as the W&B panel ``proposals``."""
        manifest = pd.read_csv(self.out_dir / MANIFEST_FILE, keep_default_na=False)
        top = manifest.sort_values("rank").groupby("proposed_label", sort=True).head(per_class)
        captions = [f"{r.proposed_label} {r.score:.2f}" for r in top.itertuples()]
        log_images(trainer, "proposals", [self.out_dir / p for p in top["image"]], captions)
