"""Ensembles of trained members: finding, loading and predicting with them."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from lightning import LightningModule
from torch import nn

from plankflux.models.checkpoints import (
    DATA_SIGNATURE,
    data_signature,
    find_member_checkpoints,
    load_member,
)
from plankflux.models.components.member import as_memory_format, speed_up


class EnsemblePredictor(LightningModule):
    """Predicts a dataset with every member in one pass: each batch goes through all
    members in turn, so the data are decoded once.

    ``predict_step`` returns ``{"row": (B,), "probs": (M, B, C)}`` softmax scores of
    the M members (``channels_last``, ``compile``: as for
    :class:`~plankflux.models.classifier.ParticleClassifier`). Members must agree on
    classes, image size, resize mode and normalisation, and so must the data they
    predict: anything else is refused.
    """

    def __init__(
        self,
        checkpoints: str | os.PathLike | Sequence[str | os.PathLike],
        channels_last: bool = False,
        compile: bool = False,
    ):
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
        self.members = nn.ModuleList(
            speed_up(member.net, channels_last, compile) for member in members
        )
        self.channels_last = bool(channels_last)

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
        images = as_memory_format(images, self.channels_last)
        return torch.stack([member(images).softmax(dim=-1) for member in self.members])

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        return {"row": batch["row"], "probs": self(batch["image"])}


def _differences(data: dict, trained: dict) -> str:
    return "; ".join(
        f"{key}: data has {data[key]!r}, checkpoint has {trained[key]!r}"
        for key in DATA_SIGNATURE
        if data[key] != trained[key]
    )
