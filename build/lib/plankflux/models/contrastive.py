"""ContrastiveModule: CLIP-style image–profile pre-training (Paper B), a thin system.

The parts are plain modules: towers (``plankflux.models.components.image_towers`` /
``profile_towers``), projection heads and the losses of ``plankflux.losses``. This
module owns the learnable log-temperature (and the SigLIP bias), clamps the
temperature after every step, and follows open_clip in returning from ``forward`` a
dict whose keys are the loss's arguments.

Batches are dicts from :class:`~plankflux.datamodules.cytosense.CytoSenseDataModule`:
``image`` (B, 1, S, S), ``profile`` (B, 6, T), ``image_size`` (B, 2) and
``profile_length`` (B, 1) size scalars, ``label`` (B,), ``index`` (B,).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial

import torch
from lightning import LightningModule
from torch import Tensor

from plankflux.losses import LOSSES
from plankflux.models.components.image_towers import build_image_tower
from plankflux.models.components.profile_towers import build_profile_tower
from plankflux.models.components.projection import ModalityEncoder, ProjectionHead
from plankflux.optim.schedules import (
    OptimizerFactory,
    SchedulerFactory,
    configure_optimization,
    warmup_cosine,
)

MAX_LOGIT_SCALE = 100.0  # CLIP's clamp: the temperature never goes below 0.01


class ContrastiveModule(LightningModule):
    method_name = "clip"  # how evaluations and tables name this method

    def __init__(
        self,
        image_tower: Mapping,
        profile_tower: Mapping,
        loss: str = "infonce",
        embed_dim: int = 512,
        dropout: float = 0.2,
        init_temperature: float = 0.07,
        init_bias: float = -10.0,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        class_names: Sequence[str] | None = None,
    ):
        """
        Args:
            image_tower: ``{"name": ..., **kwargs}`` for ``build_image_tower`` (e.g.
                ``{"name": "efficientnet_b0", "pretrained": "timm"}``).
            profile_tower: ``{"name": ..., **kwargs}`` for ``build_profile_tower``.
            loss: ``infonce`` or ``siglip``.
            init_temperature: CLIP's 0.07 for InfoNCE; SigLIP starts at 0.1 (scale 10).
            init_bias: SigLIP's learnable bias, initialised at -10 (unused by InfoNCE).
            optimizer: a ``_partial_`` optimiser; default Paper B's SGD, Nesterov
                momentum 0.9, lr 0.005, weight decay 1e-3 (docs/paper_b.md).
            scheduler: a ``_partial_`` scheduler; default :func:`warmup_cosine`, linear
                warm-up from 1 % of the lr over 5 epochs, then cosine to 1e-5.
            class_names: the labelled classes of the data (kept with the checkpoint for
                the k-NN evaluation; pre-training itself uses no labels).
        """
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
        # The factories are configuration, not state: kept out of the checkpoint.
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.optimizer_factory = optimizer or partial(
            torch.optim.SGD, lr=0.005, momentum=0.9, nesterov=True, weight_decay=1e-3
        )
        self.scheduler_factory = scheduler or partial(
            warmup_cosine, warmup_epochs=5, start_factor=0.01, min_lr=1e-5
        )
        image = build_image_tower(**dict(image_tower))
        profile = build_profile_tower(**dict(profile_tower))
        # Size scalars are appended before projection: image (H, W) -> 2, profile L -> 1.
        self.image_encoder = ModalityEncoder(
            image, ProjectionHead(image.width, 2, embed_dim, dropout)
        )
        self.profile_encoder = ModalityEncoder(
            profile, ProjectionHead(profile.width, 1, embed_dim, dropout)
        )
        self.loss = LOSSES[loss]()
        self.log_logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / init_temperature)))
        self.logit_bias = torch.nn.Parameter(torch.tensor(init_bias)) if loss == "siglip" else None

    def encode(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Image and profile embeddings ``(B, D)``, L2-normalised."""
        image = self.image_encoder(batch["image"], batch["image_size"])
        profile = self.profile_encoder(batch["profile"], batch["profile_length"])
        return image, profile

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor | None]:
        image, profile = self.encode(batch)
        return {
            "image_features": image,
            "profile_features": profile,
            "logit_scale": self.log_logit_scale.exp(),
            "logit_bias": self.logit_bias,
        }

    def _step(self, batch: Mapping[str, Tensor], split: str) -> Tensor:
        loss = self.loss(**self(batch))
        on_step = split == "train"
        self.log(
            f"{split}/loss",
            loss,
            on_step=on_step,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(batch["image"]),
            sync_dist=split != "train",
        )
        return loss

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        loss = self._step(batch, "train")
        self.log("train/temperature", 1 / self.log_logit_scale.exp(), on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # open_clip clamps after every optimiser step, so the scale never runs away.
        with torch.no_grad():
            self.log_logit_scale.clamp_(0, math.log(MAX_LOGIT_SCALE))

    def predict_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """``{"index": (B,), "label": (B,), "image": (B, D), "profile": (B, D)}``."""
        image, profile = self.encode(batch)
        return {
            "index": batch["index"],
            "label": batch["label"],
            "image": image,
            "profile": profile,
        }

    def configure_optimizers(self):
        return configure_optimization(
            self.parameters(),
            self.optimizer_factory,
            self.scheduler_factory,
            self.trainer,
        )
