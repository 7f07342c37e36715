"""An optional on-disk cache of decoded, resized images (memory-mapped uint8).

Decoding JPEGs dominates an epoch on CPUs, and each of the 5 members × several
treatments of Paper A decodes the same campaign again. The cache decodes every
image once into one raw ``(N, S, S, 3)`` uint8 file and memory-maps it afterwards
(the OS page cache then serves all runs and DataLoader workers).

Files in ``cache_dir`` (``K`` = the first 16 hex digits of the key):

* ``K.u8``   raw array, C order, ``N * S * S * 3`` bytes;
* ``K.json`` ``{"format", "key", "n", "size", "mode", "shape", "completed": true}``.

The key is a sha256 over the format version, ``size``, ``mode`` and, for every path
in order, its absolute path, file size and ``mtime_ns``: editing, replacing,
reordering or adding an image, or changing the size or resize mode, gives a new key
and so a rebuild. A build writes to a temporary file and renames it into place,
then writes the ``.json`` last; a cache counts only when its ``.json`` says it is
complete and the ``.u8`` has the right length, so a crashed build is never reused.
Two processes building the same key at once both produce identical files; the
renames are atomic, so either result is fine.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from plankflux.data.cache_folder import touch_mark
from plankflux.data.transforms import check_resize_mode, load_resized
from plankflux.utils.atomic import atomic_open

CACHE_FORMAT_VERSION = 2  # 2: 16-bit images scaled to 8 bits (they decoded white before)


class UnreadableImageError(OSError):
    """An image could not be decoded; ``path`` names it."""

    def __init__(self, path: Path, cause: BaseException):
        self.path = Path(path)
        super().__init__(f"cannot read image {self.path}: {type(cause).__name__}: {cause}")


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _load_one(path: Path, size: int, mode: str) -> np.ndarray:
    try:
        # Looked up at call time so tests can patch ``image_cache.load_resized``.
        return load_resized(path, size, mode)
    except Exception as err:  # PIL raises many types for damaged files
        raise UnreadableImageError(path, err) from err


def iter_resized(
    paths: Sequence[Path],
    size: int,
    mode: str,
    workers: int | None = None,
    progress: bool = False,
    desc: str = "decoding images",
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(i, load_resized(paths[i]))`` in order, decoding in a thread pool.

    PIL releases the GIL while decoding and resizing, so threads scale on CPUs.
    At most ``4 * workers`` images are in flight, so memory stays bounded for any
    campaign size. Raises :class:`UnreadableImageError` naming the first bad file.
    """
    check_resize_mode(mode)
    workers = default_workers() if workers is None else max(1, int(workers))
    bar = tqdm(total=len(paths), desc=desc, unit="img", disable=not progress)
    window: deque[tuple[int, Future]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for i, path in enumerate(paths):
            window.append((i, pool.submit(_load_one, Path(path), size, mode)))
            if len(window) >= 4 * workers:
                j, future = window.popleft()
                yield j, future.result()
                bar.update()
        while window:
            j, future = window.popleft()
            yield j, future.result()
            bar.update()
    finally:
        # On an error or an early exit, do not decode the rest.
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()


def cache_key(paths: Sequence[Path], size: int, mode: str) -> str:
    """The full sha256 hex key of a cache for these images, size and resize mode."""
    check_resize_mode(mode)
    return files_key(paths, [CACHE_FORMAT_VERSION, int(size), mode])


def files_key(paths: Sequence[Path], settings: list) -> str:
    """sha256 hex over ``settings`` (JSON) and every file's absolute path, size and
    ``mtime_ns``, in order: any edited, replaced, reordered or added file changes it."""
    digest = hashlib.sha256()
    digest.update(json.dumps(settings).encode())
    for path in paths:
        absolute = os.path.abspath(path)
        try:
            st = os.stat(absolute)
        except OSError as err:
            raise UnreadableImageError(Path(absolute), err) from err
        digest.update(f"\n{absolute}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return digest.hexdigest()


class DecodedImageCache:
    """A handle on one complete cache file; ``array`` is the ``(N, S, S, 3)`` memmap.

    Pickles as its path and shape only (the memmap is reopened lazily), so it can be
    handed to DataLoader workers under any start method without copying the data.
    """

    def __init__(self, file: Path, shape: tuple[int, int, int, int], key: str):
        self.file = Path(file)
        self.shape = tuple(int(s) for s in shape)
        self.key = key
        self._array: np.memmap | None = None

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            if self.shape[0] == 0:  # np.memmap cannot map an empty file
                return np.zeros(self.shape, dtype=np.uint8)
            self._array = np.memmap(self.file, dtype=np.uint8, mode="r", shape=self.shape)
            touch_mark(self.file.with_suffix(".json"))  # each (worker's) opening is a use
        return self._array

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int) -> np.ndarray:
        """The ``(S, S, 3)`` uint8 image ``index`` (a read-only view)."""
        return self.array[index]

    def __getstate__(self) -> dict:
        return {"file": self.file, "shape": self.shape, "key": self.key, "_array": None}

    def __repr__(self) -> str:
        return f"DecodedImageCache({self.file}, shape={self.shape})"


def _files(cache_dir: Path, key: str) -> tuple[Path, Path]:
    return cache_dir / f"{key[:16]}.u8", cache_dir / f"{key[:16]}.json"


def _complete(data_file: Path, meta_file: Path, key: str, shape: tuple[int, ...]) -> bool:
    try:
        meta = json.loads(meta_file.read_text())
        size_ok = data_file.stat().st_size == int(np.prod(shape))
    except (OSError, ValueError):
        return False
    return (
        size_ok
        and meta.get("completed") is True
        and meta.get("key") == key
        and tuple(meta.get("shape", ())) == shape
    )


def _build(
    data_file: Path,
    paths: Sequence[Path],
    size: int,
    mode: str,
    progress: bool,
    workers: int | None,
) -> None:
    """Decode every image into a temporary file, then rename it onto ``data_file``."""
    shape = (len(paths), size, size, 3)
    fd, tmp = tempfile.mkstemp(prefix=f".{data_file.name}.", suffix=".tmp", dir=data_file.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        if shape[0]:
            out = np.memmap(tmp_path, dtype=np.uint8, mode="w+", shape=shape)
            desc = f"caching {len(paths)} images ({mode}, {size}px)"
            for i, image in iter_resized(paths, size, mode, workers, progress, desc):
                out[i] = image
            out.flush()
            del out
        os.replace(tmp_path, data_file)
    finally:
        tmp_path.unlink(missing_ok=True)


def ensure_image_cache(
    cache_dir: str | os.PathLike,
    paths: Sequence[str | os.PathLike],
    size: int,
    mode: str,
    progress: bool = False,
    workers: int | None = None,
) -> DecodedImageCache:
    """Open the cache for ``paths`` at ``size`` and ``mode``, building it if needed.

    Reopening a complete cache costs one ``stat`` per image (for the key) and no
    decoding. Raises :class:`UnreadableImageError` naming a missing or undecodable
    image; filter those out first (``load_campaign(..., skip_unreadable=True)``).
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = [Path(p) for p in paths]
    size = int(size)
    key = cache_key(paths, size, mode)
    shape = (len(paths), size, size, 3)
    data_file, meta_file = _files(cache_dir, key)
    if not _complete(data_file, meta_file, key, shape):
        meta_file.unlink(missing_ok=True)  # whatever was there is not trusted any more
        _build(data_file, paths, size, mode, progress, workers)
        meta = {
            "format": CACHE_FORMAT_VERSION,
            "key": key,
            "n": len(paths),
            "size": size,
            "mode": mode,
            "shape": list(shape),
            "source": os.path.commonpath([str(p) for p in paths]) if paths else "",
            "completed": True,
        }
        with atomic_open(meta_file) as handle:  # written last: the completion mark
            json.dump(meta, handle, indent=1)
    else:
        touch_mark(meta_file)  # the entry's last use, for `plankflux cache prune`
    return DecodedImageCache(data_file, shape, key)


def open_image_cache(
    cache_dir: str | os.PathLike,
    paths: Sequence[str | os.PathLike],
    size: int,
    mode: str,
    progress: bool = False,
    workers: int | None = None,
) -> np.ndarray:
    """The ``(N, size, size, 3)`` uint8 read-only memmap of ``paths`` in order.

    Built on first use (see :func:`ensure_image_cache`); ``N == 0`` gives an empty
    in-memory array.
    """
    return ensure_image_cache(cache_dir, paths, size, mode, progress, workers).array
