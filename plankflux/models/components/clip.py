"""ImageProfileCLIP: the plain CLIP model of Paper B (no Lightning).

Two towers, each followed by a projection into the shared space (with the size
scalars appended first), plus the learnable temperature (and SigLIP's bias). Like
open_clip's models, ``forward`` returns a dict whose keys are the loss's keyword
arguments, so a step is ``loss(**model(batch))``. The method is described in
``docs/paper_b.md`` ("Encoders", "Losses").
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from plankflux.models.components.image_towers import build_image_tower
from plankflux.models.components.profile_towers import build_profile_tower
from plankflux.models.components.projection import ModalityEncoder, ProjectionHead

MAX_LOGIT_SCALE = 100.0  # CLIP's clamp: the temperature never goes below 0.01


class ImageProfileCLIP(nn.Module):
    """Image and profile encoders into one ``embed_dim`` space.

    Args:
        image_tower: ``{"name": ..., **kwargs}`` for ``build_image_tower``.
        profile_tower: ``{"name": ..., **kwargs}`` for ``build_profile_tower``.
        embed_dim, dropout: the projections (512 and 0.2 in Paper B).
        init_temperature: the starting temperature (CLIP's 0.07; SigLIP's 0.1).
        init_bias: SigLIP's learnable logit bias (-10), or ``None`` for InfoNCE.
    """

    def __init__(
        self,
        image_tower: Mapping,
        profile_tower: Mapping,
        embed_dim: int = 512,
        dropout: float = 0.2,
        init_temperature: float = 0.07,
        init_bias: float | None = None,
    ):
        super().__init__()
        image = build_image_tower(**dict(image_tower))
        profile = build_profile_tower(**dict(profile_tower))
        # Size scalars are appended before projection: image (H, W) -> 2, profile L -> 1.
        self.image_encoder = ModalityEncoder(
            image, ProjectionHead(image.width, 2, embed_dim, dropout)
        )
        self.profile_encoder = ModalityEncoder(
            profile, ProjectionHead(profile.width, 1, embed_dim, dropout)
        )
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(1 / init_temperature)))
        self.logit_bias = nn.Parameter(torch.tensor(init_bias)) if init_bias is not None else None

    def encode(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Image ``(B, 1, S, S)`` + ``image_size`` ``(B, 2)`` and profile ``(B, 6, T)`` +
        ``profile_length`` ``(B, 1)`` -> embeddings ``(B, D)`` each, L2-normalised."""
        image = self.image_encoder(batch["image"], batch["image_size"])
        profile = self.profile_encoder(batch["profile"], batch["profile_length"])
        return image, profile

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor | None]:
        """The loss's keyword arguments: ``image_features`` and ``profile_features``
        ``(B, D)``, ``logit_scale`` (scalar, 1 / temperature), ``logit_bias``."""
        image, profile = self.encode(batch)
        return {
            "image_features": image,
            "profile_features": profile,
            "logit_scale": self.log_logit_scale.exp(),
            "logit_bias": self.logit_bias,
        }

    @torch.no_grad()
    def clamp_logit_scale(self) -> None:
        """Keep the temperature in [0.01, 1] (open_clip clamps after every step)."""
        self.log_logit_scale.clamp_(0, math.log(MAX_LOGIT_SCALE))
