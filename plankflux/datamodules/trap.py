"""LightningDataModule for Paper A: train on some domains, test and predict on a target.

Splits (``setup``):

* train / val: the labelled particles of ``train_domains``, split 80/20 stratified by
  class *within each domain* with a seeded generator (docs/paper_a.md).
* test: the labelled particles of ``target_domain``. When the target is also a
  training domain (an in-domain run), a stratified ``test_fraction`` of its
  labelled particles is held out first, so no test image is trained on.
* predict: every particle of the target domain, labelled or not (or only the
  labelled ones with ``predict_labelled_only``).

Retraining with target labels (``target_labels``: a ``particle_id, label`` CSV such as
the verified proposals): train = every labelled particle of ``train_domains`` plus
80% of the target labels (stratified by label); validation = the other 20% only;
test and predict = the target particles not in ``target_labels`` (docs/paper_a.md step 6).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from lightning import LightningDataModule

from plankflux.data.audit import unsplittable_classes
from plankflux.data.batch_transforms import BatchImageTransform
from plankflux.data.campaign import PARTICLES_FILE, Campaign, load_campaign
from plankflux.data.image_cache import ensure_image_cache
from plankflux.data.splits import stratified_split
from plankflux.data.transforms import ImagePipeline, check_resize_mode, resolve_normalization
from plankflux.data.trap_dataset import ResizedImages, TrapImageDataset
from plankflux.datamodules.loading import SplitLoaders, generate_once

log = logging.getLogger(__name__)


class TrapDataModule(SplitLoaders, LightningDataModule):
    # Paper A's evaluation steps do not communicate: each rank scores its own share of
    # val/test images once, and the synchronised metrics equal one process's.
    unrepeated_eval = True

    def __init__(
        self,
        root: str,
        train_domains: Sequence[str],
        target_domain: str,
        image_size: int = 224,
        resize_mode: str = "resize",
        normalize: str | None = "none",
        augment: bool = True,
        exclude_ambiguous: bool = False,
        predict_labelled_only: bool = False,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        device_transforms: bool = False,
        cache_dir: str | None = None,
        skip_unreadable: bool = False,
        synthesize: dict | None = None,
        target_labels: str | None = None,
    ):
        """
        Args:
            root: campaign folder (``particles.csv``, ``samples.csv``, images).
            train_domains: domains whose labelled particles train and validate.
            target_domain: domain tested (labelled) and predicted (all particles).
            image_size: side S of the square model input (224 in the paper).
            resize_mode: ``resize`` (stretch) or ``pad`` (CustomPad, aspect kept, black);
                ``pad_median`` / ``pad_<0-255>`` pad with the border median / that grey.
            normalize: ``none``, ``dataset`` (published statistics for the resize
                mode), ``imagenet``, or a stats JSON written by ``plankflux stats``.
            augment: random 90° rotation and flips on training images.
            exclude_ambiguous: drop particles flagged ``ambiguous`` from every split.
            predict_labelled_only: predict only the labelled target particles.
            device_transforms: the DataLoader yields uint8 batches and the conversion,
                augmentation and normalisation run batched on the model's device
                (:mod:`plankflux.data.batch_transforms`; the same augmentation as the
                per-item path). Use with ``cache_dir`` for GPU-speed input.
            cache_dir: folder for the decoded-image cache; ``None`` decodes every epoch.
            skip_unreadable: drop particles whose image is missing or undecodable
                (listed in ``skipped``) instead of failing.
            synthesize: ``{"scale": ..., "seed": ...}`` to generate a synthetic
                campaign at ``root`` when none is there yet.
            target_labels: CSV (``particle_id, label``) of target particles to train
                on with these labels (verified or proposed); see the module docstring.
        """
        super().__init__()
        check_resize_mode(resize_mode)
        if not train_domains:
            raise ValueError("train_domains is empty")
        self.save_hyperparameters(logger=False)
        self.root = Path(root)
        self.train_domains = list(train_domains)
        self.target_domain = target_domain
        self.campaign: Campaign | None = None
        self.splits: dict[str, np.ndarray] = {}
        self.skipped: list = []
        self._datasets: dict[str, TrapImageDataset] = {}
        self.batch_transform: BatchImageTransform | None = None

    # ------------------------------------------------------------------ data
    def prepare_data(self) -> None:
        """Generate the synthetic campaign once (rank 0) if asked and absent."""
        if self.hparams.synthesize and not (self.root / PARTICLES_FILE).exists():
            from plankflux.synthetic.trap import generate_trap_campaign

            generate_once(
                self.root, PARTICLES_FILE, generate_trap_campaign, **self.hparams.synthesize
            )

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._campaign().classes

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _campaign(self) -> Campaign:
        if self.campaign is None:
            self.prepare_data()
            check = "decode" if self.hparams.skip_unreadable else "exists"
            self.campaign = load_campaign(self.root, check, self.hparams.skip_unreadable)
            self.skipped = self.campaign.skipped
            if self.skipped:
                log.warning("skipping %d unreadable image(s) of %s", len(self.skipped), self.root)
        return self.campaign

    def target_label_rows(self) -> pd.Series:
        """Campaign row -> label of the ``target_labels`` CSV (rows with a label only)."""
        path = Path(self.hparams.target_labels)
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        missing = [c for c in ("particle_id", "label") if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}")
        frame = frame[frame["label"] != ""]
        particles = self._campaign().particles
        row_of = pd.Series(particles.index, index=particles["particle_id"])
        problems = [
            f"line {i + 2}: particle_id {pid!r} is not in the campaign"
            for i, pid in zip(frame.index, frame["particle_id"], strict=True)
            if pid not in row_of.index
        ]
        problems += [
            f"line {i + 2}: unknown class label {label!r}"
            for i, label in zip(frame.index, frame["label"], strict=True)
            if label not in self.class_names
        ]
        if not problems:
            rows = row_of[frame["particle_id"]].to_numpy()
            outside = particles["domain"].to_numpy()[rows] != self.target_domain
            problems += [
                f"particle_id {pid!r} is not in the target domain {self.target_domain}"
                for pid in frame["particle_id"][outside]
            ]
        if problems:
            raise ValueError(f"{path}: " + "; ".join(problems[:20]))
        return pd.Series(frame["label"].to_numpy(), index=rows)

    def build_splits(self) -> dict[str, np.ndarray]:
        """Row indices of ``campaign.particles`` for train, val, test and predict."""
        particles = self._campaign().particles
        known = set(particles["domain"])
        for domain in [*self.train_domains, self.target_domain]:
            if domain not in known:
                raise ValueError(
                    f"domain {domain!r} is not in {self.root / PARTICLES_FILE} "
                    f"(domains there: {sorted(known)})"
                )
        usable = particles["label"] != ""
        if self.hparams.exclude_ambiguous:
            usable &= ~particles["ambiguous"]
        labelled = particles.index[usable].to_numpy()

        target_labelled = labelled[
            particles.loc[labelled, "domain"].to_numpy() == self.target_domain
        ]
        target = particles.index[particles["domain"] == self.target_domain].to_numpy()
        if self.hparams.predict_labelled_only:
            target = np.intersect1d(target, labelled)
        if self.hparams.target_labels:
            extra = self.target_label_rows()
            rows = extra.index.to_numpy()
            first, second = stratified_split(
                extra.tolist(), self.hparams.val_fraction, self.hparams.split_seed
            )
            if len(second) == 0:
                raise ValueError(
                    f"{self.hparams.target_labels}: {len(rows)} labelled row(s) leave no "
                    "validation images; retraining needs at least one per split"
                )
            pool = labelled[particles.loc[labelled, "domain"].isin(self.train_domains).to_numpy()]
            return {
                "train": np.union1d(pool, rows[first]),
                "val": np.sort(rows[second]),
                "test": np.setdiff1d(target_labelled, rows),
                "predict": np.setdiff1d(target, rows),
            }
        held_out = np.zeros(0, np.int64)
        if self.target_domain in self.train_domains:
            _, pos = stratified_split(
                particles.loc[target_labelled, "label"].tolist(),
                self.hparams.test_fraction,
                self.hparams.split_seed,
            )
            held_out = target_labelled[pos]
        test = target_labelled if held_out.size == 0 else held_out

        pool = labelled[particles.loc[labelled, "domain"].isin(self.train_domains).to_numpy()]
        pool = np.setdiff1d(pool, held_out)
        keys = list(zip(particles.loc[pool, "domain"], particles.loc[pool, "label"], strict=True))
        first, second = stratified_split(keys, self.hparams.val_fraction, self.hparams.split_seed)

        return {"train": pool[first], "val": pool[second], "test": test, "predict": target}

    def setup(self, stage: str | None = None) -> None:
        if self._datasets:
            return
        campaign = self._campaign()
        self.splits = self.build_splits()
        size, mode = self.hparams.image_size, self.hparams.resize_mode
        rows = np.unique(np.concatenate(list(self.splits.values())))
        paths = campaign.image_paths(campaign.particles.iloc[rows])
        cache = None
        if self.hparams.cache_dir:
            cache = ensure_image_cache(self.hparams.cache_dir, paths, size, mode, progress=True)
        images = ResizedImages(rows, paths, size, mode, cache)

        mean_std = resolve_normalization(self.hparams.normalize, mode)
        index = {name: i for i, name in enumerate(campaign.classes)}
        labels = campaign.particles["label"].map(lambda s: index.get(s, -1)).to_numpy(copy=True)
        if self.hparams.target_labels:  # target particles train with the given labels
            extra = self.target_label_rows()
            labels[extra.index.to_numpy()] = extra.map(index).to_numpy()
        if self.hparams.device_transforms:
            self.batch_transform = BatchImageTransform(self.hparams.augment, mean_std)
        for split, split_rows in self.splits.items():
            train = split == "train" and self.hparams.augment
            pipeline = None if self.batch_transform else ImagePipeline(train, mean_std)
            self._datasets[split] = TrapImageDataset(
                split_rows, labels[split_rows], images, pipeline
            )
        log.info("splits: %s", {k: len(v) for k, v in self.splits.items()})
        if stage in (None, "fit") and not self.hparams.target_labels:
            fraction = self.hparams.val_fraction
            for line in unsplittable_classes(campaign, fraction, self.train_domains):
                log.warning(line)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """With ``device_transforms``: the uint8 batch, now on the model's device, becomes
        the model input (augmented only in a training step)."""
        if self.batch_transform is not None and batch["image"].dtype == torch.uint8:
            training = self.trainer is not None and self.trainer.training
            batch["image"] = self.batch_transform(batch["image"], train=training)
        return batch

    def split_frame(self, split: str) -> pd.DataFrame:
        """The particle rows of one split (after ``setup``)."""
        return self._campaign().particles.iloc[self.splits[split]]
