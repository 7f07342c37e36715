"""Contrastive losses for image–profile pre-training (plain nn.Modules, no Lightning).

Both are called as ``loss(image_features, profile_features, logit_scale, logit_bias=None)``
on L2-normalised ``(B, D)`` features, ``logit_scale`` being the multiplier (already
exponentiated), and return a scalar. Under torch.distributed they gather features from
every rank with gradients; see :class:`InfoNCELoss` for the convention.

:class:`DINOLoss` (the image-only DINO baseline) has its own call signature and is not
in ``LOSSES``, which names the image–profile losses a ``ContrastiveModule`` can take.
"""

from plankflux.losses.dino import DINOLoss
from plankflux.losses.infonce import InfoNCELoss
from plankflux.losses.siglip import SigLIPLoss

LOSSES = {"infonce": InfoNCELoss, "siglip": SigLIPLoss}

__all__ = ["LOSSES", "DINOLoss", "InfoNCELoss", "SigLIPLoss"]
