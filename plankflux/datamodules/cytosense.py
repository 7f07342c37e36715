"""LightningDataModule for Paper B: CytoSense image–profile pairs.

Splits (``setup``), all seeded and deterministic:

* ``split="fold"`` (in-domain, docs/paper_b.md): 5-fold stratified CV over the labelled
  pairs. Within each class the rows are shuffled once (seeded by ``seed`` and the
  class); fold k tests on the k-th 15% slice of that order, validates on the next 5%
  (cyclically) and trains on the other 80%. The 5 test slices are disjoint and
  together hold 75% of each class; every fold is 80/5/15. Unlabelled rows are unused.
* ``split="pretrain"``: one seeded 95/5 train/val split of *every* pair (labels
  ignored: UTO-like data is unlabelled); ``test`` = the val rows.

``predict`` is every pair in both modes (embedding extraction for galleries).

``root`` may list several data sets (combined pre-training, e.g. LAB + UTO): their
pairs are concatenated (:func:`~plankflux.data.cytosense.combine_pairs`).

Batch: ``{"image": (B, 1, S, S) float in [-1, 1], "profile": (B, 6, T) float,
"image_size": (B, 2), "profile_length": (B, 1), "label": (B,) int64 (-1 unlabelled),
"index": (B,) int64 row of ``pairs.pairs``}``.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from lightning import LightningDataModule
from torch.utils.data import Dataset

from plankflux.data.cytosense import (
    ANNOTATIONS_FILE,
    CytoSensePairs,
    combine_pairs,
    load_pairs,
    read_profile,
)
from plankflux.data.cytosense_batch_transforms import BatchPairTransform, PairPrepare
from plankflux.data.cytosense_transforms import SCALE_BAR_PX, PairTransform
from plankflux.data.images import as_grey, open_image
from plankflux.data.multicrop import MultiCropTransform
from plankflux.data.multicrop_batch import BatchMultiCrop
from plankflux.data.pair_cache import PairCache, ensure_pair_cache
from plankflux.datamodules.loading import SplitLoaders, generate_once

log = logging.getLogger(__name__)
SPLITS = ("fold", "pretrain")
FOLD_FRACTIONS = (0.80, 0.05, 0.15)  # train, val, test


class CytoSensePairDataset(Dataset):
    """One item per pair row; see the module docstring for the item's keys and shapes."""

    def __init__(self, pairs: CytoSensePairs, rows, labels, transform: PairTransform):
        self.pairs, self.transform = pairs, transform
        self.rows = np.asarray(rows, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        row = int(self.rows[i])
        image = np.asarray(as_grey(open_image(self.pairs.image_path(row))))
        try:
            profile = read_profile(self.pairs.profile_path(row))
        except ValueError as err:  # name the row as well as the file
            raise ValueError(f"{ANNOTATIONS_FILE} line {row + 2}: {err}") from err
        item = self.transform(image, profile)
        item["label"] = torch.tensor(self.labels[i], dtype=torch.int64)
        item["index"] = torch.tensor(row, dtype=torch.int64)
        return item


class CachedPairBatches(Dataset):
    """Training pairs from a :class:`~plankflux.data.pair_cache.PairCache` (position ``i``
    = ``rows[i]``), fetched a batch at a time (``__getitems__``): the keys of
    :class:`CytoSensePairDataset` with ``image`` (B, 1, P, P) uint8 and ``profile``
    (B, 6, PL) prepared, for :class:`BatchPairTransform` on the device."""

    batched = True

    def __init__(self, cache: PairCache, rows, labels):
        self.cache = cache
        self.rows = np.asarray(rows, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}

    def __getitems__(self, indices) -> dict[str, torch.Tensor]:
        index = np.asarray(indices, dtype=np.int64)
        arrays = self.cache.arrays()
        sizes = np.take(arrays["sizes"], index, axis=0)
        return {
            "image": torch.from_numpy(np.take(arrays["image"], index, axis=0)),
            "profile": torch.from_numpy(np.take(arrays["profile"], index, axis=0)),
            "image_size": torch.from_numpy(np.ascontiguousarray(sizes[:, :2])),
            "profile_length": torch.from_numpy(np.ascontiguousarray(sizes[:, 2:])),
            "label": torch.from_numpy(self.labels[index]),
            "index": torch.from_numpy(self.rows[index]),
        }


def fold_splits(
    labels: np.ndarray, fold: int, n_folds: int = 5, seed: int = 0
) -> dict[str, np.ndarray]:
    """Row indices of train/val/test for one fold of the labelled rows (labels >= 0).

    Per class of n rows (shuffled once per seed): test = positions
    [⌊0.15·n·k + ½⌋, ⌊0.15·n·(k+1) + ½⌋), val = the next ⌊0.05·n + ½⌋ positions
    (cyclically), train = the rest. The folds' test slices are disjoint.
    """
    train_f, val_f, test_f = FOLD_FRACTIONS
    if not 0 <= fold < n_folds or n_folds * test_f > 1 + 1e-9:
        raise ValueError(f"fold must be in 0..{n_folds - 1} with n_folds*{test_f} <= 1")
    out = {"train": [], "val": [], "test": []}
    for label in np.unique(labels[labels >= 0]):
        rows = np.flatnonzero(labels == label)
        rng = np.random.default_rng([seed, zlib.crc32(str(int(label)).encode())])
        rows, n = rows[rng.permutation(len(rows))], len(rows)
        lo, hi = (int(np.floor(test_f * n * k + 0.5)) for k in (fold, fold + 1))
        n_val = int(np.floor(val_f * n + 0.5))
        val_pos = (hi + np.arange(n_val)) % n
        val_pos = val_pos[(val_pos < lo) | (val_pos >= hi)]  # never inside the test slice
        in_test = np.zeros(n, bool)
        in_test[lo:hi] = True
        in_val = np.zeros(n, bool)
        in_val[val_pos] = True
        out["test"].append(rows[in_test])
        out["val"].append(rows[in_val])
        out["train"].append(rows[~in_test & ~in_val])
    return {k: np.sort(np.concatenate(v)) if v else np.zeros(0, np.int64) for k, v in out.items()}


def pretrain_splits(n: int, val_fraction: float = 0.05, seed: int = 0) -> dict[str, np.ndarray]:
    """A seeded train/val split of all ``n`` rows (at least one val row when n >= 2)."""
    order = np.random.default_rng([seed, 95]).permutation(n)
    n_val = max(1, int(np.floor(val_fraction * n + 0.5))) if n >= 2 else 0
    return {"train": np.sort(order[n_val:]), "val": np.sort(order[:n_val])}


class CytoSenseDataModule(SplitLoaders, LightningDataModule):
    def __init__(
        self,
        root: str | Sequence[str],
        name: str | None = None,
        image_size: int = 224,
        image_pad_size: int = 236,
        profile_length: int = 224,
        profile_pad_length: int = 236,
        scale_bar_px: int = SCALE_BAR_PX,
        split: str = "fold",
        fold: int = 0,
        n_folds: int = 5,
        seed: int = 0,
        pretrain_val_fraction: float = 0.05,
        augment: bool = True,
        batch_size: int = 512,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        device_transforms: bool = False,
        cache_dir: str | None = None,
        synthesize: dict | Sequence[dict | None] | None = None,
        multicrop: dict | None = None,
    ):
        """
        Args:
            root: pair data set (``annotations.csv``, images, profiles), or a list of
                them to train on together.
            name: the data set's name in results and tables (``LAB``, ``SEA``,
                ``LAB+UTO``); default the root folder names joined by ``+``.
            image_size / image_pad_size: model input S and the train-time pad (224/236).
            profile_length / profile_pad_length: profile input T and resample (224/236).
            scale_bar_px: rows cropped from the top of every image (the scale bar).
            split: ``fold`` (5-fold CV, 80/5/15) or ``pretrain`` (95/5 of all pairs).
            fold, n_folds, seed: which fold, how many, and the split seed.
            augment: random augmentations and the joint flip on training pairs.
            device_transforms: the training loader does only the deterministic part of
                the pipeline and the random part runs batched on the model's device
                (:mod:`plankflux.data.cytosense_batch_transforms`, or
                :mod:`plankflux.data.multicrop_batch` with ``multicrop``; the same
                distributions).
            cache_dir: with ``device_transforms``, keep the training pairs prepared, and
                the validation and test pairs' test-time inputs, in decoded caches there
                (:mod:`plankflux.data.pair_cache`): no PNG or CSV is read again while the
                files are unchanged (images kept as grey levels: within half a level of
                the per-pair floats). The predict split is read per pair.
            synthesize: ``{"kind": ..., "scale": ..., "seed": ...}`` to generate a
                synthetic data set at ``root`` when none is there yet (a list, one per
                root, when ``root`` is a list; ``None`` entries are not generated).
            multicrop: keyword arguments of
                :class:`~plankflux.data.multicrop.MultiCropTransform` (e.g. ``n_global``,
                ``global_size``, ``global_scale``, ``n_local``, ``local_size``,
                ``local_scale``) to give the *train* split DINO's multi-crop views
                (``"crops"``: a list of ``(B, 1, s, s)``, globals first) beside the
                test-time inputs; the sizes above are passed on. ``None``: the pair
                pipeline. Set, it replaces the train augmentation even if ``augment``
                is false (the crops are DINO's training signal).
        """
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if cache_dir and not device_transforms:
            log.warning(
                "data.cache_dir is not used for CytoSense pairs without "
                "data.device_transforms=true: each pair is read from its files"
            )
        self.save_hyperparameters(logger=False)
        roots = [root] if isinstance(root, (str, os.PathLike)) else list(root)
        if not roots:
            raise ValueError("root: give at least one data set")
        self.roots = [Path(r) for r in roots]
        self.root = self.roots[0]
        self.name = name or "+".join(r.name for r in self.roots)
        if isinstance(synthesize, Sequence):
            synth = list(synthesize)
        elif synthesize is not None and len(roots) > 1:  # one kind for LAB and UTO: no
            raise ValueError(f"synthesize: give one entry (or null) per root, {len(roots)}")
        else:
            synth = [synthesize] * len(roots)
        if len(synth) != len(roots):
            raise ValueError(f"synthesize: {len(synth)} entries for {len(roots)} roots")
        self._synthesize = list(synth)
        self.pairs: CytoSensePairs | None = None
        self.splits: dict[str, np.ndarray] = {}
        self._datasets: dict[str, CytoSensePairDataset] = {}
        self.batch_transform: BatchPairTransform | BatchMultiCrop | None = None

    def prepare_data(self) -> None:
        """Generate the synthetic data set once if asked and absent."""
        for root, synthesize in zip(self.roots, self._synthesize, strict=True):
            if synthesize and not (root / ANNOTATIONS_FILE).exists():
                from plankflux.synthetic.cytosense import generate_cytosense

                generate_once(root, ANNOTATIONS_FILE, generate_cytosense, **synthesize)

    def _pairs(self) -> CytoSensePairs:
        if self.pairs is None:
            self.prepare_data()
            self.pairs = combine_pairs([load_pairs(root) for root in self.roots])
        return self.pairs

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._pairs().classes

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def build_splits(self) -> dict[str, np.ndarray]:
        """Row indices of ``pairs.pairs`` for train, val, test and predict."""
        pairs, hp = self._pairs(), self.hparams
        everything = np.arange(len(pairs), dtype=np.int64)
        if hp.split == "pretrain":
            splits = pretrain_splits(len(pairs), hp.pretrain_val_fraction, hp.seed)
            # No test set of its own: testing reports the loss on the held-out rows, and
            # the k-NN evaluation on labelled target data sets is the real test.
            return {**splits, "test": splits["val"], "predict": everything}
        return {**self.fold_rows(hp.fold), "predict": everything}

    def fold_rows(self, fold: int) -> dict[str, np.ndarray]:
        """Train/val/test rows of one fold of the labelled pairs (any ``split`` mode):
        cross-domain evaluation draws galleries and queries from every fold."""
        labels = self._pairs().labels()
        if not (labels >= 0).any():
            raise ValueError(f"{self.name}: no labelled pairs for split='fold'; use 'pretrain'")
        return fold_splits(labels, fold, self.hparams.n_folds, self.hparams.seed)

    def setup(self, stage: str | None = None) -> None:
        if self._datasets:
            return
        pairs, hp = self._pairs(), self.hparams
        self.splits = self.build_splits()
        labels = pairs.labels()
        sizes = (hp.image_size, hp.image_pad_size, hp.profile_length, hp.profile_pad_length)
        for name, rows in self.splits.items():
            train = name == "train" and hp.augment
            multicrop = name == "train" and bool(hp.multicrop)  # replaces the augmentation
            transform = PairTransform(train, *sizes, scale_bar_px=hp.scale_bar_px)
            if (train or multicrop) and hp.device_transforms:
                transform = PairPrepare(hp.image_pad_size, hp.profile_pad_length, hp.scale_bar_px)
                self.batch_transform = (
                    BatchMultiCrop(**hp.multicrop)
                    if multicrop
                    else BatchPairTransform(hp.image_size, hp.profile_length)
                )
                if hp.cache_dir:
                    cache = ensure_pair_cache(hp.cache_dir, pairs, rows, transform)
                    self._datasets[name] = CachedPairBatches(cache, rows, labels[rows])
                    continue
            elif multicrop:
                transform = MultiCropTransform(
                    **hp.multicrop,
                    image_size=hp.image_size,
                    image_pad_size=hp.image_pad_size,
                    profile_length=hp.profile_length,
                    profile_pad_length=hp.profile_pad_length,
                    scale_bar_px=hp.scale_bar_px,
                )
            elif hp.device_transforms and hp.cache_dir and name != "predict":
                # Validation/test pairs (and unaugmented training pairs): their test-time
                # inputs cached once (the test path's resize straight to image_size),
                # scaled to [-1, 1] on the device (on_after_batch_transfer). Predict
                # stays per pair: embeddings are computed outside a Trainer too.
                inputs = PairPrepare(hp.image_size, hp.profile_length, hp.scale_bar_px)
                cache = ensure_pair_cache(hp.cache_dir, pairs, rows, inputs)
                self._datasets[name] = CachedPairBatches(cache, rows, labels[rows])
                continue
            self._datasets[name] = CytoSensePairDataset(pairs, rows, labels[rows], transform)
        log.info("splits: %s", {k: len(v) for k, v in self.splits.items()})

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """With ``device_transforms``, on the model's device: a training batch gets its
        random augmentation (or DINO's views); a batch of cached test-time inputs (uint8
        images) is scaled to [-1, 1], as the per-pair test path gives it."""
        if self.batch_transform is not None and self.trainer is not None:
            if self.trainer.training:
                return self.batch_transform(batch)
        if batch["image"].dtype == torch.uint8:
            return {**batch, "image": batch["image"].float().div_(127.5).sub_(1.0)}
        return batch

    def split_frame(self, name: str) -> pd.DataFrame:
        """The pair rows of one split (after ``setup``), ``label`` column added."""
        frame = self._pairs().pairs.iloc[self.splits[name]].copy()
        frame["label"] = self._pairs().labels()[self.splits[name]]
        return frame


# What a target inherits from the training data unless it says otherwise.
INHERITED = (
    "image_size",
    "image_pad_size",
    "profile_length",
    "profile_pad_length",
    "scale_bar_px",
    "batch_size",
    "eval_batch_size",
    "num_workers",
    "pin_memory",
    "n_folds",
    "seed",
)


def target_datamodule(
    name: str, spec: Mapping | CytoSenseDataModule, like: CytoSenseDataModule | None
) -> CytoSenseDataModule:
    """The DataModule of one target: ``spec`` itself when Hydra already built it (a
    ``data`` config placed under ``targets``), else built from the keyword arguments
    with the sizes of ``like`` unless given."""
    if isinstance(spec, CytoSenseDataModule):
        sizes = ("image_size", "profile_length", "scale_bar_px")
        differ = [k for k in sizes if like is not None and spec.hparams[k] != like.hparams[k]]
        if differ:  # e.g. a 224-px real-data config as the target of a 64-px demo model
            log.warning(
                "k-NN target %s differs from the training data in %s: %s vs %s",
                spec.name,
                differ,
                [spec.hparams[k] for k in differ],
                [like.hparams[k] for k in differ],
            )
        return spec
    inherited = {k: like.hparams[k] for k in INHERITED if like is not None and k in like.hparams}
    kwargs = {"name": name, **inherited, **{k: v for k, v in spec.items() if k != "_target_"}}
    return CytoSenseDataModule(**kwargs)
