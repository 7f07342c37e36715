"""ResNet-18 ensemble member network (plain nn.Module, no Lightning)."""

from __future__ import annotations

import os
import warnings
from urllib.error import URLError

from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

from plankflux.models.components.weights import read_state_dict

NO_WEIGHTS_WARNING = (
    "ResNet-18 starts from random weights (weights=none): results will NOT match the paper, "
    "which fine-tunes ImageNet-pretrained weights. Use weights=imagenet (needs internet once) "
    "or weights=/path/to/resnet18.pth."
)


def build_resnet18(num_classes: int, weights: str | os.PathLike | None = "imagenet") -> nn.Module:
    """torchvision ResNet-18 with a fresh ``num_classes`` head.

    Input ``(B, 3, H, W)`` float, output logits ``(B, num_classes)``.

    Args:
        weights: ``"imagenet"`` (torchvision's IMAGENET1K_V1, downloaded into the torch
            hub cache on first use), a path to a local ``.pth``/``.pt`` state dict of a
            torchvision ResNet-18 (its ``fc`` layer is ignored), or ``"none"``/``None``
            for random initialisation (with a loud warning).
    """
    if weights is None or str(weights).lower() == "none":
        warnings.warn(NO_WEIGHTS_WARNING, UserWarning, stacklevel=2)
        net = resnet18(weights=None)
    elif str(weights).lower() == "imagenet":
        try:
            net = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)
        except (OSError, URLError) as err:  # offline: the hub is unreachable
            raise RuntimeError(
                f"could not fetch torchvision's ImageNet ResNet-18 weights ({err}). Download "
                f"{ResNet18_Weights.IMAGENET1K_V1.url} on a machine with internet and pass "
                "model.weights=/path/to/file, or model.weights=none for random initialisation."
            ) from err
    else:
        net = resnet18(weights=None)
        load_backbone_state(net, weights)
    net.fc = nn.Linear(net.fc.in_features, num_classes)
    return net


def load_backbone_state(net: nn.Module, path: str | os.PathLike) -> None:
    """Load a local ResNet-18 state dict (no pickled code: ``weights_only=True``).

    Accepts a bare state dict or a Lightning checkpoint (``state_dict`` with a
    ``net.`` prefix). The classification head is skipped; every other weight must match.
    """
    state = read_state_dict(path, "use weights=imagenet or none")
    state = {k.removeprefix("net."): v for k, v in state.items()}  # a plankflux checkpoint
    backbone = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = net.load_state_dict(backbone, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise ValueError(
            f"{path} is not a ResNet-18 state dict: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
