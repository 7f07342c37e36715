"""ParticleClassifier: the thin LightningModule around one ensemble member."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial

import torch
from lightning import LightningModule
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassPrecision, MulticlassRecall

from plankflux.models.components.member import as_memory_format, build_member, speed_up
from plankflux.optim.schedules import OptimizerFactory, SchedulerFactory, configure_optimization


class ParticleClassifier(LightningModule):
    """Cross-entropy training of a ResNet-18 member over the campaign's classes
    (``backbone="efficientnet_lite0"``: an ImageNet start offline, not the paper's).

    Batches are dicts from :class:`~plankflux.data.trap_dataset.TrapImageDataset`:
    ``image`` (B, 3, S, S), ``label`` (B,), ``row`` (B,). Logs ``{split}/loss``,
    ``{split}/acc``, macro precision/recall and, per class,
    ``{split}/precision_<class>`` and ``{split}/recall_<class>``. Under DDP the
    validation and test metrics are torchmetrics states summed over the ranks, so they
    equal one process's (the trap DataModule gives each rank distinct images).
    ``predict_step`` returns ``{"row": (B,), "probs": (B, C)}``.

    ``channels_last`` (NHWC convolutions, faster with tensor cores) and ``compile``
    (``torch.compile`` of the network) change speed, not results beyond float rounding;
    neither is stored in the checkpoint.

    The data settings (``image_size``, ``resize_mode``, ``normalize``) are stored in
    the checkpoint with the class list, so a checkpoint can be refused for data it was
    not trained for.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        weights: str | os.PathLike | None = "imagenet",
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        image_size: int = 224,
        resize_mode: str = "resize",
        normalize: str | None = "none",
        backbone: str = "resnet18",
        channels_last: bool = False,
        compile: bool = False,
    ):
        super().__init__()
        # The factories and the speed switches are configuration, not state: kept out
        # of the checkpoint.
        self.save_hyperparameters(ignore=["optimizer", "scheduler", "channels_last", "compile"])
        self.class_names = list(class_names)
        # Paper A's member is ResNet-18; ``efficientnet_lite0`` is a CPU-demo option.
        self.net = speed_up(
            build_member(len(self.class_names), backbone, weights), channels_last, compile
        )
        self.channels_last = bool(channels_last)
        # Paper A: AdamW, lr 1e-3, weight decay 1e-2, no schedule (docs/paper_a.md).
        self.optimizer_factory = optimizer or partial(torch.optim.AdamW, lr=1e-3, weight_decay=1e-2)
        self.scheduler_factory = scheduler
        self.criterion = nn.CrossEntropyLoss()
        num_classes = len(self.class_names)
        self.metrics = nn.ModuleDict(
            {
                split: MetricCollection(
                    {
                        "acc": MulticlassAccuracy(num_classes, average="micro"),
                        "precision": MulticlassPrecision(num_classes, average=None),
                        "recall": MulticlassRecall(num_classes, average=None),
                    },
                    prefix=f"{split}/",
                )
                for split in ("val", "test")
            }
        )
        # The mean loss over every val/test image, summed across DDP ranks (not rank 0's).
        self.mean_loss = nn.ModuleDict({split: MeanMetric() for split in ("val", "test")})

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> logits (B, C)."""
        return self.net(as_memory_format(images, self.channels_last))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.criterion(self(batch["image"]), batch["label"])
        self.log(
            "train/loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(batch["label"]),
        )
        return loss

    def _eval_step(self, batch: dict, split: str) -> dict[str, torch.Tensor]:
        logits = self(batch["image"])
        labels = batch["label"]
        loss = self.criterion(logits, labels)
        self.mean_loss[split].update(loss, weight=len(labels))
        self.log(
            f"{split}/loss",
            self.mean_loss[split],
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(labels),
        )
        self.metrics[split].update(logits, labels)
        return {"row": batch["row"], "pred": logits.argmax(dim=-1)}

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        """Returns ``{"row": (B,), "pred": (B,)}`` for the test-prediction writer."""
        return self._eval_step(batch, "test")

    def _log_epoch_metrics(self, split: str) -> None:
        values = self.metrics[split].compute()
        self.metrics[split].reset()
        flat = {f"{split}/acc": values[f"{split}/acc"]}
        for name in ("precision", "recall"):
            per_class = values[f"{split}/{name}"]
            flat[f"{split}/{name}_macro"] = per_class.mean()
            for class_name, value in zip(self.class_names, per_class, strict=True):
                flat[f"{split}/{name}_{class_name}"] = value
        # compute() already synchronised these across ranks: every rank logs the same values.
        self.log_dict(flat, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics("test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        return {"row": batch["row"], "probs": self(batch["image"]).softmax(dim=-1)}

    def configure_optimizers(self):
        return configure_optimization(
            self.parameters(),
            self.optimizer_factory,
            self.scheduler_factory,
            self.trainer,
        )
