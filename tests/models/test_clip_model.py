"""The plain CLIP model: the loss's arguments from one batch, the temperature clamp,
and the ContrastiveModule around it (old checkpoints included)."""

from __future__ import annotations

import math

import pytest
import torch

from plankflux.losses import LOSSES
from plankflux.models.components.clip import MAX_LOGIT_SCALE, ImageProfileCLIP
from plankflux.models.contrastive import ContrastiveModule

TOWERS = {"image_tower": {"name": "tiny_cnn", "pretrained": False, "width": 16},
          "profile_tower": {"name": "cnn"}}  # fmt: skip


def _batch(b: int = 4) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "image": torch.randn(b, 1, 32, 32),
        "image_size": torch.rand(b, 2),
        "profile": torch.randn(b, 6, 32),
        "profile_length": torch.rand(b, 1),
    }


def test_forward_gives_the_loss_its_keyword_arguments():
    model = ImageProfileCLIP(**TOWERS, embed_dim=8, init_temperature=0.1, init_bias=-10.0)
    out = model(_batch())
    assert out["image_features"].shape == out["profile_features"].shape == (4, 8)
    assert torch.allclose(out["image_features"].norm(dim=-1), torch.ones(4), atol=1e-5)
    assert out["logit_scale"].item() == pytest.approx(10.0)
    assert out["logit_bias"].item() == -10.0
    loss = LOSSES["siglip"]()(**out)
    loss.backward()
    assert model.logit_bias.grad is not None and model.log_logit_scale.grad is not None


def test_infonce_model_has_no_bias_and_the_scale_is_clamped():
    model = ImageProfileCLIP(**TOWERS, embed_dim=8)
    assert model.logit_bias is None and model(_batch())["logit_bias"] is None
    with torch.no_grad():
        model.log_logit_scale.fill_(10.0)
    model.clamp_logit_scale()
    assert model.log_logit_scale.item() == pytest.approx(math.log(MAX_LOGIT_SCALE))


def test_system_wraps_the_model_and_reads_checkpoints_from_before_it():
    module = ContrastiveModule(**TOWERS, loss="siglip", embed_dim=8).eval()
    assert torch.equal(module(_batch())["image_features"], module.clip(_batch())["image_features"])
    old = {k.removeprefix("clip."): v.clone() for k, v in module.state_dict().items()}
    assert "log_logit_scale" in old and "image_encoder.tower.body.0.weight" in old
    fresh = ContrastiveModule(**TOWERS, loss="siglip", embed_dim=8)
    checkpoint = {"state_dict": old}
    fresh.on_load_checkpoint(checkpoint)
    fresh.load_state_dict(checkpoint["state_dict"])
    assert torch.equal(fresh.clip.log_logit_scale, module.clip.log_logit_scale)
    for name, value in module.clip.image_encoder.state_dict().items():
        assert torch.equal(fresh.clip.image_encoder.state_dict()[name], value), name
