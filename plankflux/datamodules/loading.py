"""Pieces every DataModule shares: one-time synthetic generation and split loaders."""

from __future__ import annotations

import logging
import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from plankflux.data.trap_dataset import already_collated
from plankflux.errors import PlankfluxError

log = logging.getLogger(__name__)

#: Synthetic data are generated only into a folder whose name starts with this (the
#: synthetic data configs' roots), so a mistyped ``data.root`` is an error, not a new
#: synthetic data set that a run then trains on.
SYNTHETIC_PREFIX = "synthetic"


def generate_once(root: Path, marker: str, generate: Callable[..., Path], **kwargs) -> None:
    """Run ``generate(staging, **kwargs)`` beside ``root`` and rename it into place, so
    concurrent runs never see half a data set; the loser of a race discards its copy.
    ``marker``: the file whose presence in ``root`` means a data set is there.

    Refused (:class:`PlankfluxError`) unless ``root``'s name starts with ``synthetic``,
    and when ``root`` holds files but no data set (they are not ours to replace).
    """
    if not root.name.startswith(SYNTHETIC_PREFIX):
        raise PlankfluxError(
            f"data.root {root} holds no data set. Synthetic data are generated only into "
            f"a folder whose name starts with {SYNTHETIC_PREFIX!r} (the synthetic data "
            "configs' default); for your own data check the path"
        )
    if root.is_dir() and any(root.iterdir()):
        raise PlankfluxError(
            f"data.root {root} holds files but no data set (no {marker}): a synthetic data "
            "set is generated only into a new or empty folder; move those files away or "
            "choose another data.root"
        )
    staging = root.with_name(f".{root.name}.{os.getpid()}.tmp")
    # Said before and after: generation takes a while at the larger scales, and a user
    # should know that this run made up its data (and where they now are).
    log.info("%s holds no data set: generating a synthetic one there (once)", root)
    start = time.perf_counter()
    generate(staging, **kwargs)
    try:
        staging.rename(root)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        if not (root / marker).is_file():
            raise PlankfluxError(f"cannot move the generated data set into {root}: {err}") from err
        log.info("synthetic data set ready (another process made it first): %s", root)
        return
    log.info("synthetic data set ready in %.0f s: %s", time.perf_counter() - start, root)


class EpochShuffle(Sampler[int]):
    """The training order of epoch ``e``, a function of the seed and ``e`` only.

    Lightning calls :meth:`set_epoch` before each training epoch. Starting the epoch
    also reseeds Python's, NumPy's and torch's global generators from (seed, e), from
    which augmentation and dropout draw; so a run resumed from ``last.ckpt`` trains its
    remaining epochs exactly as the run that was stopped would have (with loader
    workers, only if they are not persistent). ``seed``: default, torch's initial seed
    (``seed_everything(cfg.seed)``).
    """

    def __init__(self, n: int, seed: int | None = None):
        self.n = n
        self.seed = torch.initial_seed() if seed is None else int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        epoch_seed = (self.seed * 1_000_003 + self.epoch) % 2**32
        random.seed(epoch_seed)
        np.random.seed(epoch_seed)
        torch.manual_seed(epoch_seed)
        generator = torch.Generator().manual_seed(epoch_seed)
        return iter(torch.randperm(self.n, generator=generator).tolist())


def _distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _eval_sampler(dataset: Dataset, split: str, unrepeated: bool):
    """Under DDP, a sampler that gives each rank its share of a val/test/predict split
    without the repeats by which Lightning's DistributedSampler evens out the shards, so
    that synchronised metrics count every item once (None: Lightning's default)."""
    if split == "train" or not unrepeated or not _distributed():
        return None
    from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

    return UnrepeatedDistributedSampler(dataset, shuffle=False)


def split_loader(
    dataset: Dataset,
    split: str,
    batch_size: int,
    eval_batch_size: int | None,
    num_workers: int,
    pin_memory: bool,
    unrepeated_eval: bool = False,
) -> DataLoader:
    """The DataLoader of one split: shuffled for ``train`` only (:class:`EpochShuffle`),
    ``eval_batch_size`` (default ``batch_size``) elsewhere, and never ``drop_last``
    outside training. With ``unrepeated_eval``, under DDP each evaluation item is seen
    by exactly one rank (ranks may then run different numbers of batches: only for
    models whose evaluation steps do not communicate across ranks)."""
    batch = batch_size if split == "train" else (eval_batch_size or batch_size)
    # BatchNorm cannot train on a batch of one: drop a last training batch of size 1 only.
    drop_last = split == "train" and len(dataset) % batch == 1
    sampler = _eval_sampler(dataset, split, unrepeated_eval)
    shuffle = split == "train"
    # A dataset that fetches whole batches (``__getitems__``) returns them collated.
    collate = already_collated if getattr(dataset, "batched", False) else None
    if shuffle and not _distributed():  # (under DDP Lightning's DistributedSampler shuffles)
        sampler, shuffle = EpochShuffle(len(dataset)), False
    return DataLoader(
        dataset,
        batch_size=batch,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        collate_fn=collate,
        persistent_workers=num_workers > 0,
        drop_last=drop_last,
    )


class SplitLoaders:
    """The four DataLoader hooks of a LightningDataModule over ``self._datasets``
    (``{"train": ..., "val": ..., "test": ..., "predict": ...}``, built in ``setup``),
    with the ``batch_size``, ``eval_batch_size``, ``num_workers`` and ``pin_memory``
    hyper-parameters. Mix in before ``LightningDataModule``. ``unrepeated_eval``: see
    :func:`split_loader`."""

    unrepeated_eval = False

    def _loader(self, split: str) -> DataLoader:
        hp = self.hparams
        return split_loader(
            self._datasets[split],
            split,
            hp.batch_size,
            hp.eval_batch_size,
            hp.num_workers,
            hp.pin_memory,
            self.unrepeated_eval,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")
