"""A decoded cache of CytoSense training pairs (memory-mapped), for the batched path.

Reading a PNG and parsing a profile CSV per pair and epoch bounds Paper B's training
on a GPU. With ``data.device_transforms=true`` and ``data.cache_dir`` set, the training
pairs' deterministic preparation (:class:`~plankflux.data.cytosense_batch_transforms.PairPrepare`)
is done once and kept in three raw arrays, so a training batch is three array indexings:

* ``K.img.u8``   ``(N, 1, P, P)`` uint8: the bar-cropped, edge-padded image × 255,
  rounded (the per-pair path keeps floats: the difference is below half a grey level);
* ``K.prof.f32`` ``(N, 6, PL)`` float32: the log-compressed profile resampled to ``PL``;
* ``K.size.f32`` ``(N, 3)`` float32: raw image (H, W) and profile length / 224;
* ``K.pairs.json`` written last, the completion mark (``K``: 16 hex digits of the key).

The key covers every image and profile file (path, size, mtime) in order and the
preparation settings, as the image cache's does (:func:`~plankflux.data.image_cache.files_key`).
"""

from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from plankflux.data.cache_folder import touch_mark
from plankflux.data.cytosense import CytoSensePairs, read_profile
from plankflux.data.cytosense_batch_transforms import PairPrepare
from plankflux.data.image_cache import default_workers, files_key
from plankflux.data.images import as_grey, open_image
from plankflux.utils.atomic import atomic_open

PAIR_CACHE_VERSION = 1
_PARTS = {"image": ("img.u8", np.uint8), "profile": ("prof.f32", np.float32)}
_PARTS["sizes"] = ("size.f32", np.float32)


class PairCache:
    """Handle on a complete pair cache: ``arrays()`` maps ``image``, ``profile`` and
    ``sizes`` to read-only memmaps. Pickles as paths and shapes (workers reopen)."""

    def __init__(self, files: dict[str, Path], shapes: dict[str, tuple[int, ...]]):
        self.files, self.shapes = files, shapes
        self._arrays: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.shapes["image"][0]

    def arrays(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            self._arrays = {
                name: np.memmap(self.files[name], dtype=_PARTS[name][1], mode="r", shape=shape)
                if shape[0]
                else np.zeros(shape, _PARTS[name][1])
                for name, shape in self.shapes.items()
            }
            touch_mark(_mark(self.files["image"]))  # each (worker's) opening is a use
        return self._arrays

    def __getstate__(self) -> dict:
        return {"files": self.files, "shapes": self.shapes, "_arrays": None}


def _mark(image_file: Path) -> Path:
    """``K.pairs.json`` beside ``K.img.u8``: the entry's completion mark."""
    return image_file.with_name(image_file.name.split(".")[0] + ".pairs.json")


def _prepared(pairs: CytoSensePairs, row: int, prepare: PairPrepare) -> dict:
    image = np.asarray(as_grey(open_image(pairs.image_path(row))))
    return prepare(image, read_profile(pairs.profile_path(row)))


def ensure_pair_cache(
    cache_dir: str | os.PathLike,
    pairs: CytoSensePairs,
    rows: np.ndarray,
    prepare: PairPrepare,
    workers: int | None = None,
) -> PairCache:
    """Open the cache of ``pairs``' ``rows`` prepared by ``prepare``, building it first
    when absent or stale (decoding in a thread pool; files renamed into place, the
    ``.pairs.json`` mark written last, so a crashed build is never used)."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    rows = [int(r) for r in rows]
    paths = [p for r in rows for p in (pairs.image_path(r), pairs.profile_path(r))]
    settings = [
        PAIR_CACHE_VERSION,
        prepare.image_pad_size,
        prepare.profile_pad_length,
        prepare.scale_bar_px,
        prepare.size_unit,
    ]
    key = files_key(paths, settings)[:16]
    n, size, length = len(rows), prepare.image_pad_size, prepare.profile_pad_length
    shapes = {"image": (n, 1, size, size), "profile": (n, 6, length), "sizes": (n, 3)}
    files = {name: cache_dir / f"{key}.{suffix}" for name, (suffix, _) in _PARTS.items()}
    mark = _mark(files["image"])
    expected = {"version": PAIR_CACHE_VERSION, "shapes": {k: list(v) for k, v in shapes.items()}}
    try:
        meta = json.loads(mark.read_text())
        meta.pop("source", None)  # what it was built from, for `plankflux cache list`
        complete = meta == expected and all(
            files[k].stat().st_size == int(np.prod(s)) * np.dtype(_PARTS[k][1]).itemsize
            for k, s in shapes.items()
        )
    except (OSError, ValueError, AttributeError):  # unreadable, or not a JSON object
        complete = False
    if not complete:
        mark.unlink(missing_ok=True)
        _build(files, shapes, pairs, rows, prepare, workers)
        with atomic_open(mark) as handle:
            json.dump({**expected, "source": str(pairs.root)}, handle)
    else:
        touch_mark(mark)  # the entry's last use, for `plankflux cache prune`
    return PairCache(files, shapes)


def _build(files, shapes, pairs, rows, prepare, workers) -> None:
    temporary = {}
    try:
        for name, path in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            temporary[name] = Path(tmp)
        if rows:
            out = {
                name: np.memmap(temporary[name], dtype=_PARTS[name][1], mode="w+", shape=shape)
                for name, shape in shapes.items()
            }
            with ThreadPoolExecutor(workers or default_workers()) as pool:
                items = pool.map(lambda r: _prepared(pairs, r, prepare), rows)
                for i, item in enumerate(items):
                    out["image"][i] = np.rint(item["image"].numpy() * 255.0)
                    out["profile"][i] = item["profile"].numpy()
                    out["sizes"][i] = np.concatenate(
                        [item["image_size"].numpy(), item["profile_length"].numpy()]
                    )
            for array in out.values():
                array.flush()
            del out
        for name, path in files.items():
            os.replace(temporary[name], path)
    finally:
        for tmp in temporary.values():
            tmp.unlink(missing_ok=True)
