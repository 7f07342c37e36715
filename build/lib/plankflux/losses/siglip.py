"""Sigmoid (SigLIP) pairwise loss between image and profile embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from plankflux.losses.infonce import check_feature_pair, upcast_half
from plankflux.utils.distributed import global_batch


class SigLIPLoss(nn.Module):
    """``−(1/N) Σ_{i,j} log σ(z_ij (t · x_i·y_j + b))``, ``z`` = +1 on the diagonal, −1 off.

    ``x_i`` image and ``y_j`` profile features (L2-normalised), ``t`` the multiplier
    (``exp`` of the learnable log-temperature), ``b`` the learnable bias (the system
    initialises it at −10); every one of the ``N²`` pairs counts, the sum is divided
    by ``N`` (Zhai et al., 2023).

    Distributed convention (``gather=True``, more than one process): only the profile
    features need gathering — rank ``r`` scores its own ``B_r`` image rows against all
    ``N`` profiles, so every pair is scored on exactly one rank. Positives are at
    column ``offset_r + i``; the sum is divided by ``N / world`` (``= B``). The mean over
    ranks of the returned values equals the single-process loss on the concatenated
    batch and, with gradients flowing back through the gather, DDP's averaged gradients
    equal the single-process ones (see :class:`~plankflux.losses.InfoNCELoss`).
    """

    def __init__(self, gather: bool = True) -> None:
        super().__init__()
        self.gather = gather

    def forward(
        self,
        image_features: Tensor,
        profile_features: Tensor,
        logit_scale: Tensor | float,
        logit_bias: Tensor | float | None = None,
    ) -> Tensor:
        """Scalar loss.

        Args:
            image_features: ``(B, D)`` L2-normalised image embeddings.
            profile_features: ``(B, D)`` L2-normalised profile embeddings, same order.
            logit_scale: scalar multiplier ``t`` (already exponentiated).
            logit_bias: scalar bias ``b``; ``None`` means 0.
        """
        check_feature_pair(image_features, profile_features)
        batch = global_batch(len(image_features), image_features.device, self.gather)
        all_profile = batch.gather(profile_features)  # (N, D)
        with torch.autocast(image_features.device.type, enabled=False):
            logits = logit_scale * upcast_half(image_features) @ upcast_half(all_profile).T
            if logit_bias is not None:
                logits = logits + logit_bias  # (B, N)
            signs = -torch.ones_like(logits)
            rows = torch.arange(len(image_features), device=logits.device)
            signs[rows, rows + batch.offset] = 1.0  # z = +1 for the positive pairs
            loss = -F.logsigmoid(signs * logits).sum()
        return loss / batch.mean_batch
