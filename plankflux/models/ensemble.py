"""Ensembles of trained members: finding, loading and predicting with them."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from lightning import LightningModule
from torch import nn

from plankflux.models.classifier import ParticleClassifier

BEST_CHECKPOINT = "best.ckpt"
# Hyper-parameters that must match between members, and between members and the data.
DATA_SIGNATURE = ("class_names", "image_size", "resize_mode", "normalize")


def find_member_checkpoints(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Member checkpoints from a run/multirun folder (every ``checkpoints/best.ckpt``
    below it, in natural order of their folders) or from an explicit list of files."""
    if isinstance(source, str | os.PathLike):
        root = Path(source)
        if root.is_file():
            return [root]
        found = sorted(
            root.glob(f"**/checkpoints/{BEST_CHECKPOINT}"),
            key=lambda p: [int(t) if t.isdigit() else t for t in p.parts],
        )
        if not found:
            raise FileNotFoundError(f"no checkpoints/{BEST_CHECKPOINT} found under {root}")
        return found
    paths = [Path(p) for p in source]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"checkpoint(s) not found: {missing}")
    if not paths:
        raise ValueError("the list of member checkpoints is empty")
    return paths


def load_member(path: str | os.PathLike) -> ParticleClassifier:
    """Load one member checkpoint safely (``weights_only=True``: no pickled code runs)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
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


class EnsemblePredictor(LightningModule):
    """Predicts a dataset with every member in one pass: each batch goes through all
    members in turn, so the data are decoded once.

    ``predict_step`` returns ``{"row": (B,), "probs": (M, B, C)}`` softmax scores of
    the M members. Members must agree on classes, image size, resize mode and
    normalisation, and so must the data they predict: anything else is refused.
    """

    def __init__(self, checkpoints: str | os.PathLike | Sequence[str | os.PathLike]):
        super().__init__()
        paths = find_member_checkpoints(checkpoints)
        members = [load_member(p) for p in paths]
        reference = data_signature(members[0].hparams)
        for path, member in zip(paths[1:], members[1:], strict=True):
            signature = data_signature(member.hparams)
            if signature != reference:
                raise ValueError(
                    f"member {path} was trained on other data than {paths[0]}: "
                    f"{_differences(signature, reference)}"
                )
        self.checkpoint_paths = [str(p) for p in paths]
        self.signature = reference
        self.class_names = reference["class_names"]
        self.members = nn.ModuleList(member.net for member in members)

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            return
        data = {
            "class_names": list(datamodule.class_names),
            **{k: datamodule.hparams[k] for k in DATA_SIGNATURE if k != "class_names"},
        }
        if data != self.signature:
            raise ValueError(
                f"the members ({self.checkpoint_paths[0]}, ...) were trained for other data "
                f"than {datamodule.root}: {_differences(data, self.signature)}"
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> softmax scores (M, B, C)."""
        return torch.stack([member(images).softmax(dim=-1) for member in self.members])

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        return {"row": batch["row"], "probs": self(batch["image"])}


def _differences(data: dict, trained: dict) -> str:
    return "; ".join(
        f"{key}: data has {data[key]!r}, checkpoint has {trained[key]!r}"
        for key in DATA_SIGNATURE
        if data[key] != trained[key]
    )
