"""Projection into the shared 512-d space, with the size scalars of docs/paper_b.md.

The towers see resized inputs (images padded to 224, profiles resampled to 224), so the
particle's raw size is lost; it comes back as scalars appended to the tower's features
before the projection: image ``(H, W)`` of the raw image / 224, profile raw length
``L`` / 224.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SIZE_SCALE = 224.0
IMAGE_SCALARS = 2  # (H, W) / 224
PROFILE_SCALARS = 1  # L / 224


def image_size_scalars(heights: Tensor, widths: Tensor) -> Tensor:
    """Raw image heights and widths ``(B,)`` → ``(B, 2)`` float scalars ``(H, W) / 224``."""
    return torch.stack([heights, widths], dim=1).float() / SIZE_SCALE


def profile_length_scalars(lengths: Tensor) -> Tensor:
    """Raw profile lengths ``(B,)`` → ``(B, 1)`` float scalars ``L / 224``."""
    return lengths.float()[:, None] / SIZE_SCALE


class ProjectionHead(nn.Module):
    """``[features, scalars]`` → dropout → Linear (no bias) → L2-normalise.

    ``(B, in_width)`` and ``(B, n_scalars)`` → ``(B, dim)`` with unit norm.
    """

    def __init__(
        self, in_width: int, n_scalars: int = 0, dim: int = 512, dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.in_width = in_width
        self.n_scalars = n_scalars
        self.dim = dim
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(in_width + n_scalars, dim, bias=False)

    def forward(self, features: Tensor, scalars: Tensor | None = None) -> Tensor:
        if features.dim() != 2 or features.shape[1] != self.in_width:
            raise ValueError(f"expected features (B, {self.in_width}), got {tuple(features.shape)}")
        if self.n_scalars:
            if scalars is None or scalars.shape != (features.shape[0], self.n_scalars):
                got = None if scalars is None else tuple(scalars.shape)
                raise ValueError(f"expected scalars (B, {self.n_scalars}), got {got}")
            features = torch.cat([features, scalars.to(features.dtype)], dim=1)
        elif scalars is not None and scalars.numel():
            raise ValueError("this head takes no size scalars (n_scalars=0)")
        return F.normalize(self.proj(self.dropout(features)), dim=-1)


class ModalityEncoder(nn.Module):
    """A tower followed by its projection head: one modality's encoder.

    ``forward(x, scalars=None, lengths=None) -> (B, dim)`` L2-normalised; ``lengths``
    is passed to the tower only when given (profile towers accept it, image towers not).
    """

    def __init__(self, tower: nn.Module, head: ProjectionHead) -> None:
        super().__init__()
        if int(tower.width) != head.in_width:
            raise ValueError(f"tower width {tower.width} != head in_width {head.in_width}")
        self.tower = tower
        self.head = head
        self.dim = head.dim

    def forward(
        self, x: Tensor, scalars: Tensor | None = None, lengths: Tensor | None = None
    ) -> Tensor:
        if lengths is None:
            features = self.tower.forward_features(x)
        else:
            features = self.tower.forward_features(x, lengths)
        return self.head(features, scalars)
