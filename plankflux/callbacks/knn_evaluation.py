"""k-NN gallery evaluation after testing (Paper B, docs/paper_b.md).

After ``trainer.test`` (rank 0 only) the callback evaluates the model
(:mod:`plankflux.eval.gallery_evaluation`) in-domain — galleries from the training
split, queries from the held-out test fold of the data it was trained on, when that
data is split in folds (``split: fold``; pre-training data has no labelled fold) — and
on every cross-domain ``targets`` data set, all folds. A target the model trained on
(its folder is among the training roots, e.g. LAB for a LAB+UTO model) is skipped.
Each evaluation goes to ``<out_dir>/knn/<data set name>/``.

A target is a ``data`` config placed under ``targets`` (Hydra builds the DataModule)::

    defaults:
      - /data@callbacks.knn_evaluation.targets.SEA: synthetic_sea_demo

or keyword arguments of :class:`~plankflux.datamodules.cytosense.CytoSenseDataModule`
(``{root: /data/SEA}``) whose preprocessing sizes, batch size and workers default to the
training data's, so the target is seen as the model was trained to see it. Only its
labelled pairs and the test-time pipeline are used.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from lightning import Callback, LightningModule, Trainer

from plankflux.datamodules.cytosense import CytoSenseDataModule, target_datamodule
from plankflux.eval.gallery_evaluation import evaluate_datamodule
from plankflux.eval.knn import N_VALUES, SETUPS
from plankflux.utils.tracked_tables import log_table, tracking_tables

log = logging.getLogger(__name__)


class KnnGalleryEvaluation(Callback):
    def __init__(
        self,
        out_dir: str | os.PathLike,
        n_values: Sequence[int] = N_VALUES,
        draws: int = 5,
        k: int = 3,
        seed: int = 0,
        setups: Sequence[str] = SETUPS,
        targets: Mapping[str, Mapping] | None = None,
        target_folds: Sequence[int] | None = None,
    ):
        """
        Args:
            out_dir: the run folder; evaluations go to ``out_dir/knn/<name>/``.
            n_values, draws, k, seed: the gallery protocol (docs/paper_b.md).
            setups: gallery->query setups (an image-only model keeps those it can do).
            targets: ``{name: CytoSenseDataModule or its kwargs}``: cross-domain data.
            target_folds: the folds of each target to evaluate (default: all).
        """
        self.out_dir = Path(out_dir)
        self.protocol = dict(n_values=tuple(n_values), draws=draws, k=k, seed=seed)
        self.setups = tuple(setups)
        self.targets = dict(targets or {})
        self.target_folds = tuple(target_folds) if target_folds is not None else None

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        source = trainer.datamodule
        train_data = getattr(source, "name", None)
        if isinstance(source, CytoSenseDataModule) and source.hparams.split == "fold":
            self._evaluate(pl_module, source, None, train_data)
        seen = {root.resolve() for root in getattr(source, "roots", ())}
        for name, spec in self.targets.items():
            target = target_datamodule(name, spec, source)
            if seen & {root.resolve() for root in target.roots}:
                # Trained on (part of) it: not cross-domain. LAB's own held-out fold was
                # evaluated above when LAB was trained on in fold mode.
                log.info("k-NN target %s skipped: the model trained on it", target.name)
                continue
            folds = self.target_folds or range(target.hparams.n_folds)
            self._evaluate(pl_module, target, folds, train_data)

    def _evaluate(self, pl_module, datamodule, folds, train_data) -> None:
        out = self.out_dir / "knn" / datamodule.name
        results = evaluate_datamodule(
            pl_module,
            datamodule,
            out,
            folds=folds,
            train_data=train_data,
            setups=self.setups,
            **self.protocol,
        )
        if tracking_tables(pl_module.trainer):
            summary = pd.read_csv(out / "knn_summary.csv")
            log_table(pl_module.trainer, f"knn/{datamodule.name}", summary)
        log.info(
            "k-NN evaluation %s -> %s: %d rows in %s",
            train_data,
            datamodule.name,
            len(results),
            out,
        )
