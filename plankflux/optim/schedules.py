"""Learning-rate and other schedules shared by the three systems.

Every system is configured the same way: a Hydra ``_partial_`` optimiser (called with
the parameters, or with parameter groups) and an optional ``_partial_`` scheduler
(called with the optimiser and the run's length), both in ``plankflux/conf/model/<system>.yaml``;
:func:`configure_optimization` turns them into what Lightning's
``configure_optimizers`` returns. Paper A's member uses AdamW and no schedule;
Paper B's CLIP uses SGD with :func:`warmup_cosine` (linear warm-up from 1 % over 5
epochs, then cosine to 1e-5) and DINO uses AdamW with :func:`warmup_cosine` from 0
plus its own weight-decay, teacher-momentum and teacher-temperature schedules
(``docs/paper_b.md``, "Optimisation" and "DINO baseline").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


def cosine_schedule(step: int, total: int, start: float, end: float) -> float:
    """``start`` at ``step = 0`` to ``end`` at ``step = total`` along half a cosine
    (clamped outside ``[0, total]``)."""
    progress = min(1.0, max(0.0, step / max(1, total)))
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_cosine_factor(
    step: int, total: int, warmup: int, start_factor: float, floor: float
) -> float:
    """The lr multiplier at optimiser step ``step`` of ``total``: linear from
    ``start_factor`` to 1 over ``warmup`` steps, then half a cosine from 1 to ``floor``."""
    if step < warmup:
        return start_factor + (1 - start_factor) * step / warmup
    return cosine_schedule(step - warmup, total - warmup, 1.0, floor)


def warmup_steps(total_steps: int, max_epochs: int, warmup_epochs: float) -> int:
    """Optimiser steps in ``warmup_epochs`` of a run of ``total_steps`` over
    ``max_epochs`` epochs; at most ``total_steps - 1``, so the cosine part has a step."""
    if total_steps <= 1:
        return 0
    return int(min(total_steps - 1, warmup_epochs * total_steps // max(1, max_epochs)))


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    max_epochs: int,
    warmup_epochs: float = 5,
    start_factor: float = 0.01,
    min_lr: float = 1e-5,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step schedule: warm-up over ``warmup_epochs`` from ``start_factor`` × lr,
    then cosine to ``min_lr`` (relative to the first parameter group's lr)."""
    warmup = warmup_steps(total_steps, max_epochs, warmup_epochs)
    floor = min_lr / optimizer.param_groups[0]["lr"]
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: warmup_cosine_factor(step, total_steps, warmup, start_factor, floor),
    )


def decay_param_groups(
    params: Iterable[nn.Parameter], weight_decay: float
) -> list[dict[str, object]]:
    """Two AdamW groups: weights (``ndim > 1``) with ``weight_decay``; biases and norm
    scales without, as DINO and most vision codebases do. Frozen parameters left out."""
    decay, no_decay = [], []
    for p in params:
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def configure_optimization(
    params, optimizer: OptimizerFactory, scheduler: SchedulerFactory | None, trainer
) -> torch.optim.Optimizer | dict:
    """What a LightningModule's ``configure_optimizers`` returns: the optimiser, with
    its scheduler stepped every optimiser step when there is one. ``trainer`` gives the
    run's length (``estimated_stepping_batches``, ``max_epochs``)."""
    built = optimizer(params)
    if scheduler is None:
        return built
    total_steps = max(1, int(trainer.estimated_stepping_batches))
    schedule = scheduler(built, total_steps=total_steps, max_epochs=max(1, trainer.max_epochs or 1))
    return {"optimizer": built, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def teacher_momentum(step: int, total: int, base: float = 0.996) -> float:
    """DINO's EMA momentum at optimiser step ``step`` of ``total``: cosine ``base`` → 1."""
    return cosine_schedule(step, total, base, 1.0)


def teacher_temperature(epoch: int, start: float, end: float, warmup_epochs: int) -> float:
    """DINO's ``linspace(start, end, warmup_epochs)`` indexed by epoch, then ``end``."""
    if epoch >= warmup_epochs - 1:
        return end
    return start + (end - start) * epoch / (warmup_epochs - 1)
