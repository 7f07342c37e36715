"""Paper A's pre-processing on whole uint8 batches, on the model's device.

The per-item path (:class:`~plankflux.data.transforms.ImagePipeline`) converts,
augments and normalises every image in the DataLoader, in Python, one at a time; on a
GPU that per-item work, not the network, bounds a training step. With
``data.device_transforms=true`` the DataLoader yields the decoded images as one
``(B, S, S, 3)`` uint8 tensor per batch (a single indexing of the decoded-image cache)
and :class:`BatchImageTransform` does the rest on the device the batch was moved to:

    (B, S, S, 3) uint8 --NCHW--> --augment (train)--> --to float / 255-->
        --normalise (optional)--> (B, 3, S, S) float32

The augmentation is the same random rotation by quarter turns and flips with the same
probabilities (:func:`~plankflux.data.transforms.draw_dihedral`); the parameters are drawn
on the CPU from torch's global generator (so runs are reproducible and a CPU run and a
GPU run draw the same), and given the same parameters the pixels equal the per-item
path's exactly (tests/data/test_batch_transforms.py). Rotations and flips are
permutations of pixels, so they run on the uint8 batch, before the float conversion,
moving a quarter of the bytes (the same goes for the transposition to NCHW).
"""

from __future__ import annotations

import torch

from plankflux.data.transforms import MeanStd, dihedral, draw_dihedral


def augment_batch_(images: torch.Tensor, k: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Rotate and flip each image of ``images`` (B, C, H, W) in place by its own parameters.

    ``k`` (B,) quarter turns, ``flips`` (B, 2) bool (horizontal, vertical), both on the
    CPU. Images sharing parameters are transformed together: at most 15 groups (the
    untouched ones cost nothing), so a batch costs a few indexing kernels whatever its
    size. Returns ``images``.
    """
    codes = k * 4 + flips[:, 0].long() * 2 + flips[:, 1].long()
    for code in torch.unique(codes).tolist():
        if code == 0:
            continue
        members = torch.nonzero(codes == code).squeeze(1).to(images.device, non_blocking=True)
        # images[members] is a copy, so writing back into images is safe.
        images[members] = dihedral(images[members], code // 4, bool(code & 2), bool(code & 1))
    return images


class BatchImageTransform:
    """``(B, S, S, 3)`` uint8 batch -> ``(B, 3, S, S)`` float32 model input.

    Scales to [0, 1], augments when called with ``train=True`` (Paper A's rotation and
    flips, each with probability ``p``) and normalises with ``mean_std`` (``None``: no
    normalisation). Runs on whatever device the batch is on.
    """

    def __init__(self, augment: bool, mean_std: MeanStd | None = None, p: float = 0.5):
        self.augment, self.mean_std, self.p = bool(augment), mean_std, float(p)

    def __call__(
        self, images: torch.Tensor, train: bool, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(
                f"expected a (B, S, S, 3) uint8 batch, got {images.dtype} {tuple(images.shape)}"
            )
        # Transposed while still one byte per value; this copy is ours to change in place.
        x = images.permute(0, 3, 1, 2).contiguous()
        if train and self.augment:
            augment_batch_(x, *draw_dihedral(len(x), self.p, generator))
        x = x.float().div_(255.0)
        if self.mean_std is not None:
            mean, std = (
                torch.tensor(v, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
                for v in self.mean_std
            )
            x = x.sub_(mean).div_(std)
        return x

    def __repr__(self) -> str:
        return f"BatchImageTransform(augment={self.augment}, mean_std={self.mean_std})"
