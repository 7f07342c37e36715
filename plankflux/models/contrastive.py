"""ContrastiveModule: CLIP-style image–profile pre-training (Paper B), a thin system.

The model is a plain module, :class:`~plankflux.models.components.clip.ImageProfileCLIP`
(towers, projections, the learnable temperature and SigLIP's bias), whose ``forward``
returns the loss's keyword arguments as open_clip's models do; the loss comes from
``plankflux.losses``. This system only wires optimisation, logging and the clamp of
the temperature after every step.

Batches are dicts from :class:`~plankflux.datamodules.cytosense.CytoSenseDataModule`:
``image`` (B, 1, S, S), ``profile`` (B, 6, T), ``image_size`` (B, 2) and
``profile_length`` (B, 1) size scalars, ``label`` (B,), ``index`` (B,).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

import torch
from lightning import LightningModule
from torch import Tensor

from plankflux.losses import LOSSES
from plankflux.models.components.clip import ImageProfileCLIP
from plankflux.optim.schedules import (
    OptimizerFactory,
    SchedulerFactory,
    configure_optimization,
    warmup_cosine,
)

_CLIP_PARTS = ("image_encoder", "profile_encoder", "log_logit_scale", "logit_bias")


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
        self.clip = ImageProfileCLIP(
            image_tower,
            profile_tower,
            embed_dim,
            dropout,
            init_temperature,
            init_bias if loss == "siglip" else None,
        )
        self.loss = LOSSES[loss]()

    def encode(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Image and profile embeddings ``(B, D)``, L2-normalised."""
        return self.clip.encode(batch)

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor | None]:
        return self.clip(batch)

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
        temperature = 1 / self.clip.log_logit_scale.exp()
        self.log("train/temperature", temperature, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # open_clip clamps after every optimiser step, so the scale never runs away.
        self.clip.clamp_logit_scale()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Checkpoints written before the CLIP model became its own nn.Module kept its
        # parameters at the top level (image_encoder.*, log_logit_scale, ...).
        state = checkpoint["state_dict"]
        for key in [k for k in state if k.split(".")[0] in _CLIP_PARTS]:
            state[f"clip.{key}"] = state.pop(key)

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
