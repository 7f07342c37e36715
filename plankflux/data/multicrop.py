"""DINO's multi-crop augmentation for the greyscale CytoSense images (Paper B baseline).

Raw greyscale image (H, W) with a scale bar on top::

    crop the top ``scale_bar_px`` (25) rows -> resize keeping the aspect ratio so the
    longer side is ``image_pad_size`` (236) and pad to a square with the edge pixels
    (exactly the CLIP pipeline's preparation, ``cytosense_transforms``)
    -> ``n_global`` (2) views: RandomResizedCrop(``global_size`` 224, scale (0.4, 1))
       ``n_local`` (6) views:  RandomResizedCrop(``local_size`` 96, scale (0.1, 0.4))
    -> per view: horizontal and vertical flip (p=0.5 each), brightness/contrast jitter
       (p=0.8), Gaussian blur (p=1.0 / 0.1 on the two globals, 0.5 on locals),
       solarisation (p=0.2, second global only) -> scale [0, 1] to [-1, 1].

This is DINO's recipe with the colour parts that mean something for one channel:
saturation, hue and random greyscale are dropped (the images are already greyscale).
Both flips are label-preserving here: particles have no up or down in the flow cell.

The returned dict also holds the *test-time* keys of
:class:`~plankflux.data.cytosense_transforms.PairTransform` (``image``, ``profile``,
``image_size``, ``profile_length``), so a multi-crop batch can still be embedded or
fed to anything that expects a pair batch.

Randomness comes from torch: the global generator (seeded per worker by Lightning)
or an explicit ``generator`` for reproducible tests.
"""

from __future__ import annotations

import math

import torch
from torchvision.transforms.v2 import functional as TF

from plankflux.data.cytosense_transforms import (
    SCALE_BAR_PX,
    SIZE_UNIT,
    PairTransform,
    color_jitter,
    crop_scale_bar,
    image_to_tensor,
    random_resized_crop,
    resize_pad_edge,
)


def _coin(p: float, generator: torch.Generator | None) -> bool:
    return p > 0 and torch.rand((), generator=generator).item() < p


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """(C, H, W) blurred with a Gaussian of std ``sigma`` px (kernel ±3σ, as PIL's)."""
    radius = max(1, math.ceil(3 * sigma))
    # Reflect padding needs the kernel's half-width below the image edge.
    radius = min(radius, min(image.shape[-2:]) - 1)
    return TF.gaussian_blur(image, [2 * radius + 1] * 2, [sigma, sigma])


class MultiCropTransform:
    """One particle -> ``n_global`` + ``n_local`` random crops plus the test-time inputs.

    Called as ``transform(image_uint8_HxW, profile_Lx6, generator=None)``; returns
    ``{"crops": [(1, global_size, global_size)] * n_global + [(1, local_size,
    local_size)] * n_local`` (globals first, values in [-1, 1]), and the
    :class:`PairTransform` test-time keys ``"image"`` (1, image_size, image_size),
    ``"profile"`` (6, profile_length), ``"image_size"`` (2,), ``"profile_length"`` (1,)}.
    The default collate turns ``crops`` into a list of ``(B, 1, s, s)`` tensors.
    """

    def __init__(
        self,
        n_global: int = 2,
        global_size: int = 224,
        global_scale: tuple[float, float] = (0.4, 1.0),
        n_local: int = 6,
        local_size: int = 96,
        local_scale: tuple[float, float] = (0.1, 0.4),
        brightness: float = 0.4,
        contrast: float = 0.4,
        jitter_p: float = 0.8,
        blur_p: tuple[float, float, float] = (1.0, 0.1, 0.5),
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        solarize_p: float = 0.2,
        flip_p: float = 0.5,
        image_size: int = 224,
        image_pad_size: int = 236,
        profile_length: int = 224,
        profile_pad_length: int = 236,
        scale_bar_px: int = SCALE_BAR_PX,
        size_unit: float = SIZE_UNIT,
    ):
        """
        Args:
            n_global, global_size, global_scale: the large views (teacher and student).
            n_local, local_size, local_scale: the small views (student only).
            brightness, contrast, jitter_p: ColorJitter factors U(1 ± x), applied with
                probability ``jitter_p`` (DINO: 0.4, 0.4, 0.8).
            blur_p: blur probability of the first global, the other globals, and the
                locals; ``blur_sigma``: its std range in px (DINO: 0.1–2).
            solarize_p: solarisation (invert pixels >= 0.5) of the second global view.
            flip_p: probability of each of the horizontal and the vertical flip.
            image_size, image_pad_size, profile_length, profile_pad_length,
                scale_bar_px, size_unit: as :class:`PairTransform`; ``image_pad_size``
                is also the square the crops are cut from.
        """
        if n_global < 1 or n_local < 0:
            raise ValueError(f"need n_global >= 1 and n_local >= 0, got {n_global}, {n_local}")
        self.n_global, self.global_size = int(n_global), int(global_size)
        self.n_local, self.local_size = int(n_local), int(local_size)
        self.global_scale, self.local_scale = tuple(global_scale), tuple(local_scale)
        self.brightness, self.contrast, self.jitter_p = brightness, contrast, jitter_p
        self.blur_p, self.blur_sigma = tuple(blur_p), tuple(blur_sigma)
        self.solarize_p, self.flip_p = solarize_p, flip_p
        self.pad_size, self.scale_bar_px = int(image_pad_size), int(scale_bar_px)
        self.test = PairTransform(
            False,
            image_size,
            image_pad_size,
            profile_length,
            profile_pad_length,
            scale_bar_px=scale_bar_px,
            size_unit=size_unit,
        )

    def _view(self, square, size, scale, blur_p, solarize_p, generator) -> torch.Tensor:
        """One augmented view (1, size, size) in [-1, 1] of the padded square in [0, 1]."""
        view = random_resized_crop(square, size, scale, generator=generator)
        if _coin(self.flip_p, generator):
            view = view.flip(-1)
        if _coin(self.flip_p, generator):
            view = view.flip(-2)
        if _coin(self.jitter_p, generator):
            view = color_jitter(view, self.brightness, self.contrast, generator).clamp(0, 1)
        if _coin(blur_p, generator):
            low, high = self.blur_sigma
            sigma = low + (high - low) * torch.rand((), generator=generator).item()
            view = gaussian_blur(view, sigma)
        if _coin(solarize_p, generator):
            view = torch.where(view >= 0.5, 1.0 - view, view)
        return view.clamp(0.0, 1.0) * 2.0 - 1.0

    def view_specs(self) -> list[tuple[int, tuple[float, float], float, float]]:
        """Per view, globals first: ``(size, crop scale, blur probability, solarisation
        probability)``."""
        blur_first, blur_other, blur_local = self.blur_p
        specs = [
            (self.global_size, self.global_scale, blur_first if i == 0 else blur_other,
             self.solarize_p if i == 1 else 0.0)
            for i in range(self.n_global)
        ]  # fmt: skip
        return specs + [(self.local_size, self.local_scale, blur_local, 0.0)] * self.n_local

    def views(self, square: torch.Tensor, generator=None) -> list[torch.Tensor]:
        """The views of a prepared square (1, P, P) in [0, 1], in :meth:`view_specs` order."""
        return [self._view(square, *spec, generator) for spec in self.view_specs()]

    def __call__(self, image, profile, generator=None) -> dict:
        item = self.test(image, profile)  # deterministic: uses no randomness
        raw = image_to_tensor(image)
        raw = crop_scale_bar(raw, self.scale_bar_px) if self.scale_bar_px else raw
        item["crops"] = self.views(resize_pad_edge(raw, self.pad_size), generator)
        return item
