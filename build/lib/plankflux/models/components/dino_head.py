"""The DINO projection head (Caron et al. 2021): MLP → L2-normalise → weight-normalised layer.

``(B, in_dim) → (B, out_dim)`` logits, read by :class:`~plankflux.losses.dino.DINOLoss`::

    Linear(in_dim, hidden) → GELU → [Linear(hidden, hidden) → GELU] × (n_layers − 2)
    → Linear(hidden, bottleneck) → L2-normalise → x · Wᵀ,  W = g · V / ‖V‖ (per row)

DINO's defaults: 3 layers, hidden 2048, bottleneck 256, ``out_dim`` 65536, no bias in
the last layer. The last layer is weight-normalised (Salimans & Kingma 2016) with the
magnitudes ``g`` fixed at 1 when ``norm_last_layer`` (DINO's default, more stable): each
output is then a cosine between the bottleneck vector and a unit prototype, bounded in
[−1, 1], so only the temperatures set how peaked the softmax can get.

Weight normalisation is written out here (``last_weight``) instead of using
``torch.nn.utils`` hooks, so that ``copy.deepcopy`` (the teacher) and the EMA over
``parameters()`` see two plain parameters, ``last_v`` and ``last_g``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DINOHead(nn.Module):
    """Args:
    in_dim: backbone feature width (the tower's ``width``).
    out_dim: ``K``, the number of prototypes (logits).
    hidden_dim, bottleneck_dim, n_layers: the MLP (``n_layers >= 1`` linear layers;
        one layer maps ``in_dim`` straight to the bottleneck).
    norm_last_layer: fix the last layer's row norms at 1 (``last_g`` not trained).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 65536,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        n_layers: int = 3,
        norm_last_layer: bool = True,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        widths = [in_dim] + [hidden_dim] * (n_layers - 1) + [bottleneck_dim]
        layers: list[nn.Module] = []
        for i in range(n_layers):
            layers.append(nn.Linear(widths[i], widths[i + 1]))
            if i < n_layers - 1:
                layers.append(nn.GELU())
        self.mlp = nn.Sequential(*layers)
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):  # DINO's (ViT-style) initialisation
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        # V starts as nn.Linear's default (Kaiming-uniform); only its direction matters.
        last_v = torch.empty(out_dim, bottleneck_dim)
        nn.init.kaiming_uniform_(last_v, a=math.sqrt(5))
        self.last_v = nn.Parameter(last_v)
        self.last_g = nn.Parameter(torch.ones(out_dim), requires_grad=not norm_last_layer)
        self.norm_last_layer = bool(norm_last_layer)

    def last_weight(self) -> Tensor:
        """``(out_dim, bottleneck_dim)``: ``g · V / ‖V‖`` with row norms ``|g|``."""
        return self.last_g[:, None] * F.normalize(self.last_v, dim=1)

    def last_layer_parameters(self) -> list[nn.Parameter]:
        """The parameters DINO freezes in the first epoch (the prototypes)."""
        return [self.last_v, self.last_g]

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_dim) -> (B, out_dim)`` logits."""
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"expected features (B, {self.in_dim}), got {tuple(x.shape)}")
        z = F.normalize(self.mlp(x), dim=-1)  # (B, bottleneck) on the unit sphere
        return F.linear(z, self.last_weight())
