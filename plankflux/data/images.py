"""Decoding images to 8 bits, whatever their bit depth.

Scientific cameras often write 16-bit greyscale PNG or TIFF. Pillow's ``convert("L")``
or ``convert("RGB")`` of such an image clips every value above 255, so a 16-bit image
comes out all white. Here integer images of more than 8 bits are scaled from their full
range (0–65,535) to 0–255 first; 8-bit images pass unchanged.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: Pillow modes of integer images wider than 8 bits (16-bit PNG/TIFF open as one of these).
WIDE_INTEGER_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})


def to_8bit(image: Image.Image) -> Image.Image:
    """``image`` with 8-bit channels: a wide integer image scaled by 255/65,535 (values
    above 65,535 clipped) into mode ``L``; any other image unchanged."""
    if image.mode not in WIDE_INTEGER_MODES:
        return image
    values = np.asarray(image, dtype=np.float64)
    scaled = np.clip(np.rint(values * (255 / 65535)), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def as_rgb(image: Image.Image) -> Image.Image:
    """An RGB image with 8-bit channels (greyscale repeated)."""
    return to_8bit(image).convert("RGB")


def as_grey(image: Image.Image) -> Image.Image:
    """A greyscale (``L``) image with 8 bits."""
    return to_8bit(image).convert("L")
