"""Paper B's training augmentation on whole batches, on the model's device.

With ``data.device_transforms=true`` the CytoSense loader does only the deterministic part
of the training pipeline per pair (:class:`PairPrepare`: scale-bar crop, edge-padded
resize to ``image_pad_size``; log compression, resampling to ``profile_pad_length``) and
:class:`BatchPairTransform` applies the random part to the whole batch where the model
is: RandomResizedCrop to ``image_size``, brightness/contrast jitter in random order,
vertical flip, the joint left-right/time flip of image and profile, per-band amplitude
scaling, band drop-out and the random profile crop, then ``[0, 1] -> [-1, 1]``.

The parameters are drawn on the CPU from torch's global generator with the per-item
path's distributions (:mod:`plankflux.data.cytosense_transforms`); given the same
parameters the images equal the per-item path's, and the profiles equal it up to float
rounding: amplitude scaling and drop-out act per band, so they commute with the linear
resampling that the per-item path does after them and this path does before them
(tests/data/test_cytosense_batch_transforms.py). The crop-and-resize runs image by image
(one antialiased resize each, as torchvision's), everything else on whole batches.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from plankflux.data.cytosense_transforms import (
    SCALE_BAR_PX,
    SIZE_UNIT,
    crop_scale_bar,
    image_to_tensor,
    log_compress,
    resample,
    resize_pad_edge,
)

CROP_TRIES = 10  # torchvision's RandomResizedCrop: 10 tries, then the whole image


class PairPrepare:
    """The loader's share of a training pair: raw greyscale image and raw (L, 6) profile
    -> ``{"image": (1, P, P) in [0, 1], "profile": (6, PL) compressed, "image_size": (2,),
    "profile_length": (1,)}`` (the size scalars as
    :class:`~plankflux.data.cytosense_transforms.PairTransform` gives them)."""

    def __init__(
        self,
        image_pad_size: int = 236,
        profile_pad_length: int = 236,
        scale_bar_px: int = SCALE_BAR_PX,
        size_unit: float = SIZE_UNIT,
    ):
        self.image_pad_size, self.profile_pad_length = int(image_pad_size), int(profile_pad_length)
        self.scale_bar_px, self.size_unit = int(scale_bar_px), float(size_unit)

    def __call__(self, image, profile) -> dict[str, torch.Tensor]:
        raw = image_to_tensor(image)
        h, w = raw.shape[-2], raw.shape[-1]  # before the scale-bar crop and padding
        cropped = crop_scale_bar(raw, self.scale_bar_px) if self.scale_bar_px else raw
        x = log_compress(torch.as_tensor(np.asarray(profile), dtype=torch.float32).T)
        return {
            "image": resize_pad_edge(cropped, self.image_pad_size),
            "profile": resample(x, self.profile_pad_length),
            "image_size": torch.tensor([h, w], dtype=torch.float32) / self.size_unit,
            "profile_length": torch.tensor([len(profile)], dtype=torch.float32) / self.size_unit,
        }


def uniform_draws(shape, low: float, high: float, generator) -> torch.Tensor:
    """``shape`` float64 draws from U(low, high)."""
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)


def draw_crops(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float] = (0.8, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """RandomResizedCrop boxes for ``n`` images of ``height`` × ``width``: ``(n, 4)`` int64
    ``(top, left, h, w)``, sampled as torchvision does (the first of 10 tries whose box
    fits, else the whole image)."""
    area = height * width * uniform_draws((n, CROP_TRIES), *scale, generator)
    log_ratio = uniform_draws((n, CROP_TRIES), math.log(ratio[0]), math.log(ratio[1]), generator)
    aspect = torch.exp(log_ratio)
    w = torch.round(torch.sqrt(area * aspect)).long()
    h = torch.round(torch.sqrt(area / aspect)).long()
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.long().argmax(dim=1, keepdim=True)  # the first try that fits
    any_fit = fits.any(dim=1)
    h = torch.where(any_fit, h.gather(1, first)[:, 0], height)
    w = torch.where(any_fit, w.gather(1, first)[:, 0], width)
    u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    top = torch.where(any_fit, (u[:, 0] * (height - h + 1)).long(), 0)
    left = torch.where(any_fit, (u[:, 1] * (width - w + 1)).long(), 0)
    return torch.stack([top, left, h, w], dim=1)


def draw_band_drops(
    n: int,
    bands: int,
    p: float,
    rate: float,
    low: int,
    high: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``(n, bands)`` bool: the bands each profile loses. With probability ``p`` a
    profile loses Binomial(bands, ``rate``) bands clipped to ``low..high``, chosen
    uniformly without replacement."""
    drops = torch.rand(n, generator=generator) < p
    count = (torch.rand(n, bands, generator=generator) < rate).sum(dim=1).clamp(low, high)
    rank = torch.rand(n, bands, generator=generator).argsort(dim=1).argsort(dim=1)
    return drops[:, None] & (rank < count[:, None])


