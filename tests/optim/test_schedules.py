"""The shared optimiser pieces, against values computed by hand."""

from __future__ import annotations

import math
from functools import partial
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from plankflux.optim.schedules import (
    configure_optimization,
    decay_param_groups,
    warmup_cosine,
    warmup_cosine_factor,
    warmup_steps,
)


def test_warmup_then_cosine_by_hand():
    # Paper B's CLIP: from 1 % over 4 steps, then cosine to floor 0.002 over 6 steps.
    values = [warmup_cosine_factor(s, 10, 4, 0.01, 0.002) for s in range(11)]
    assert values[:4] == pytest.approx([0.01, 0.2575, 0.505, 0.7525])
    assert values[4] == pytest.approx(1.0)
    assert values[7] == pytest.approx(0.002 + 0.998 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert values[10] == pytest.approx(0.002)


def test_warmup_steps_from_epochs():
    assert warmup_steps(100, 10, 5) == 50
    assert warmup_steps(100, 10, 20) == 99  # the cosine part keeps one step
    assert warmup_steps(1, 1, 5) == 0


def test_warmup_cosine_scheduler_follows_the_factor():
    weight = nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([weight], lr=0.005)
    schedule = warmup_cosine(optimizer, total_steps=10, max_epochs=5, warmup_epochs=2,
                             start_factor=0.01, min_lr=1e-5)  # fmt: skip
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    floor = 1e-5 / 0.005
    assert lrs == pytest.approx([0.005 * warmup_cosine_factor(s, 10, 4, 0.01, floor)
                                 for s in range(10)])  # fmt: skip


def test_decay_groups_leave_biases_and_frozen_parameters_out():
    net = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    net[1].weight.requires_grad_(False)
    decay, no_decay = decay_param_groups(net.parameters(), 0.04)
    assert decay["weight_decay"] == 0.04 and no_decay["weight_decay"] == 0.0
    assert [p.shape for p in decay["params"]] == [torch.Size([4, 3])]
    assert [p.shape for p in no_decay["params"]] == [torch.Size([4]), torch.Size([4])]


def test_configure_optimization_with_and_without_a_schedule():
    params = [nn.Parameter(torch.zeros(1))]
    adamw = partial(torch.optim.AdamW, lr=1e-3, weight_decay=1e-2)
    plain = configure_optimization(params, adamw, None, trainer=None)  # no run length needed
    assert isinstance(plain, torch.optim.AdamW) and plain.defaults["weight_decay"] == 1e-2
    trainer = SimpleNamespace(estimated_stepping_batches=20, max_epochs=4)
    scheduled = configure_optimization(params, adamw, partial(warmup_cosine, warmup_epochs=1),
                                       trainer)  # fmt: skip
    assert scheduled["lr_scheduler"]["interval"] == "step"
    assert scheduled["optimizer"].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.01)  # step 0
