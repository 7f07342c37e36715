"""Symmetric InfoNCE (CLIP) loss between image and profile embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from plankflux.utils.distributed import global_batch


def check_feature_pair(image_features: Tensor, profile_features: Tensor) -> None:
    """ValueError unless both are ``(B, D)`` of one shape with ``B > 0``."""
    if image_features.dim() != 2 or image_features.shape != profile_features.shape:
        raise ValueError(
            "expected image and profile features of one shape (B, D), got "
            f"{tuple(image_features.shape)} and {tuple(profile_features.shape)}"
        )
    if len(image_features) == 0:
        raise ValueError("empty batch")


def upcast_half(x: Tensor) -> Tensor:
    """16-bit features → float32 for the logits (a scale of ~100 times a cosine loses
    digits in half precision); other dtypes unchanged. Callers also switch autocast off
    around the logits, or it would cast the matmul back to 16 bits."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class InfoNCELoss(nn.Module):
    """Mean of the image→profile and profile→image cross-entropies over cosine logits.

    For a batch of ``N`` pairs with L2-normalised features ``x_i`` (image) and ``y_j``
    (profile) and multiplier ``t`` (``exp`` of the learnable log-temperature)::

        logits_ij = t · x_i·y_j
        L = ½ [ (1/N) Σ_i CE(logits_i,:, i) + (1/N) Σ_j CE(logits_:,j, j) ]

    Distributed convention (``gather=True`` and torch.distributed initialised with more
    than one process): both feature sets are gathered from every rank with gradients
    (:func:`plankflux.utils.distributed.gather_with_grad`); rank ``r`` computes the rows
    of its own ``B_r`` samples in both directions against all ``N = ΣB_s`` columns, the
    target of local row ``i`` being column ``offset_r + i`` (``offset_r = Σ_{s<r} B_s``,
    ``= r·B`` with equal shards), and divides by ``N / world`` (``= B``), not ``B_r``.
    Hence

    * the **mean over ranks** of the returned values (Lightning's ``sync_dist=True``)
      equals the single-process loss on the concatenated batch, and
    * DDP's gradient averaging yields exactly the single-process gradient: each rank's
      backward receives ``Σ_s ∂L_s/∂f_r = world · ∂L/∂f_r`` through the gather, and DDP
      divides by ``world``.

    Each rank computes a ``B_r × N`` block, never the ``N × N`` matrix.
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
            profile_features: ``(B, D)`` L2-normalised profile embeddings of the same
                particles, in the same order.
            logit_scale: scalar multiplier ``t`` (already exponentiated).
            logit_bias: must be ``None`` (InfoNCE has no bias; accepted so that both
                losses share one call signature).
        """
        if logit_bias is not None:
            raise ValueError("InfoNCELoss takes no logit_bias (that is SigLIP's); pass None")
        check_feature_pair(image_features, profile_features)
        batch = global_batch(len(image_features), image_features.device, self.gather)
        all_image = batch.gather(image_features)  # (N, D)
        all_profile = batch.gather(profile_features)  # (N, D)
        targets = torch.arange(
            batch.offset, batch.offset + len(image_features), device=image_features.device
        )
        with torch.autocast(image_features.device.type, enabled=False):
            image, profile = upcast_half(image_features), upcast_half(profile_features)
            logits_image = logit_scale * image @ upcast_half(all_profile).T  # (B, N)
            logits_profile = logit_scale * profile @ upcast_half(all_image).T  # (B, N)
            loss = F.cross_entropy(logits_image, targets, reduction="sum") + F.cross_entropy(
                logits_profile, targets, reduction="sum"
            )
        return 0.5 * loss / batch.mean_batch
