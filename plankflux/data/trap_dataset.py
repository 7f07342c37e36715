"""Torch datasets over the particles of a trap campaign."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from plankflux.data.image_cache import DecodedImageCache, UnreadableImageError
from plankflux.data.transforms import load_resized


class ResizedImages:
    """Decoded, resized images of campaign rows: ``images[row] -> (S, S, 3) uint8``.

    Backed by a decoded-image cache (a memory-mapped ``(N, S, S, 3)`` array whose
    ``i``-th entry is ``rows[i]``) when one is given, else decoded from disk on access.
    """

    def __init__(
        self,
        rows: Sequence[int],
        paths: Sequence[Path],
        size: int,
        mode: str,
        cache: DecodedImageCache | None = None,
    ):
        if len(rows) != len(paths) or (cache is not None and len(cache) != len(rows)):
            raise ValueError("rows, paths and cache must have the same length")
        self._position = {int(row): i for i, row in enumerate(rows)}
        self._paths = list(paths)
        self._size, self._mode, self._cache = size, mode, cache

    def __getitem__(self, row: int) -> np.ndarray:
        i = self._position[int(row)]
        if self._cache is not None:
            return np.asarray(self._cache[i])
        try:
            return load_resized(self._paths[i], self._size, self._mode)
        except Exception as err:  # name the file; PIL's messages often do not
            raise UnreadableImageError(self._paths[i], err) from err

    def take(self, rows: Sequence[int]) -> np.ndarray:
        """The ``(B, S, S, 3)`` uint8 images of ``rows``, in order (one fancy index of
        the cache's memmap when there is one)."""
        positions = [self._position[int(row)] for row in rows]
        if self._cache is not None:
            return np.take(self._cache.array, positions, axis=0)
        if not positions:
            return np.zeros((0, self._size, self._size, 3), np.uint8)
        return np.stack([self[int(row)] for row in rows])


def already_collated(batch):
    """The DataLoader's ``collate_fn`` for datasets whose ``__getitems__`` returns a batch."""
    return batch


class TrapImageDataset(Dataset):
    """One item per particle row.

    Item: ``{"image": float32 (3, S, S), "label": int64 (-1 = unlabelled),
    "row": int64 (row of ``campaign.particles``)}``.

    With ``pipeline=None`` the images stay decoded uint8 and the dataset fetches whole
    batches (``__getitems__``, used by the DataLoader with :func:`already_collated`):
    ``{"image": uint8 (B, S, S, 3), "label": (B,), "row": (B,)}``, for
    :class:`~plankflux.data.batch_transforms.BatchImageTransform` on the device.
    """

    def __init__(
        self,
        rows: np.ndarray,
        labels: np.ndarray,
        images: ResizedImages,
        pipeline: Callable[[np.ndarray], torch.Tensor] | None,
    ):
        self.rows = np.asarray(rows, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.images = images
        self.pipeline = pipeline

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def batched(self) -> bool:
        """Whether items are fetched a batch at a time, as uint8 (``pipeline=None``)."""
        return self.pipeline is None

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | int]:
        row = int(self.rows[i])
        image = self.images[row]
        return {
            "image": torch.from_numpy(image.copy()) if self.batched else self.pipeline(image),
            "label": int(self.labels[i]),
            "row": row,
        }

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """A whole batch (``pipeline=None`` only; see the class docstring)."""
        if not self.batched:
            return [self[i] for i in indices]  # the DataLoader then collates as usual
        index = np.asarray(indices, dtype=np.int64)
        rows = self.rows[index]
        return {
            "image": torch.from_numpy(self.images.take(rows)),
            "label": torch.from_numpy(self.labels[index]),
            "row": torch.from_numpy(rows),
        }
