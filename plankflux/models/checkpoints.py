"""Trained checkpoints on disk: finding them and loading them safely.

Every checkpoint a run wrote is read here, with ``weights_only=True`` so that no
pickled code in a file can run. (Pretrained backbone weights are loaded by the towers
themselves, :mod:`plankflux.models.components`.)
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from plankflux.errors import PlankfluxError
from plankflux.layout import BEST_CHECKPOINT, CHECKPOINT_DIR
from plankflux.models.classifier import ParticleClassifier

# Hyper-parameters that must match between members, and between members and the data.
DATA_SIGNATURE = ("class_names", "image_size", "resize_mode", "normalize")


def read_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """The dict of a Lightning checkpoint file, loaded without running pickled code."""
    if not Path(path).is_file():
        raise PlankfluxError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        # torch's own message suggests weights_only=False, which we never do.
        raise PlankfluxError(f"{path}: not a checkpoint written by plankflux train") from err


def find_member_checkpoints(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Member checkpoints from a run/multirun folder (every ``checkpoints/best.ckpt``
    below it, in natural order of their folders) or from an explicit list of files."""
    if isinstance(source, str | os.PathLike):
        root = Path(source)
        if root.is_file():
            return [root]
        found = sorted(
            root.glob(f"**/{CHECKPOINT_DIR}/{BEST_CHECKPOINT}"),
            key=lambda p: [int(t) if t.isdigit() else t for t in p.parts],
        )
        if not found:
            raise PlankfluxError(
                f"no {CHECKPOINT_DIR}/{BEST_CHECKPOINT} found under {root}: give a run or "
                "multirun folder of plankflux train, or checkpoint files"
            )
        return found
    paths = [Path(p) for p in source]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise PlankfluxError(f"checkpoint(s) not found: {missing}")
    if not paths:
        raise PlankfluxError("the list of member checkpoints is empty")
    return paths


def load_member(path: str | os.PathLike) -> ParticleClassifier:
    """Load one member checkpoint safely (``weights_only=True``: no pickled code runs)."""
    checkpoint = read_checkpoint(path)
    hparams = dict(checkpoint["hyper_parameters"])
    hparams.pop("weights", None)
    with warnings.catch_warnings():  # random init is overwritten by the checkpoint at once
        warnings.simplefilter("ignore", UserWarning)
        member = ParticleClassifier(weights=None, **hparams)
    member.load_state_dict(checkpoint["state_dict"])
    member.checkpoint_path = str(path)
    return member.eval()


def data_signature(hparams) -> dict:
    return {
        key: (list(hparams[key]) if key == "class_names" else hparams[key])
        for key in DATA_SIGNATURE
    }


def load_trained_system(checkpoint: str | os.PathLike, map_location="cpu"):
    """A CLIP or DINO system from a ``plankflux train`` checkpoint, in eval mode.

    Returns ``(module, checkpoint dict)``; the dict keeps the training data's settings
    (``datamodule_hyper_parameters``). The towers are rebuilt without their pretrained
    weights (no download): the checkpoint holds the trained ones.
    """
    from plankflux.models.contrastive import ContrastiveModule
    from plankflux.models.dino import DINOModule

    state = read_checkpoint(checkpoint, map_location)
    hparams = state.get("hyper_parameters", {})
    if "image_tower" not in hparams:
        raise PlankfluxError(f"{checkpoint}: not a checkpoint of a CLIP or DINO model")
    system = ContrastiveModule if "profile_tower" in hparams else DINOModule
    towers = {
        key: {**hparams[key], "pretrained": False}
        for key in ("image_tower", "profile_tower")
        if key in hparams and "pretrained" in hparams[key]
    }
    module = system.load_from_checkpoint(
        checkpoint, map_location=map_location, weights_only=True, **towers
    )
    return module.eval(), state
