"""Image and profile pipelines of Paper B (docs/paper_b.md), and their joint flip.

Image, raw greyscale (H, W) with a scale bar on top::

    crop the top ``scale_bar_px`` (25) rows -> resize keeping the aspect ratio so the
    longer side is ``pad_size`` (236) and pad to a square with the edge pixels
    -> train: RandomResizedCrop(``size`` 224, scale (0.8, 1)), ColorJitter(brightness
       0.2, contrast 0.2), vertical flip p=0.5
    -> test: resize-and-pad straight to ``size`` -> scale [0, 1] to [-1, 1]

(greyscale: images are read as 8-bit greyscale, "L", before anything else; for a
per-pixel conversion the position in the chain does not matter.)

Profile, raw (L, 6) detector signal::

    2·ln(1 + x)/8.9211 − 1 (x clamped at 0: baseline noise dips below zero and
    ln(1+x) is undefined under −1) -> train: per-band amplitude scaling U(0.95, 1.05)
    with p=0.5; with p=0.25 set Binomial(6, 0.05) bands, clipped to 1..4, to 0 ->
    resample linearly to ``pad_length`` (236) and crop ``length`` (224) at random
    -> test: resample to ``length``. The augmentations act on the compressed values,
    in the order docs/paper_b.md lists them, so a dropped band reads 0 (mid-range) and not −1
    (a silent detector) and the model can tell the two apart.

Train pairs are flipped together with p=0.5: the image left-right and the profile
in time, because the particle passes the beam along the image's horizontal axis.

Size scalars (docs/paper_b.md: "image (H, W) of the raw image / 224, profile raw L / 224"):
H and W are those of the original image as stored, scale bar included (Paper B: the
"original image size (prior to cropping and padding)"); both divide by ``size_unit``
(224, not the configurable model input size, so tiny runs see the same scalars).

Randomness comes from torch: the global generator (seeded per worker by Lightning)
or an explicit ``generator`` for reproducible tests.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from plankflux.data.images import as_grey

LOG_DIVISOR = 8.9211
SCALE_BAR_PX = 25
SIZE_UNIT = 224.0


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def _coin(p: float, generator: torch.Generator | None) -> bool:
    return torch.rand((), generator=generator).item() < p


def image_to_tensor(image: Image.Image | np.ndarray | torch.Tensor) -> torch.Tensor:
    """A greyscale PIL image, (H, W) uint8 array or (1, H, W) tensor -> (1, H, W) float [0, 1]."""
    if isinstance(image, torch.Tensor):
        out = image if image.ndim == 3 else image[None]
        return out.float() / 255.0 if out.dtype == torch.uint8 else out.float()
    if isinstance(image, Image.Image):
        image = as_grey(image)
    # A copy: arrays from PIL are read-only, which torch warns about.
    return torch.from_numpy(np.array(image, dtype=np.uint8))[None].float() / 255.0


def crop_scale_bar(image: torch.Tensor, px: int = SCALE_BAR_PX) -> torch.Tensor:
    """(C, H, W) -> (C, H - px, W): drop the scale bar rows at the top."""
    if image.shape[-2] <= px:
        raise ValueError(f"image of height {image.shape[-2]} has no rows below a {px}-px bar")
    return image[..., px:, :]


def resize_pad_edge(image: torch.Tensor, size: int) -> torch.Tensor:
    """(C, H, W) -> (C, size, size): longer side to ``size`` (aspect kept), edge-padded.

    The content is centred; an odd remainder goes to the bottom/right. Edge padding
    continues the background instead of framing the particle with a constant.
    """
    c, h, w = image.shape
    scale = size / max(h, w)
    nh, nw = max(1, min(size, round(h * scale))), max(1, min(size, round(w * scale)))
    out = F.interpolate(image[None], (nh, nw), mode="bilinear", antialias=True)
    top, left = (size - nh) // 2, (size - nw) // 2
    out = F.pad(out, (left, size - nw - left, top, size - nh - top), mode="replicate")
    return out[0].clamp(0.0, 1.0)


def random_resized_crop(
    image: torch.Tensor,
    size: int,
    scale: tuple[float, float] = (0.8, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """torchvision's RandomResizedCrop (same sampling, 10 tries then centre crop)."""
    _, height, width = image.shape
    for _ in range(10):
        area = height * width * _uniform(*scale, generator)
        aspect = math.exp(_uniform(math.log(ratio[0]), math.log(ratio[1]), generator))
        w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (), generator=generator))
            left = int(torch.randint(0, width - w + 1, (), generator=generator))
            break
    else:
        h, w = height, width
        top, left = 0, 0
    return TF.resized_crop(image, top, left, h, w, [size, size], antialias=True)


def color_jitter(
    image: torch.Tensor, brightness: float, contrast: float, generator=None
) -> torch.Tensor:
    """ColorJitter(brightness, contrast) on a (1, H, W) image in [0, 1], random order."""
    b = _uniform(1 - brightness, 1 + brightness, generator)
    c = _uniform(1 - contrast, 1 + contrast, generator)
    ops = [lambda x: TF.adjust_brightness(x, b), lambda x: TF.adjust_contrast(x, c)]
    for k in torch.randperm(2, generator=generator).tolist():
        image = ops[k](image)
    return image


