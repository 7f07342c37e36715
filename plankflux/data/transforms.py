"""Image pre-processing of Paper A (docs/paper_a.md): resizing, normalisation, augmentation.

The pipeline for one particle image is

    file --load_resized--> (S, S, 3) uint8 --to_tensor--> (3, S, S) float in [0, 1]
         --TrainAugment (train only)--> --normalize (optional)--> (3, S, S) float32

``load_resized`` is the part worth caching (decoding dominates on CPUs); see
:mod:`plankflux.data.image_cache`. The pre-processing study compares the two
resize modes (``"resize"``: squash to S×S; ``"pad"``: keep aspect, zero-pad) under
three normalisations (none, dataset statistics, ImageNet statistics).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from plankflux.data.images import as_rgb, open_image

MeanStd = tuple[tuple[float, float, float], tuple[float, float, float]]


class Resize:
    """Squash a PIL image to ``size``×``size`` (aspect ratio not kept; bilinear).

    This is the default of Paper A (torchvision ``Resize((S, S))``).
    """

    def __init__(self, size: int):
        if int(size) < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = int(size)

    def __call__(self, img: Image.Image) -> Image.Image:
        return img.resize((self.size, self.size), Image.Resampling.BILINEAR)

    def __repr__(self) -> str:
        return f"Resize({self.size})"


class CustomPad:
    """Aspect-preserving fit of a PIL image into a ``size``×``size`` square.

    If the longer side exceeds ``size`` the image is shrunk (bilinear) so that the
    longer side equals ``size`` and the shorter side is ``round(short * size / long)``
    (at least 1 px). Smaller images are never enlarged: small particles stay small,
    so their size is still visible to the network. The (possibly shrunk) ``w×h`` image
    is pasted at offset ``((size - w) // 2, (size - h) // 2)`` on a canvas filled with
    ``fill``: ``0`` (black, Paper A's dark-field images), any grey level 0–255, or
    ``"median"``: each channel's median over the image's border pixels, so an
    instrument with a light background (imaging flow cytometry) pads light.
    """

    def __init__(self, size: int, fill: int | str = 0):
        if int(size) < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if fill != "median" and not (isinstance(fill, int) and 0 <= fill <= 255):
            raise ValueError(f"fill must be 0-255 or 'median', got {fill!r}")
        self.size = int(size)
        self.fill = fill

    def fitted_size(self, width: int, height: int) -> tuple[int, int]:
        """The ``(w, h)`` of the content after the optional shrink."""
        longer = max(width, height)
        if longer <= self.size:
            return width, height
        scale = self.size / longer
        w = self.size if width == longer else max(1, round(width * scale))
        h = self.size if height == longer else max(1, round(height * scale))
        return w, h

    def fill_value(self, img: Image.Image) -> int | tuple[int, ...]:
        """The canvas colour for ``img`` (one value per band)."""
        if self.fill != "median":
            return self.fill if len(img.getbands()) == 1 else (self.fill,) * len(img.getbands())
        pixels = np.asarray(img)
        pixels = pixels[..., None] if pixels.ndim == 2 else pixels
        border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
        median = tuple(int(v) for v in np.rint(np.median(border, axis=0)))
        return median[0] if len(median) == 1 else median

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = self.fitted_size(*img.size)
        fill = self.fill_value(img)
        if (w, h) != img.size:
            img = img.resize((w, h), Image.Resampling.BILINEAR)
        canvas = Image.new(img.mode, (self.size, self.size), fill)
        canvas.paste(img, ((self.size - w) // 2, (self.size - h) // 2))
        return canvas

    def __repr__(self) -> str:
        return f"CustomPad({self.size}, fill={self.fill!r})"


#: The base resize modes; ``pad`` also comes as ``pad_median`` and ``pad_<0-255>``
#: (the fill of :class:`CustomPad`; ``pad`` = ``pad_0``, black).
RESIZE_MODES: dict[str, type] = {"resize": Resize, "pad": CustomPad}
RESIZE_MODE_HELP = "resize, pad (black), pad_median (border median) or pad_<0-255>"


def _pad_fill(mode: str) -> int | str | None:
    """The fill of a ``pad*`` mode, or ``None`` when ``mode`` is not one."""
    if mode == "pad":
        return 0
    if mode == "pad_median":
        return "median"
    if mode.startswith("pad_") and mode[4:].isdigit() and int(mode[4:]) <= 255:
        return int(mode[4:])
    return None


def check_resize_mode(mode: str) -> str:
    if mode != "resize" and _pad_fill(str(mode)) is None:
        raise ValueError(f"unknown resize mode {mode!r}; choose {RESIZE_MODE_HELP}")
    return mode


def make_resizer(mode: str, size: int) -> Resize | CustomPad:
    """The transform of a resize mode (see :data:`RESIZE_MODES`)."""
    check_resize_mode(mode)
    return Resize(size) if mode == "resize" else CustomPad(size, _pad_fill(mode))


def load_resized(path: str | os.PathLike, size: int, mode: str) -> np.ndarray:
    """Decode an image file as RGB and resize it with ``mode``.

    Returns a ``(size, size, 3)`` uint8 array (HWC).
    """
    return np.asarray(make_resizer(mode, size)(as_rgb(open_image(path))), dtype=np.uint8)


# ----------------------------------------------------------------------------------
# Normalisation

# Paper A published its dataset statistics per resize mode (computed at 224 px).
NORMALIZATION_STATS: dict[str, dict] = {
    "imagenet": {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
    "dataset": {
        "resize": {"mean": (0.279, 0.304, 0.294), "std": (0.096, 0.102, 0.095)},
        "pad": {"mean": (0.053, 0.058, 0.055), "std": (0.123, 0.133, 0.127)},
    },
}

_NORMALIZE_CHOICES = "'none', 'imagenet', 'dataset', a stats JSON path or explicit mean/std"


def _as_triple(values, what: str) -> tuple[float, float, float]:
    try:
        triple = tuple(float(v) for v in values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"normalisation {what} must be 3 numbers, got {values!r}") from err
    if len(triple) != 3 or not all(np.isfinite(triple)):
        raise ValueError(f"normalisation {what} must be 3 finite numbers, got {values!r}")
    return triple  # type: ignore[return-value]


def _mean_std(entry, source: str) -> MeanStd:
    if isinstance(entry, Mapping):
        if "mean" not in entry or "std" not in entry:
            raise ValueError(f"{source}: needs both 'mean' and 'std', got keys {list(entry)}")
        mean, std = entry["mean"], entry["std"]
    elif isinstance(entry, Sequence) and not isinstance(entry, str) and len(entry) == 2:
        mean, std = entry
    else:
        raise ValueError(f"{source}: expected {{'mean': [..], 'std': [..]}} or (mean, std)")
    mean, std = _as_triple(mean, "mean"), _as_triple(std, "std")
    if min(std) <= 0:
        raise ValueError(f"{source}: std must be > 0, got {std}")
    return mean, std


def _from_stats_file(path: Path, resize_mode: str) -> MeanStd:
    if not path.is_file():
        raise ValueError(f"normalisation stats file not found: {path}")
    try:
        table = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"normalisation stats file {path} is not valid JSON: {err}") from err
    if not isinstance(table, Mapping):
        raise ValueError(f"normalisation stats file {path} must hold a JSON object")
    if "mean" in table and "std" in table:  # a single hand-written entry
        return _mean_std(table, str(path))
    if resize_mode not in table:
        raise ValueError(
            f"normalisation stats file {path} has no entry for resize mode {resize_mode!r} "
            f"(it has {sorted(table)}); run `plankflux stats CAMPAIGN --resize-mode "
            f"{resize_mode} --out {path}`"
        )
    return _mean_std(table[resize_mode], f"{path} [{resize_mode}]")


def resolve_normalization(normalize, resize_mode: str) -> MeanStd | None:
    """Turn a normalisation choice into ``(mean, std)`` (3 floats each) or ``None``.

    ``normalize`` may be ``None``/``"none"`` (no normalisation, Paper A's default),
    ``"imagenet"``, ``"dataset"`` (Paper A's published statistics for ``resize_mode``),
    a path to a JSON file written by ``plankflux stats`` (the entry for
    ``resize_mode`` is used), a mapping ``{"mean": [...], "std": [...]}`` or a pair
    ``(mean, std)`` (a user's own statistics), or a ``plankflux stats``-style mapping
    keyed by resize mode. Anything else raises ``ValueError``.
    """
    check_resize_mode(resize_mode)
    if normalize is None:
        return None
    if isinstance(normalize, os.PathLike):
        return _from_stats_file(Path(normalize), resize_mode)
    if isinstance(normalize, str):
        key = normalize.strip().lower()
        if key in ("none", "null", ""):
            return None
        if key == "imagenet":
            return _mean_std(NORMALIZATION_STATS["imagenet"], "imagenet")
        if key == "dataset":
            published = NORMALIZATION_STATS["dataset"]
            if resize_mode not in published:
                raise ValueError(
                    f"no published dataset statistics for resize mode {resize_mode!r} (only "
                    f"{sorted(published)}); compute yours with `plankflux stats CAMPAIGN "
                    f"--resize-mode {resize_mode} --out stats.json`, then data.normalize=stats.json"
                )
            return _mean_std(published[resize_mode], "dataset")
        # Anything path-like is a stats file; a bare unknown word is most likely a typo.
        if key.endswith(".json") or os.sep in normalize or Path(normalize).is_file():
            return _from_stats_file(Path(normalize), resize_mode)
        raise ValueError(f"unknown normalisation {normalize!r}; use {_NORMALIZE_CHOICES}")
    if isinstance(normalize, Mapping) and "mean" not in normalize and resize_mode in normalize:
        return _mean_std(normalize[resize_mode], f"normalisation [{resize_mode}]")
    if isinstance(normalize, Mapping | Sequence):
        return _mean_std(normalize, "normalisation")
    raise ValueError(f"unsupported normalisation {normalize!r}; use {_NORMALIZE_CHOICES}")


# ----------------------------------------------------------------------------------
# Tensors, augmentation, the composed pipeline


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 array -> ``(3, H, W)`` float32 tensor in [0, 1].

    Copies, so read-only inputs (a memory-mapped cache) are fine.
    """
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {img.shape}")
    array = np.array(img, dtype=np.uint8, copy=True)
    return torch.from_numpy(array).permute(2, 0, 1).contiguous().float().div_(255.0)


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per channel; ``x`` is ``(..., 3, H, W)``. Returns a new tensor."""
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return (x - m) / s


def dihedral(x: torch.Tensor, k: int, hflip: bool, vflip: bool, dims=(-2, -1)) -> torch.Tensor:
    """Rotate ``x`` by ``k`` quarter turns (0 = none), then flip left-right and/or
    up-down, in the image plane ``dims = (height, width)``. Exact pixel permutations."""
    height, width = dims
    if k:
        if x.shape[height] != x.shape[width]:
            raise ValueError(f"90° rotation needs square images, got {tuple(x.shape)}")
        x = torch.rot90(x, k, dims=(height, width))
    if hflip:
        x = torch.flip(x, dims=(width,))
    if vflip:
        x = torch.flip(x, dims=(height,))
    return x


def draw_dihedral(
    n: int, p: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paper A's augmentation parameters for ``n`` images: ``(k (n,), flips (n, 2))``.

    Each image is rotated by ``k`` quarter turns with probability ``p`` (``k`` uniform in
    {1, 2, 3}; ``k = 0`` when it is not rotated) and flipped horizontally and vertically,
    each with probability ``p``. ``flips[:, 0]`` is the horizontal flip. The same draws
    are made whatever fires: 3 uniforms, then one ``k`` per image.
    """
    coins = torch.rand(n, 3, generator=generator) < p
    turns = torch.randint(1, 4, (n,), generator=generator)
    return torch.where(coins[:, 0], turns, 0), coins[:, 1:]


class TrainAugment:
    """Paper A's augmentations, each applied independently with probability ``p``.

    In order: rotation by ``k`` quarter turns (``k`` uniform in {1, 2, 3}), horizontal
    flip, vertical flip (:func:`draw_dihedral`, :func:`dihedral`). Works on
    ``(..., H, W)`` tensors of any dtype; rotation needs square images. Random numbers
    come from torch's global RNG (so ``seed_everything(workers=True)`` makes DataLoader
    workers reproducible) unless a ``torch.Generator`` is given. The batched form on
    the model's device is :class:`plankflux.data.batch_transforms.BatchImageTransform`.
    """

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = float(p)
        self.generator = generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        k, flips = draw_dihedral(1, self.p, self.generator)
        return dihedral(x, int(k[0]), bool(flips[0, 0]), bool(flips[0, 1]))

    def __repr__(self) -> str:
        return f"TrainAugment(p={self.p})"


class ImagePipeline:
    """``(H, W, 3)`` uint8 array (or PIL image) -> ``(3, H, W)`` float32 tensor.

    Scales to [0, 1], augments when ``train`` and normalises with ``mean_std``
    (``None`` = no normalisation; see :func:`resolve_normalization`).
    """

    def __init__(
        self,
        train: bool,
        mean_std: MeanStd | None = None,
        p: float = 0.5,
        generator: torch.Generator | None = None,
    ):
        self.train = bool(train)
        self.mean_std = mean_std
        self.augment = TrainAugment(p, generator) if self.train else None

    def __call__(self, img: np.ndarray | Image.Image) -> torch.Tensor:
        if isinstance(img, Image.Image):
            img = np.asarray(as_rgb(img))
        x = to_tensor(img)
        if self.augment is not None:
            x = self.augment(x)
        if self.mean_std is not None:
            x = normalize(x, *self.mean_std)
        return x.contiguous()

    def __repr__(self) -> str:
        return f"ImagePipeline(train={self.train}, mean_std={self.mean_std})"