def crop_resize(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) and ``boxes`` (B, 4) ``(top, left, h, w)`` -> (B, C, size, size): each
    box resized with torchvision's antialiased bilinear resize, image by image."""
    return torch.stack(
        [
            TF.resized_crop(image, *box.tolist(), [size, size], antialias=True)
            for image, box in zip(images, boxes, strict=True)
        ]
    )


def jitter(images: torch.Tensor, brightness, contrast, brightness_first) -> torch.Tensor:
    """ColorJitter(brightness, contrast) per image of (B, 1, H, W) in [0, 1]: factors
    ``brightness``/``contrast`` (B,), applied in the order ``brightness_first`` (B,) bool
    says; torchvision's arithmetic (a blend with black, then with the image's mean)."""

    def bright(x):
        return (b * x).clamp(0.0, 1.0)

    def contrasted(x):
        mean = x.mean(dim=(-3, -2, -1), keepdim=True)
        return (c * x + (1.0 - c) * mean).clamp(0.0, 1.0)

    b = brightness.to(images).view(-1, 1, 1, 1)
    c = contrast.to(images).view(-1, 1, 1, 1)
    first = brightness_first.to(images.device).view(-1, 1, 1, 1)
    return torch.where(first, contrasted(bright(images)), bright(contrasted(images)))


class BatchPairTransform:
    """The random part of Paper B's training pipeline on a batch of :class:`PairPrepare`
    items: ``image`` (B, 1, P, P) -> (B, 1, S, S) in [-1, 1]; ``profile`` (B, 6, PL) ->
    (B, 6, T). Defaults are Paper B's (docs/paper_b.md), as the per-item transforms'."""

    def __init__(
        self,
        image_size: int = 224,
        profile_length: int = 224,
        crop_scale: tuple[float, float] = (0.8, 1.0),
        brightness: float = 0.2,
        contrast: float = 0.2,
        vflip_p: float = 0.5,
        flip_p: float = 0.5,
        amplitude_p: float = 0.5,
        amplitude: tuple[float, float] = (0.95, 1.05),
        band_drop_p: float = 0.25,
        band_drop_rate: float = 0.05,
        band_drop_range: tuple[int, int] = (1, 4),
    ):
        self.image_size, self.profile_length = int(image_size), int(profile_length)
        self.crop_scale = tuple(crop_scale)
        self.brightness, self.contrast = brightness, contrast
        self.vflip_p, self.flip_p = vflip_p, flip_p
        self.amplitude_p, self.amplitude = amplitude_p, tuple(amplitude)
        self.band_drop = (band_drop_p, band_drop_rate, *band_drop_range)

    def draw(self, images: torch.Tensor, profiles: torch.Tensor, generator=None) -> dict:
        """Every random parameter of a batch, on the CPU (see :meth:`apply`)."""
        n, bands, pad_length = profiles.shape
        b, c = self.brightness, self.contrast
        coins = torch.rand(n, 4, generator=generator)
        return {
            "boxes": draw_crops(n, *images.shape[-2:], self.crop_scale, generator=generator),
            "brightness": uniform_draws(n, 1 - b, 1 + b, generator).float(),
            "contrast": uniform_draws(n, 1 - c, 1 + c, generator).float(),
            "brightness_first": coins[:, 0] < 0.5,
            "vflip": coins[:, 1] < self.vflip_p,
            "flip": coins[:, 2] < self.flip_p,
            "amplitude": torch.where(
                (coins[:, 3] < self.amplitude_p)[:, None],
                uniform_draws((n, bands), *self.amplitude, generator).float(),
                1.0,
            ),
            "drop": draw_band_drops(n, bands, *self.band_drop, generator=generator),
            "start": (
                torch.rand(n, generator=generator) * (pad_length - self.profile_length + 1)
            ).long(),
        }

    def apply(self, images: torch.Tensor, profiles: torch.Tensor, params: dict):
        """``(images, profiles)`` transformed with ``params`` from :meth:`draw`."""
        device = images.device
        x = crop_resize(images, params["boxes"], self.image_size)
        x = jitter(x, params["brightness"], params["contrast"], params["brightness_first"])
        x = torch.where(params["vflip"].to(device).view(-1, 1, 1, 1), x.flip(-2), x)
        flip = params["flip"].to(device)
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        x = x.clamp(0.0, 1.0) * 2.0 - 1.0

        p = profiles * params["amplitude"].to(profiles)[..., None]
        p = p.masked_fill(params["drop"].to(device)[..., None], 0.0)
        steps = params["start"].to(device)[:, None] + torch.arange(
            self.profile_length, device=device
        )
        p = p.gather(-1, steps[:, None, :].expand(-1, p.shape[1], -1))
        p = torch.where(flip.view(-1, 1, 1), p.flip(-1), p)
        return x, p

    def __call__(self, batch: dict, generator: torch.Generator | None = None) -> dict:
        """The batch with ``image`` and ``profile`` transformed (a uint8 ``image``, from
        the pair cache, is scaled to [0, 1] first)."""
        images, profiles = batch["image"], batch["profile"]
        if images.dtype == torch.uint8:
            images = images.float().div_(255.0)
        images, profiles = self.apply(images, profiles, self.draw(images, profiles, generator))
        return {**batch, "image": images, "profile": profiles}
