"""Pieces every DataModule shares: one-time synthetic generation and split loaders."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from torch.utils.data import DataLoader, Dataset

from plankflux.errors import PlankfluxError

#: Synthetic data are generated only into a folder whose name starts with this (the
#: synthetic data configs' roots), so a mistyped ``data.root`` is an error, not a new
#: synthetic data set that a run then trains on.
SYNTHETIC_PREFIX = "synthetic"


def generate_once(root: Path, generate: Callable[..., Path], **kwargs) -> None:
    """Run ``generate(staging, **kwargs)`` beside ``root`` and rename it into place, so
    concurrent runs never see half a data set; the loser of a race discards its copy.

    Refused (:class:`PlankfluxError`) unless ``root``'s name starts with ``synthetic``.
    """
    if not root.name.startswith(SYNTHETIC_PREFIX):
        raise PlankfluxError(
            f"data.root {root} holds no data set. Synthetic data are generated only into "
            f"a folder whose name starts with {SYNTHETIC_PREFIX!r} (the synthetic data "
            "configs' default); for your own data check the path"
        )
    staging = root.with_name(f".{root.name}.{os.getpid()}.tmp")
    generate(staging, **kwargs)
    try:
        staging.rename(root)
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)


def split_loader(
    dataset: Dataset,
    split: str,
    batch_size: int,
    eval_batch_size: int | None,
    num_workers: int,
    pin_memory: bool,
) -> DataLoader:
    """The DataLoader of one split: shuffled for ``train`` only, ``eval_batch_size``
    (default ``batch_size``) elsewhere, and never ``drop_last`` outside training."""
    batch = batch_size if split == "train" else (eval_batch_size or batch_size)
    # BatchNorm cannot train on a batch of one: drop a last training batch of size 1 only.
    drop_last = split == "train" and len(dataset) % batch == 1
    return DataLoader(
        dataset,
        batch_size=batch,
        shuffle=split == "train",
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        drop_last=drop_last,
    )


class SplitLoaders:
    """The four DataLoader hooks of a LightningDataModule over ``self._datasets``
    (``{"train": ..., "val": ..., "test": ..., "predict": ...}``, built in ``setup``),
    with the ``batch_size``, ``eval_batch_size``, ``num_workers`` and ``pin_memory``
    hyper-parameters. Mix in before ``LightningDataModule``."""

    def _loader(self, split: str) -> DataLoader:
        hp = self.hparams
        return split_loader(
            self._datasets[split],
            split,
            hp.batch_size,
            hp.eval_batch_size,
            hp.num_workers,
            hp.pin_memory,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")
