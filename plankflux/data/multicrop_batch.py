"""DINO's multi-crop augmentation on whole batches, on the model's device (Paper B baseline).

With ``data.multicrop`` and ``data.device_transforms=true`` the CytoSense loader only
prepares each training pair (:class:`~plankflux.data.cytosense_batch_transforms.PairPrepare`:
scale-bar crop, edge-padded square of ``image_pad_size``; or the pair cache's uint8
copy of it) and :class:`BatchMultiCrop` cuts the views of the whole batch where the
model is, with :class:`~plankflux.data.multicrop.MultiCropTransform`'s recipe: per view
a RandomResizedCrop, horizontal and vertical flips, brightness/contrast jitter,
Gaussian blur, solarisation (second global view only), then ``[0, 1] -> [-1, 1]``.

The parameters are drawn on the CPU from torch's global generator with the per-item
path's distributions; given the same parameters the views equal the per-item path's up
to float rounding (the blur is one grouped convolution per kernel size instead of one
convolution per image: tests/data/test_multicrop_batch.py). The crop-and-resize runs
image by image (one antialiased resize each, as torchvision's), everything else on
whole batches. The batch's ``image`` and ``profile`` stay the prepared square and
profile (DINO's training step reads only ``crops``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from plankflux.data.cytosense_batch_transforms import (
    crop_resize,
    draw_crops,
    jitter,
    uniform_draws,
)
from plankflux.data.multicrop import MultiCropTransform


def blur_kernels(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Gaussian kernels of torchvision's ``gaussian_blur``: ``sigma`` (B,) -> (B, size, size).

    torchvision v2 samples ``exp(-(x/σ)²)`` at ``size`` points spread over
    ``±(size-1)/(2√2)`` and normalises; the 2-D kernel is the outer product.
    """
    half = (size - 1) / (2.0 * math.sqrt(2.0))
    x = torch.linspace(-half, half, size, dtype=sigma.dtype, device=sigma.device)
    line = torch.softmax(-((x[None, :] / sigma[:, None]) ** 2), dim=1)  # (B, size)
    return line[:, :, None] * line[:, None, :]


def blur_radius(sigma: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Half-widths of :func:`~plankflux.data.multicrop.gaussian_blur`'s kernels (B,):
    ±3σ, at least 1, below the image's shorter side (reflect padding needs it)."""
    radius = torch.ceil(3 * sigma).long().clamp_min(1)
    return radius.clamp_max(min(height, width) - 1)


def gaussian_blur_batch(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Each image of ``images`` (B, 1, H, W) blurred with its own ``sigma`` (B,) px.

    Images whose kernels have one size are blurred together: one reflect pad and one
    grouped convolution (the batch as channels) per size.
    """
    out = torch.empty_like(images)
    radius = blur_radius(sigma, *images.shape[-2:]).cpu()
    for r in torch.unique(radius).tolist():
        members = torch.nonzero(radius == r).squeeze(1).to(images.device)
        size = 2 * r + 1
        kernels = blur_kernels(sigma.to(images)[members], size)[:, None]  # (Bg, 1, k, k)
        group = images[members].transpose(0, 1)  # (1, Bg, H, W): the images as channels
        padded = F.pad(group, (r, r, r, r), mode="reflect")
        out[members] = F.conv2d(padded, kernels, groups=len(members)).transpose(0, 1)
    return out


class BatchMultiCrop:
    """The views of a batch of prepared squares ``image`` (B, 1, P, P) in [0, 1]:
    ``n_global`` (B, 1, G, G) then ``n_local`` (B, 1, L, L), each in [-1, 1].

    ``recipe``: :class:`~plankflux.data.multicrop.MultiCropTransform`'s view arguments
    (its defaults are DINO's), so one ``data.multicrop`` config serves both paths.
    """

    def __init__(self, **recipe):
        per_item = MultiCropTransform(**recipe)
        self.views = per_item.view_specs()
        self.brightness, self.contrast = per_item.brightness, per_item.contrast
        self.jitter_p, self.flip_p = per_item.jitter_p, per_item.flip_p
        self.blur_sigma = per_item.blur_sigma

    def draw(self, n: int, height: int, width: int, generator=None) -> list[dict]:
        """Every random parameter of a batch of ``n`` squares, per view, on the CPU."""
        b, c = self.brightness, self.contrast
        params = []
        for _size, scale, blur_p, solarize_p in self.views:
            coins = torch.rand(n, 6, generator=generator)
            params.append(
                {
                    "boxes": draw_crops(n, height, width, scale, generator=generator),
                    "hflip": coins[:, 0] < self.flip_p,
                    "vflip": coins[:, 1] < self.flip_p,
                    "jitter": coins[:, 2] < self.jitter_p,
                    "brightness": uniform_draws(n, 1 - b, 1 + b, generator).float(),
                    "contrast": uniform_draws(n, 1 - c, 1 + c, generator).float(),
                    "brightness_first": coins[:, 3] < 0.5,
                    "blur": coins[:, 4] < blur_p,
                    "sigma": uniform_draws(n, *self.blur_sigma, generator).float(),
                    "solarize": coins[:, 5] < solarize_p,
                }
            )
        return params

    def apply(self, squares: torch.Tensor, params: list[dict]) -> list[torch.Tensor]:
        """The views of ``squares`` (B, 1, P, P) with ``params`` from :meth:`draw`."""
        device = squares.device

        def per_image(flags: torch.Tensor) -> torch.Tensor:
            return flags.to(device).view(-1, 1, 1, 1)

        views = []
        for (size, *_), p in zip(self.views, params, strict=True):
            x = crop_resize(squares, p["boxes"], size)
            x = torch.where(per_image(p["hflip"]), x.flip(-1), x)
            x = torch.where(per_image(p["vflip"]), x.flip(-2), x)
            jittered = jitter(x, p["brightness"], p["contrast"], p["brightness_first"])
            x = torch.where(per_image(p["jitter"]), jittered.clamp(0.0, 1.0), x)
            blur = p["blur"]
            if blur.any():
                chosen = torch.nonzero(blur).squeeze(1).to(device)
                x = x.clone()
                x[chosen] = gaussian_blur_batch(x[chosen], p["sigma"][blur])
            x = torch.where(per_image(p["solarize"]) & (x >= 0.5), 1.0 - x, x)
            views.append(x.clamp(0.0, 1.0) * 2.0 - 1.0)
        return views

    def __call__(self, batch: dict, generator: torch.Generator | None = None) -> dict:
        """The batch with ``crops`` added (a uint8 ``image``, from the pair cache, is
        scaled to [0, 1] first)."""
        squares = batch["image"]
        if squares.dtype == torch.uint8:
            squares = squares.float().div_(255.0)
        params = self.draw(len(squares), *squares.shape[-2:], generator)
        return {**batch, "crops": self.apply(squares, params)}