class ImageTransform:
    """Raw greyscale image (1, H, W) in [0, 1] -> model input (1, size, size) in [-1, 1]."""

    def __init__(
        self,
        train: bool,
        size: int = 224,
        pad_size: int = 236,
        scale_bar_px: int = SCALE_BAR_PX,
        crop_scale: tuple[float, float] = (0.8, 1.0),
        brightness: float = 0.2,
        contrast: float = 0.2,
        vflip_p: float = 0.5,
    ):
        self.train, self.size, self.pad_size = train, int(size), int(pad_size)
        self.scale_bar_px, self.crop_scale = int(scale_bar_px), tuple(crop_scale)
        self.brightness, self.contrast, self.vflip_p = brightness, contrast, vflip_p

    def __call__(self, image: torch.Tensor, generator=None) -> torch.Tensor:
        image = crop_scale_bar(image, self.scale_bar_px) if self.scale_bar_px else image
        if not self.train:
            return resize_pad_edge(image, self.size) * 2.0 - 1.0
        image = resize_pad_edge(image, self.pad_size)
        image = random_resized_crop(image, self.size, self.crop_scale, generator=generator)
        image = color_jitter(image, self.brightness, self.contrast, generator)
        if _coin(self.vflip_p, generator):
            image = image.flip(-2)
        return image.clamp(0.0, 1.0) * 2.0 - 1.0


def log_compress(profile: torch.Tensor) -> torch.Tensor:
    """Raw signal -> 2·ln(1 + max(x, 0))/8.9211 − 1 (0 -> −1, ≈7,500 -> 1)."""
    return 2.0 * torch.log1p(profile.clamp_min(0.0)) / LOG_DIVISOR - 1.0


def resample(profile: torch.Tensor, length: int) -> torch.Tensor:
    """(6, L) -> (6, length) by linear interpolation along time (end points kept)."""
    return F.interpolate(profile[None], size=length, mode="linear", align_corners=True)[0]


def band_drop_count(rate: float, low: int, high: int, generator=None) -> int:
    """Binomial(6, rate) drawn as 6 coins, clipped to ``low..high``."""
    n = int((torch.rand(6, generator=generator) < rate).sum())
    return min(max(n, low), high)


class ProfileTransform:
    """Raw profile (L, 6) -> model input (6, length), channels first."""

    def __init__(
        self,
        train: bool,
        length: int = 224,
        pad_length: int = 236,
        amplitude_p: float = 0.5,
        amplitude: tuple[float, float] = (0.95, 1.05),
        band_drop_p: float = 0.25,
        band_drop_rate: float = 0.05,
        band_drop_range: tuple[int, int] = (1, 4),
    ):
        self.train, self.length, self.pad_length = train, int(length), int(pad_length)
        self.amplitude_p, self.amplitude = amplitude_p, tuple(amplitude)
        self.band_drop_p, self.band_drop_rate = band_drop_p, band_drop_rate
        self.band_drop_range = tuple(band_drop_range)

    def __call__(self, profile: torch.Tensor | np.ndarray, generator=None) -> torch.Tensor:
        x = log_compress(torch.as_tensor(np.asarray(profile), dtype=torch.float32).T)
        if not self.train:
            return resample(x, self.length)
        bands = x.shape[0]
        if _coin(self.amplitude_p, generator):
            low, high = self.amplitude
            x = x * (low + (high - low) * torch.rand(bands, 1, generator=generator))
        if _coin(self.band_drop_p, generator):
            n = band_drop_count(self.band_drop_rate, *self.band_drop_range, generator)
            x = x.clone()
            x[torch.randperm(bands, generator=generator)[:n]] = 0.0
        x = resample(x, self.pad_length)
        start = int(torch.randint(0, self.pad_length - self.length + 1, (), generator=generator))
        return x[:, start : start + self.length]


class PairTransform:
    """One particle -> model inputs, with the joint flip on training pairs.

    Returns ``{"image": (1, S, S), "profile": (6, T), "image_size": (2,) = (H, W) of the
    raw image (scale bar included) / size_unit, "profile_length": (1,) = L / size_unit}``.
    """

    def __init__(
        self,
        train: bool,
        image_size: int = 224,
        image_pad_size: int = 236,
        profile_length: int = 224,
        profile_pad_length: int = 236,
        scale_bar_px: int = SCALE_BAR_PX,
        flip_p: float = 0.5,
        size_unit: float = SIZE_UNIT,
    ):
        self.train, self.flip_p, self.size_unit = train, flip_p, float(size_unit)
        self.scale_bar_px = int(scale_bar_px)
        self.image = ImageTransform(train, image_size, image_pad_size, scale_bar_px)
        self.profile = ProfileTransform(train, profile_length, profile_pad_length)

    def __call__(self, image, profile, generator=None) -> dict[str, torch.Tensor]:
        raw = image_to_tensor(image)
        h, w = raw.shape[-2], raw.shape[-1]  # before the scale-bar crop and padding
        length = len(profile)
        image_t = self.image(raw, generator)
        profile_t = self.profile(profile, generator)
        if self.train and _coin(self.flip_p, generator):
            image_t, profile_t = image_t.flip(-1), profile_t.flip(-1)
        return {
            "image": image_t,
            "profile": profile_t,
            "image_size": torch.tensor([h, w], dtype=torch.float32) / self.size_unit,
            "profile_length": torch.tensor([length], dtype=torch.float32) / self.size_unit,
        }
