"""Opening image files and decoding them to 8 bits, whatever their bit depth.

Scientific cameras often write 16-bit greyscale PNG or TIFF. Pillow's ``convert("L")``
or ``convert("RGB")`` of such an image clips every value above 255, so a 16-bit image
would come out all white. Here every image becomes 8 bits per channel this way:

* 16-bit integer (``I;16*``, and ``I`` with values up to 65,535): scaled from 0–65,535
  to 0–255 (``round(v * 255 / 65535)``);
* 32-bit integer (``I``) with values above 65,535: scaled from 0–its maximum;
* 32-bit float (``F``): ``v * 255`` when every value lies in 0–1, else scaled from
  its minimum–maximum range (a constant image becomes 0);
* 8-bit modes pass unchanged; ``P`` (palette), ``RGBA``, ``LA``, ``CMYK`` go through
  Pillow's conversion (the palette colours; the alpha channel dropped; CMYK inverted
  to RGB).

:func:`open_image` refuses images of more than :data:`MAX_IMAGE_PIXELS` pixels (a
decompression bomb, a few bytes that decode to gigabytes) with an error naming the
file; ``PLANKFLUX_MAX_IMAGE_PIXELS`` raises the limit.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image

from plankflux.errors import PlankfluxError

#: Pillow modes of integer images wider than 8 bits (16-bit PNG/TIFF open as one of these).
WIDE_INTEGER_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
#: The largest image accepted, in pixels (particle images are far smaller).
MAX_IMAGE_PIXELS = int(os.environ.get("PLANKFLUX_MAX_IMAGE_PIXELS", 64_000_000))
# Pillow's own guard warns above its limit and fails above twice it; ours is stricter.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def open_image(path: str | os.PathLike) -> Image.Image:
    """The decoded image at ``path`` (loaded, file closed); a :class:`PlankfluxError`
    naming the file for an image above :data:`MAX_IMAGE_PIXELS`."""
    try:
        with warnings.catch_warnings(), Image.open(path) as image:
            # Pillow's own warning would come before, and say less than, ours.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise PlankfluxError(
                    f"{path}: {width}x{height} pixels, more than the limit of "
                    f"{MAX_IMAGE_PIXELS} (a guard against decompression bombs; set "
                    "PLANKFLUX_MAX_IMAGE_PIXELS to raise it)"
                )
            image.load()
            return image
    except Image.DecompressionBombError as err:
        raise PlankfluxError(f"{path}: {err}") from err


def to_8bit(image: Image.Image) -> Image.Image:
    """``image`` with 8-bit channels (see the module doc): wide integer and float
    images scaled into mode ``L``; any other image unchanged."""
    if image.mode in WIDE_INTEGER_MODES:
        values = np.asarray(image, dtype=np.float64)
        top = float(values.max(initial=0.0))
        scale = 255 / (65535 if top <= 65535 else top)
        return _grey(values * scale)
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        values = np.where(np.isfinite(values), values, 0.0)
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if low >= 0 and high <= 1:
            return _grey(values * 255)
        span = high - low
        return _grey((values - low) * (255 / span) if span > 0 else values * 0)
    return image


def _grey(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


def as_rgb(image: Image.Image) -> Image.Image:
    """An RGB image with 8-bit channels (greyscale repeated)."""
    return to_8bit(image).convert("RGB")


def as_grey(image: Image.Image) -> Image.Image:
    """A greyscale (``L``) image with 8 bits."""
    return to_8bit(image).convert("L")
