"""DINOModule: image-only self-distillation (Caron et al. 2021), Paper B's baseline, a thin system.

Student = image tower (:func:`build_image_tower`) + :class:`DINOHead`; teacher = a copy
without gradients, an exponential moving average of the student. The loss is
:class:`~plankflux.losses.dino.DINOLoss`. This module owns the schedules, all
functions of the optimiser step or the epoch (so a resumed run picks them up again):

* learning rate: linear warm-up from 0 over 10 epochs, then cosine to 1e-6 (the
  ``scheduler``, :func:`~plankflux.optim.schedules.warmup_cosine`);
* weight decay: cosine from ``weight_decay`` to ``weight_decay_end`` (DINO's 0.04 → 0.4),
  on weights only (biases and other 1-D parameters are not decayed);
* teacher EMA momentum: cosine from ``momentum`` (0.996) to 1 over all training steps;
* teacher temperature: linear ``teacher_temp`` → ``teacher_temp_end`` (0.04 → 0.07)
  over ``teacher_temp_warmup_epochs`` (30), then constant;
* the last layer's gradients are dropped for ``freeze_last_layer_epochs`` (1), and
  every gradient is clipped to norm ``clip_grad`` (3.0) *per parameter*, as DINO does.

As in DINO the teacher runs in training mode during training (its BatchNorm layers
use batch statistics and keep their own running statistics); only parameters are
averaged.

Batches: train batches carry ``crops``, a list of ``(B, 1, s, s)`` (the
``n_global_crops`` global views first; see :mod:`plankflux.data.multicrop`).
Validation and test batches are pair batches with one test-time ``image`` (B, 1, S, S):
their loss is the DINO loss with that image as both global views — the cross-entropy
between teacher and student on the clean image — at the *final* teacher temperature
and without touching the centre, so that it is comparable from epoch to epoch (the
warm-up's temperature would otherwise raise it by itself). It is not a model-selection
criterion of the DINO paper, which evaluates the last teacher.

``predict_step`` gives the k-NN evaluation the L2-normalised *backbone* features of the
teacher (not the head's output), as the DINO paper's k-NN protocol does.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from lightning import LightningModule
from torch import Tensor, nn

from plankflux.losses.dino import DINOLoss
from plankflux.models.components.dino_head import DINOHead
from plankflux.models.components.image_towers import build_image_tower
from plankflux.optim.schedules import (
    OptimizerFactory,
    SchedulerFactory,
    configure_optimization,
    cosine_schedule,
    decay_param_groups,
    teacher_momentum,
    teacher_temperature,
    warmup_cosine,
)


class DINOModule(LightningModule):
    method_name = "dino"  # how evaluations and tables name this method

    def __init__(
        self,
        image_tower: Mapping,
        out_dim: int = 65536,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        norm_last_layer: bool = True,
        n_global_crops: int = 2,
        student_temp: float = 0.1,
        teacher_temp: float = 0.04,
        teacher_temp_end: float = 0.07,
        teacher_temp_warmup_epochs: int = 30,
        center_momentum: float = 0.9,
        momentum: float = 0.996,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        weight_decay: float = 0.04,
        weight_decay_end: float = 0.4,
        freeze_last_layer_epochs: int = 1,
        clip_grad: float | None = 3.0,
        class_names: Sequence[str] | None = None,
    ):
        """
        Args:
            image_tower: ``{"name": ..., **kwargs}`` for ``build_image_tower``; ViTs get
                ``dynamic_img_size=True`` (the local crops are smaller than the globals).
            out_dim, hidden_dim, bottleneck_dim, norm_last_layer: the :class:`DINOHead`.
            n_global_crops: how many leading ``crops`` the teacher sees (2).
            student_temp, center_momentum: :class:`DINOLoss` (0.1, 0.9).
            teacher_temp, teacher_temp_end, teacher_temp_warmup_epochs: 0.04 → 0.07 over 30.
            momentum: the teacher's EMA momentum at the first step (→ 1 at the last).
            optimizer: a ``_partial_`` optimiser over the weight/no-weight-decay groups;
                default AdamW at DINO's peak lr 5e-4 (DINO scales 0.0005 per 256 images
                of global batch: 1e-3 at 512).
            scheduler: a ``_partial_`` lr scheduler; default :func:`warmup_cosine`, linear
                warm-up from 0 over 10 epochs, then cosine to 1e-6.
            weight_decay, weight_decay_end: cosine weight-decay schedule (0.04 → 0.4)
                of the weights' group; biases and norm scales get none.
            freeze_last_layer_epochs: epochs without updates of the head's last layer.
            clip_grad: per-parameter gradient-norm clip (``None`` or 0: off).
            class_names: the labelled classes (kept for the k-NN evaluation; DINO
                itself uses no labels).
        """
        super().__init__()
        # The factories are configuration, not state: kept out of the checkpoint.
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.optimizer_factory = optimizer or partial(torch.optim.AdamW, lr=5e-4)
        self.scheduler_factory = scheduler or partial(
            warmup_cosine, warmup_epochs=10, start_factor=0.0, min_lr=1e-6
        )
        tower_kwargs = dict(image_tower)
        if str(tower_kwargs.get("name", "")).startswith(("vit_", "deit", "eva")):
            tower_kwargs.setdefault("dynamic_img_size", True)
        backbone = build_image_tower(**tower_kwargs)
        head = DINOHead(
            backbone.width, out_dim, hidden_dim, bottleneck_dim, norm_last_layer=norm_last_layer
        )
        self.student = nn.ModuleDict({"backbone": backbone, "head": head})
        # The teacher starts as the student; gradients never reach it.
        self.teacher = copy.deepcopy(self.student).requires_grad_(False)
        self._teacher_step = 0  # the global_step of the last teacher update
        self.loss = DINOLoss(out_dim, student_temp, center_momentum)

    # ------------------------------------------------------------------ forward

    @staticmethod
    def _views(net: nn.ModuleDict, crops: Sequence[Tensor]) -> Tensor:
        """``V`` crops ``(B, 1, s_v, s_v)`` → head outputs ``(V, B, K)``.

        Consecutive crops of one size go through the backbone as one batch (one pass
        for the globals, one for the locals), as DINO's multi-crop wrapper does.
        """
        batch, out = crops[0].shape[0], []
        for _, group in itertools.groupby(crops, key=lambda crop: tuple(crop.shape[-2:])):
            group = list(group)
            features = net["backbone"].forward_features(torch.cat(group))
            out.append(net["head"](features).view(len(group), batch, -1))
        return torch.cat(out)

    @torch.no_grad()
    def embed(self, image: Tensor) -> Tensor:
        """Teacher backbone features ``(B, 1, S, S) -> (B, width)``, L2-normalised."""
        return F.normalize(self.teacher["backbone"].forward_features(image).float(), dim=-1)

    def teacher_temp_now(self) -> float:
        hp = self.hparams
        return teacher_temperature(
            self.current_epoch, hp.teacher_temp, hp.teacher_temp_end, hp.teacher_temp_warmup_epochs
        )

    def _total_steps(self) -> int:
        return max(1, int(self.trainer.estimated_stepping_batches))

    # ------------------------------------------------------------------ steps

    def training_step(self, batch: Mapping, batch_idx: int) -> Tensor:
        crops = list(batch["crops"])
        n_global = self.hparams.n_global_crops
        if len(crops) <= n_global:
            raise ValueError(f"{len(crops)} crops: need more than n_global_crops={n_global}")
        temp = self.teacher_temp_now()
        with torch.no_grad():
            teacher_out = self._views(self.teacher, crops[:n_global])  # (V_t, B, K)
        student_out = self._views(self.student, crops)  # (V_s, B, K)
        loss = self.loss(student_out, teacher_out, temp)
        batch_size = len(crops[0])
        self.log(
            "train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size
        )
        self.log("train/teacher_temp", temp, on_step=False, on_epoch=True, batch_size=batch_size)
        return loss

    def _eval_step(self, batch: Mapping, split: str) -> None:
        image = batch["image"]
        # The clean image as both global views: pairs (0, 1) and (1, 0) are both
        # CE(teacher(x), student(x)). The loss is in eval mode: the centre stays.
        student_out = self._views(self.student, [image]).expand(2, -1, -1)
        teacher_out = self._views(self.teacher, [image]).expand(2, -1, -1)
        loss = self.loss(student_out, teacher_out, self.hparams.teacher_temp_end)
        self.log(
            f"{split}/loss",
            loss,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(image),
            sync_dist=True,
        )

    def validation_step(self, batch: Mapping, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Mapping, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def predict_step(self, batch: Mapping, batch_idx: int) -> dict[str, Tensor]:
        """``{"index": (B,), "label": (B,), "image": (B, width)}`` teacher backbone features."""
        return {
            "index": batch["index"],
            "label": batch["label"],
            "image": self.embed(batch["image"]),
        }

    # ------------------------------------------------------------------ schedules

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        hp = self.hparams
        wd = cosine_schedule(
            self.global_step, self._total_steps(), hp.weight_decay, hp.weight_decay_end
        )
        self.trainer.optimizers[0].param_groups[0]["weight_decay"] = wd  # group 0: the weights

    def on_before_optimizer_step(self, optimizer) -> None:
        # Lightning calls this after AMP has unscaled the gradients.
        if self.hparams.clip_grad:
            for p in self.student.parameters():
                if p.grad is not None:  # DINO clips each parameter's gradient on its own
                    scale = self.hparams.clip_grad / (p.grad.norm() + 1e-6)
                    p.grad.mul_(scale.clamp(max=1.0))
        if self.current_epoch < self.hparams.freeze_last_layer_epochs:
            # No gradient, no AdamW update (not even weight decay): the prototypes stay
            # put while the rest of the student finds its feet.
            for p in self.student["head"].last_layer_parameters():
                p.grad = None

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # One teacher update per optimiser step: with gradient accumulation most batches
        # end without a step (global_step unchanged), and the teacher must not move then.
        if self.global_step == self._teacher_step:
            return
        self._teacher_step = self.global_step
        # global_step has just counted the optimiser step; the step index is one less.
        m = teacher_momentum(self.global_step - 1, self._total_steps(), self.hparams.momentum)
        self.update_teacher(m)
        self.log("train/teacher_momentum", m, on_step=False, on_epoch=True)

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """``θ_t ← m·θ_t + (1 − m)·θ_s`` for every parameter (buffers are the teacher's own)."""
        pairs = zip(self.teacher.parameters(), self.student.parameters(), strict=True)
        for teacher, student in pairs:
            teacher.mul_(momentum).add_(student.detach(), alpha=1 - momentum)

    def configure_optimizers(self):
        return configure_optimization(
            decay_param_groups(self.student.parameters(), self.hparams.weight_decay),
            self.optimizer_factory,
            self.scheduler_factory,
            self.trainer,
        )
