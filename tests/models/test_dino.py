"""The DINO baseline's parts: head, schedules, teacher EMA, one training step, multi-crop."""

from __future__ import annotations

import copy
from functools import partial

import numpy as np
import pytest
import torch
from lightning import Callback, Trainer
from torch.utils.data import DataLoader, default_collate

from plankflux.data.cytosense_transforms import PairTransform
from plankflux.data.multicrop import MultiCropTransform
from plankflux.datamodules.cytosense import CytoSenseDataModule
from plankflux.models.components.dino_head import DINOHead
from plankflux.models.dino import DINOModule
from plankflux.optim.schedules import (
    cosine_schedule,
    teacher_momentum,
    teacher_temperature,
    warmup_cosine,
)
from plankflux.synthetic.cytosense import generate_cytosense

TINY = dict(out_dim=32, hidden_dim=16, bottleneck_dim=8)


def _module(tower=None, **kwargs) -> DINOModule:
    torch.manual_seed(0)
    return DINOModule(tower or {"name": "tiny_cnn", "width": 16}, **{**TINY, **kwargs})


def _batch(n=4, sizes=(32, 32, 16, 16, 16), seed=0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {
        "crops": [torch.rand(n, 1, s, s, generator=gen) * 2 - 1 for s in sizes],
        "image": torch.rand(n, 1, 32, 32, generator=gen) * 2 - 1,
        "index": torch.arange(n),
        "label": torch.arange(n) % 2,
    }


class Batches(torch.utils.data.Dataset):
    def __init__(self, n: int):
        # One sample per item, as a Dataset gives them (the collate makes the batch).
        batches = [_batch(1, seed=i) for i in range(n)]
        self.items = [
            {k: [c[0] for c in v] if k == "crops" else v[0] for k, v in b.items()} for b in batches
        ]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def _trainer(**kwargs) -> Trainer:
    quiet = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    return Trainer(
        accelerator="cpu", enable_model_summary=False, limit_val_batches=0, **quiet, **kwargs
    )


# ------------------------------------------------------------------ head


@pytest.mark.parametrize("norm_last_layer", [True, False])
def test_head_maps_to_cosines_with_a_weight_normalised_last_layer(norm_last_layer):
    torch.manual_seed(0)
    head = DINOHead(
        12, out_dim=40, hidden_dim=24, bottleneck_dim=8, norm_last_layer=norm_last_layer
    )
    out = head(torch.randn(5, 12))
    assert out.shape == (5, 40) and torch.isfinite(out).all()
    with torch.no_grad():
        head.last_g.mul_(2.0)  # row norms are |g|: 1 unless the magnitudes are trained
    norms = head.last_weight().norm(dim=1)
    torch.testing.assert_close(norms, torch.full((40,), 2.0))
    assert head.last_g.requires_grad is not norm_last_layer
    with torch.no_grad():
        head.last_g.fill_(1.0)
        # unit bottleneck vector · unit prototypes: every logit is a cosine in [-1, 1]
        assert head(torch.randn(5, 12)).abs().max() <= 1 + 1e-6
        z = torch.nn.functional.normalize(head.mlp(torch.ones(1, 12)), dim=-1)
        expected = z @ torch.nn.functional.normalize(head.last_v, dim=1).T
        torch.testing.assert_close(head(torch.ones(1, 12)), expected)
    assert len(head.mlp) == 5 and DINOHead(12, 40, n_layers=1).mlp[0].out_features == 256
    with pytest.raises(ValueError):
        head(torch.randn(5, 11))


# ------------------------------------------------------------------ schedules


def test_momentum_temperature_and_weight_decay_schedules():
    assert teacher_momentum(0, 1000) == pytest.approx(0.996)
    assert teacher_momentum(500, 1000) == pytest.approx(0.998)
    assert teacher_momentum(1000, 1000) == pytest.approx(1.0)
    # DINO's np.linspace(0.04, 0.07, 30) indexed by epoch, then constant.
    expected = np.linspace(0.04, 0.07, 30)
    for epoch in (0, 1, 14, 29):
        assert teacher_temperature(epoch, 0.04, 0.07, 30) == pytest.approx(expected[epoch])
    assert teacher_temperature(60, 0.04, 0.07, 30) == pytest.approx(0.07)
    assert teacher_temperature(0, 0.04, 0.07, 0) == pytest.approx(0.07)  # no warm-up
    assert cosine_schedule(0, 10, 0.04, 0.4) == pytest.approx(0.04)
    assert cosine_schedule(5, 10, 0.04, 0.4) == pytest.approx(0.22)
    assert cosine_schedule(10, 10, 0.04, 0.4) == pytest.approx(0.4)


class Record(Callback):
    def __init__(self):
        self.lr, self.wd = [], []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.lr.append(optimizer.param_groups[0]["lr"])
        self.wd.append(optimizer.param_groups[0]["weight_decay"])


def test_lr_warms_up_then_follows_a_cosine_and_weight_decay_rises():
    model = _module(
        optimizer=partial(torch.optim.AdamW, lr=1e-3),
        scheduler=partial(warmup_cosine, warmup_epochs=2, start_factor=0.0, min_lr=1e-5),
        teacher_temp_warmup_epochs=3,
    )
    record = Record()
    trainer = _trainer(max_epochs=4, callbacks=[record])
    trainer.fit(model, DataLoader(Batches(4), batch_size=2))  # 2 steps an epoch, 8 in all
    lr = [1e-3 * s / 4 for s in range(4)]  # linear from 0 over 2 epochs = 4 steps
    lr += [cosine_schedule(s, 4, 1e-3, 1e-5) for s in range(4)]
    assert record.lr == pytest.approx(lr)
    assert record.wd == pytest.approx([cosine_schedule(s, 8, 0.04, 0.4) for s in range(8)])
    assert trainer.optimizers[0].param_groups[1]["weight_decay"] == 0.0  # biases, norms
    metrics = trainer.callback_metrics
    assert metrics["train/teacher_temp"].item() == pytest.approx(0.07)  # epoch 3 of warm-up 3


# ------------------------------------------------------------------ EMA and one step


def test_teacher_update_is_the_ema_formula():
    model = _module()
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(torch.randn_like(p))
    before = copy.deepcopy(model.teacher.state_dict())
    model.update_teacher(0.9)
    student = dict(model.student.named_parameters())
    for name, p in model.teacher.named_parameters():
        torch.testing.assert_close(p, 0.9 * before[name] + 0.1 * student[name])
    for name, buffer in model.teacher.named_buffers():  # BatchNorm statistics: its own
        torch.testing.assert_close(buffer, before[name])


def test_every_student_parameter_gets_a_gradient_and_the_teacher_none():
    model = _module()
    loss = model.training_step(_batch(), 0)
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.student.named_parameters():
        if name == "head.last_g":  # fixed at 1 (norm_last_layer)
            assert not p.requires_grad
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert all(not p.requires_grad and p.grad is None for p in model.teacher.parameters())


def test_one_step_moves_the_student_keeps_the_last_layer_and_averages_the_teacher():
    model = _module()
    start = copy.deepcopy(model.student.state_dict())
    trainer = _trainer(max_steps=1)
    trainer.fit(model, DataLoader(Batches(4), batch_size=4))
    after = dict(model.student.named_parameters())
    for name, p in after.items():
        assert torch.isfinite(p).all(), name
    # Epoch 0: the last layer is frozen, the rest has moved (one step at the peak lr).
    assert torch.equal(after["head.last_v"], start["head.last_v"])
    assert not torch.equal(after["head.mlp.0.weight"], start["head.mlp.0.weight"])
    assert not torch.equal(after["backbone.body.0.weight"], start["backbone.body.0.weight"])
    for name, p in model.teacher.named_parameters():  # momentum 0.996 at step 0
        torch.testing.assert_close(p, 0.996 * start[name] + 0.004 * after[name])
    assert model.loss.center.abs().sum() > 0  # the centre moved off zero


def test_gradient_accumulation_moves_the_teacher_once_per_optimiser_step():
    model = _module()
    updates = []
    original = model.update_teacher
    model.update_teacher = lambda m: (updates.append(m), original(m))
    trainer = _trainer(max_epochs=1, accumulate_grad_batches=2)
    trainer.fit(model, DataLoader(Batches(8), batch_size=2))  # 4 batches, 2 steps
    assert trainer.global_step == 2 and len(updates) == 2
    total = 2
    assert updates[0] == pytest.approx(teacher_momentum(0, total, 0.996))
    assert updates[1] == pytest.approx(teacher_momentum(1, total, 0.996))


def test_eval_loss_and_predict_use_the_test_image():
    model = _module().eval()
    batch = _batch()
    centre = model.loss.center.clone()
    with torch.no_grad():
        model.validation_step(batch, 0)
    assert torch.equal(model.loss.center, centre)  # validation leaves the centre alone
    out = model.predict_step(batch, 0)
    assert set(out) == {"index", "label", "image"} and out["image"].shape == (4, 16)
    torch.testing.assert_close(out["image"].norm(dim=1), torch.ones(4))
    expected = model.teacher["backbone"](batch["image"])
    torch.testing.assert_close(out["image"], torch.nn.functional.normalize(expected, dim=1))


def test_a_vit_takes_global_and_local_crops():
    model = _module({"name": "vit_tiny_patch16_224", "img_size": 32}, n_global_crops=2)
    loss = model.training_step(_batch(n=2), 0)
    assert torch.isfinite(loss) and model.student["backbone"].width == 192


# ------------------------------------------------------------------ multi-crop


def _particle(seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(70, 44), dtype=np.uint8)  # 25 rows of scale bar
    profile = rng.gamma(2.0, 50.0, size=(57, 6))
    return image, profile


SIZES = dict(image_size=32, image_pad_size=36, profile_length=32, profile_pad_length=36)


def test_multicrop_gives_globals_then_locals_in_range_and_the_test_inputs():
    image, profile = _particle()
    transform = MultiCropTransform(n_global=2, global_size=32, n_local=6, local_size=16, **SIZES)
    item = transform(image, profile, generator=torch.Generator().manual_seed(0))
    crops = item["crops"]
    assert [c.shape for c in crops] == [(1, 32, 32)] * 2 + [(1, 16, 16)] * 6
    for crop in crops:
        assert crop.dtype == torch.float32 and crop.min() >= -1 and crop.max() <= 1
        assert crop.std() > 0
    assert not torch.equal(crops[0], crops[1])  # two different global views
    test = PairTransform(False, 32, 36, 32, 36)(image, profile)
    assert set(item) == set(test) | {"crops"}
    for key, value in test.items():
        assert torch.equal(item[key], value), key
    torch.testing.assert_close(item["image_size"], torch.tensor([25 + 45.0, 44.0]) / 224)
    again = transform(image, profile, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(crops, again["crops"], strict=True))
    batch = default_collate([item, again, item])
    assert [tuple(c.shape) for c in batch["crops"]] == [(3, 1, 32, 32)] * 2 + [(3, 1, 16, 16)] * 6


def test_datamodule_gives_multicrop_to_the_train_split_only(tmp_path):
    root = generate_cytosense(tmp_path / "lab", "lab", "tiny", seed=0)
    multicrop = dict(n_global=2, global_size=32, n_local=3, local_size=16)
    dm = CytoSenseDataModule(str(root), batch_size=4, multicrop=multicrop, **SIZES)
    dm.setup("fit")
    train = next(iter(dm.train_dataloader()))
    assert [tuple(c.shape) for c in train["crops"]] == [(4, 1, 32, 32)] * 2 + [(4, 1, 16, 16)] * 3
    assert train["image"].shape == (4, 1, 32, 32) and train["profile"].shape == (4, 6, 32)
    val = next(iter(dm.val_dataloader()))
    assert "crops" not in val and val["image"].shape[1:] == (1, 32, 32)
    assert "crops" not in next(iter(dm.predict_dataloader()))
