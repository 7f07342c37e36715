"""The memory-mapped cache of decoded, resized images."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from plankflux.data import image_cache
from plankflux.data.image_cache import (
    UnreadableImageError,
    cache_key,
    ensure_image_cache,
    open_image_cache,
)
from plankflux.data.transforms import load_resized

SIZES = [(12, 7), (20, 20), (5, 30), (9, 9), (40, 3)]


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    paths = []
    for i, (w, h) in enumerate(SIZES):
        path = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def builds(monkeypatch):
    """Count cache builds."""
    counter = {"n": 0}
    real = image_cache._build

    def counting(*args, **kwargs):
        counter["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(image_cache, "_build", counting)
    return counter


def _cache_files(cache_dir):
    return sorted(p.name for p in cache_dir.iterdir())


@pytest.mark.parametrize("mode", ["resize", "pad"])
def test_cache_equals_load_resized(tmp_path, images, mode):
    arr = open_image_cache(tmp_path / "cache", images, 16, mode, workers=3)
    assert isinstance(arr, np.memmap) and arr.shape == (5, 16, 16, 3) and arr.dtype == np.uint8
    for i, path in enumerate(images):
        np.testing.assert_array_equal(arr[i], load_resized(path, 16, mode))
    key = cache_key(images, 16, mode)
    meta = json.loads((tmp_path / "cache" / f"{key[:16]}.json").read_text())
    assert meta["completed"] is True and meta["key"] == key
    assert meta["shape"] == [5, 16, 16, 3] and meta["mode"] == mode and meta["size"] == 16
    assert _cache_files(tmp_path / "cache") == [f"{key[:16]}.json", f"{key[:16]}.u8"]


def test_second_open_reuses(tmp_path, images, builds):
    cache_dir = tmp_path / "cache"
    first = open_image_cache(cache_dir, images, 16, "pad")
    data_file = cache_dir / f"{cache_key(images, 16, 'pad')[:16]}.u8"
    stamp = data_file.stat().st_mtime_ns
    second = open_image_cache(cache_dir, images, 16, "pad")
    assert builds["n"] == 1
    assert data_file.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(first, second)


def test_changes_give_new_key_and_rebuild(tmp_path, images, builds):
    cache_dir = tmp_path / "cache"
    base = cache_key(images, 16, "pad")
    open_image_cache(cache_dir, images, 16, "pad")

    assert cache_key(images, 17, "pad") != base
    assert cache_key(images, 16, "resize") != base
    assert cache_key(images[::-1], 16, "pad") != base
    assert cache_key(images[:4], 16, "pad") != base
    open_image_cache(cache_dir, images, 17, "pad")
    open_image_cache(cache_dir, images, 16, "resize")
    assert builds["n"] == 3

    # touching an image (same content, new mtime) changes the key
    st = images[1].stat()
    os.utime(images[1], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert cache_key(images, 16, "pad") != base
    open_image_cache(cache_dir, images, 16, "pad")
    assert builds["n"] == 4

    # rewriting an image: the cache shows the new pixels
    Image.fromarray(np.full((6, 6, 3), 77, dtype=np.uint8)).save(images[2])
    arr = open_image_cache(cache_dir, images, 16, "pad")
    assert builds["n"] == 5
    np.testing.assert_array_equal(arr[2], load_resized(images[2], 16, "pad"))
    assert (arr[2][5:11, 5:11] == 77).all()


def test_crash_mid_build_leaves_no_cache(tmp_path, images, monkeypatch, builds):
    cache_dir = tmp_path / "cache"
    real = image_cache.load_resized

    def flaky(path, size, mode):
        if path == images[2]:
            raise RuntimeError("disk went away")
        return real(path, size, mode)

    with monkeypatch.context() as m:
        m.setattr(image_cache, "load_resized", flaky)
        with pytest.raises(UnreadableImageError, match="2.png.*disk went away"):
            open_image_cache(cache_dir, images, 16, "resize", workers=2)
    assert _cache_files(cache_dir) == []  # no .json, no .u8, no temporary file

    arr = open_image_cache(cache_dir, images, 16, "resize")
    assert builds["n"] == 2
    for i, path in enumerate(images):
        np.testing.assert_array_equal(arr[i], load_resized(path, 16, "resize"))


def test_incomplete_cache_is_rebuilt(tmp_path, images, builds):
    cache_dir = tmp_path / "cache"
    open_image_cache(cache_dir, images, 16, "resize")
    key = cache_key(images, 16, "resize")[:16]
    data_file = cache_dir / f"{key}.u8"
    with open(data_file, "r+b") as handle:  # a truncated data file is not trusted
        handle.truncate(100)
    arr = open_image_cache(cache_dir, images, 16, "resize")
    assert builds["n"] == 2 and data_file.stat().st_size == arr.nbytes
    meta_file = cache_dir / f"{key}.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "completed": False}))
    open_image_cache(cache_dir, images, 16, "resize")
    assert builds["n"] == 3


def test_unreadable_image_named(tmp_path, images):
    bad = images[0].parent / "bad.png"
    bad.write_bytes(b"\x89PNG garbage")
    with pytest.raises(UnreadableImageError, match="bad.png") as info:
        open_image_cache(tmp_path / "cache", [*images, bad], 16, "pad")
    assert info.value.path == bad
    with pytest.raises(UnreadableImageError, match="missing.png"):
        open_image_cache(tmp_path / "cache", [images[0].parent / "missing.png"], 16, "pad")
    assert not any((tmp_path / "cache").glob("*.json"))


def test_handle_pickles_without_data(tmp_path, images):
    handle = ensure_image_cache(tmp_path / "cache", images, 32, "pad")
    blob = pickle.dumps(handle)
    assert len(blob) < 1000  # path and shape only, not 5 * 32 * 32 * 3 bytes
    copy = pickle.loads(blob)
    assert len(copy) == 5
    np.testing.assert_array_equal(copy[3], handle.array[3])


def test_empty_and_bad_mode(tmp_path):
    arr = open_image_cache(tmp_path / "cache", [], 8, "pad")
    assert arr.shape == (0, 8, 8, 3) and arr.dtype == np.uint8
    with pytest.raises(ValueError, match="unknown resize mode"):
        open_image_cache(tmp_path / "cache", [], 8, "stretch")
