"""Per-channel image statistics for normalisation ("dataset statistics", docs/paper_a.md).

Mean and standard deviation are taken over *all pixels* of all images (each image
weighted by its pixel count, which is the same for every image after resizing),
with values scaled to [0, 1], after resizing with the chosen mode; std is the
population std (ddof=0). With ``"pad"`` the zero borders count, which is why
Paper A's CustomPad mean is so much lower than its Resize mean.

Images are streamed: only a per-channel histogram of the 256 uint8 values is kept,
so the sums are exact integers whatever the campaign size.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from plankflux.data.image_cache import iter_resized

_CHUNK = 32  # images per histogram update when reading an array


class _Histogram:
    """Counts of each uint8 value per RGB channel; a ``(3, 256)`` int64 table."""

    def __init__(self) -> None:
        self.counts = np.zeros((3, 256), dtype=np.int64)
        self._offset = np.array([0, 256, 512], dtype=np.int64)

    def add(self, images: np.ndarray) -> None:
        """Add ``(..., 3)`` uint8 pixels (one image ``(H, W, 3)`` or a batch)."""
        if images.dtype != np.uint8 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 (..., 3) pixels, got {images.dtype} {images.shape}")
        # One bincount over channel-offset values counts all three channels at once.
        flat = images.reshape(-1, 3).astype(np.int64) + self._offset
        self.counts += np.bincount(flat.ravel(), minlength=768).reshape(3, 256)

    def mean_std(self) -> tuple[list[float], list[float]]:
        n = self.counts.sum(axis=1)
        if not n.all():
            raise ValueError("no pixels to compute statistics from")
        values = np.arange(256, dtype=np.float64) / 255.0
        mean = (self.counts * values).sum(axis=1) / n
        # Var = E[(x - mean)^2] computed from the histogram: no cancellation problem.
        var = (self.counts * (values[None, :] - mean[:, None]) ** 2).sum(axis=1) / n
        return [float(m) for m in mean], [float(s) for s in np.sqrt(var)]


def stats_from_array(arr: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel ``(mean, std)`` in [0, 1] of a ``(N, H, W, 3)`` uint8 array.

    Reads the array in chunks, so a memory-mapped cache is not loaded whole.
    """
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected an (N, H, W, 3) array, got shape {arr.shape}")
    hist = _Histogram()
    for start in range(0, arr.shape[0], _CHUNK):
        hist.add(np.asarray(arr[start : start + _CHUNK]))
    return hist.mean_std()


def compute_dataset_stats(
    paths: Sequence[str | os.PathLike],
    size: int,
    mode: str,
    progress: bool = False,
    workers: int | None = None,
) -> tuple[list[float], list[float]]:
    """Per-channel ``(mean, std)`` in [0, 1] of ``paths`` resized to ``size`` with ``mode``.

    ``mode`` is ``"resize"`` or ``"pad"``. Images are decoded in a thread pool and
    never held together. Raises ``ValueError`` for an empty list and
    :class:`~plankflux.data.image_cache.UnreadableImageError` naming a bad image.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no images to compute statistics from")
    hist = _Histogram()
    desc = f"stats ({mode}, {size}px)"
    for _, image in iter_resized(paths, size, mode, workers, progress, desc):
        hist.add(image)
    return hist.mean_std()
