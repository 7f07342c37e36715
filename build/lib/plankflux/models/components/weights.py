"""Pretrained weights from local files, loaded without running pickled code.

The towers build their architectures; this module only reads state dicts from disk
(hub downloads stay with the towers: torchvision's and timm's own code paths).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from torch import Tensor

from plankflux.errors import MissingFileError, PlankfluxError


def read_state_dict(path: str | os.PathLike, hint: str = "") -> dict[str, Tensor]:
    """A state dict from ``path``: a bare one, or the ``state_dict`` / ``model`` entry of
    a Lightning or training-script checkpoint, with DDP's ``module.`` prefix removed.

    Args:
        hint: words for the missing-file message, e.g. ``"use pretrained=timm or false"``.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"weights file not found: {path}" + (f" ({hint})" if hint else ""))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise PlankfluxError(f"{path}: not a PyTorch weights file ({err})") from err
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise PlankfluxError(f"{path} does not hold a state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}
