"""A cache folder's entries, their last use, and `plankflux cache list|prune`."""

from __future__ import annotations

import os
import pickle
import time

import numpy as np
import pytest
from PIL import Image

from plankflux.cli.main import main
from plankflux.data.cache_folder import (
    IN_USE_GRACE_S,
    cache_entries,
    remove_entries,
    stale_entries,
)
from plankflux.data.cytosense import load_pairs
from plankflux.data.cytosense_batch_transforms import PairPrepare
from plankflux.data.image_cache import ensure_image_cache
from plankflux.data.pair_cache import ensure_pair_cache
from plankflux.synthetic.cytosense import generate_cytosense

DAY = 86400.0


@pytest.fixture
def cache_dir(tmp_path):
    """Three complete entries (images 8 px pad, 8 px resize; pairs), one unfinished,
    one build leftover, and files that are not the cache's."""
    images = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((5 + i, 7, 3), 40 * i, dtype=np.uint8)).save(path)
        images.append(path)
    cache = tmp_path / "cache"
    ensure_image_cache(cache, images, 8, "pad")
    ensure_image_cache(cache, images, 8, "resize")
    root = generate_cytosense(tmp_path / "synthetic_lab", kind="lab", scale="tiny", seed=0)
    ensure_pair_cache(cache, load_pairs(root), np.array([0, 1]), PairPrepare(34, 34))
    (cache / "00000000000000aa.u8").write_bytes(b"x" * 10)  # a build that never finished
    (cache / ".00000000000000bb.u8.k3j2.tmp").write_bytes(b"y" * 7)  # a build's temp file
    (cache / "notes.txt").write_text("mine")
    (cache / "0123456789abcdef.txt").write_text("mine too")
    (cache / "sub").mkdir()
    (cache / "sub" / "0123456789abcdef.u8").write_bytes(b"x")
    return cache


def _age(entry, days: float) -> None:
    """Make ``entry`` look last used ``days`` ago."""
    when = time.time() - days * DAY
    for path in entry.files:
        os.utime(path, (when, when))


def test_entries_are_grouped_by_key_and_kind_with_their_sizes(cache_dir):
    entries = cache_entries(cache_dir)
    kinds = sorted(e.kind for e in entries)
    assert kinds == ["images", "images", "leftover", "pairs", "unfinished"]
    by_kind = {e.kind: e for e in entries}
    pairs = by_kind["pairs"]
    root = cache_dir.parent / "synthetic_lab"
    assert len(pairs.files) == 4 and pairs.description == f"2 pairs of {root}, images 34 px"
    assert pairs.size_bytes == sum(p.stat().st_size for p in pairs.files)
    descriptions = sorted(e.description for e in entries if e.kind == "images")
    images = cache_dir.parent  # the images' common folder
    assert descriptions == [
        f"3 images of {images}, 8 px, pad",
        f"3 images of {images}, 8 px, resize",
    ]
    assert by_kind["unfinished"].size_bytes == 10 and by_kind["leftover"].size_bytes == 7
    assert cache_entries(cache_dir / "nowhere") == []


def test_opening_an_entry_counts_as_a_use(cache_dir, tmp_path):
    (old,) = [e for e in cache_entries(cache_dir) if e.description.endswith("pad")]
    _age(old, 10)
    images = [tmp_path / f"{i}.png" for i in range(3)]
    handle = ensure_image_cache(cache_dir, images, 8, "pad")  # a run opens it again
    (now,) = [e for e in cache_entries(cache_dir) if e.key == old.key]
    assert time.time() - now.last_used < 60
    # so does each loader worker that maps it (a long run's workers reopen per epoch)
    _age(now, 10)
    assert pickle.loads(pickle.dumps(handle)).array.shape == (3, 8, 8, 3)
    (again,) = [e for e in cache_entries(cache_dir) if e.key == old.key]
    assert time.time() - again.last_used < 60
    (pairs,) = [e for e in cache_entries(cache_dir) if e.kind == "pairs"]
    _age(pairs, 10)
    root = tmp_path / "synthetic_lab"
    pair_handle = ensure_pair_cache(
        cache_dir, load_pairs(root), np.array([0, 1]), PairPrepare(34, 34)
    )
    _age(pairs, 10)
    pickle.loads(pickle.dumps(pair_handle)).arrays()
    (pairs_now,) = [e for e in cache_entries(cache_dir) if e.kind == "pairs"]
    assert time.time() - pairs_now.last_used < 60


def test_stale_entries_go_and_nothing_else_is_touched(cache_dir):
    entries = {e.kind + e.description.split(",")[-1]: e for e in cache_entries(cache_dir)}
    for name, days in [
        ("images pad", 10),
        ("pairs images 34 px", 3),
        ("unfinishedno completion mark", 10),
        ("leftoverfiles of a build", 0.5),  # a build may still be writing it
    ]:
        _age(entries[name], days)
    stale = stale_entries(cache_dir, unused_for_s=5 * DAY)
    assert sorted(e.kind for e in stale) == ["images", "unfinished"]
    assert remove_entries(stale) == stale
    left = sorted(e.kind for e in cache_entries(cache_dir))
    assert left == ["images", "leftover", "pairs"]
    assert sorted(p.name for p in cache_dir.iterdir() if not p.name[0].isalnum()) == [
        ".00000000000000bb.u8.k3j2.tmp"
    ]
    assert (cache_dir / "notes.txt").exists() and (cache_dir / "0123456789abcdef.txt").exists()
    assert (cache_dir / "sub" / "0123456789abcdef.u8").exists()
    # 0 days: whatever was used or written in the last day stays (a run may use it)
    assert sorted(e.kind for e in stale_entries(cache_dir, 0)) == ["pairs"]
    later = time.time() + IN_USE_GRACE_S + 60
    assert len(stale_entries(cache_dir, 0, now=later)) == 3


def test_an_entry_opened_after_it_was_listed_is_kept(cache_dir):
    (pairs,) = [e for e in cache_entries(cache_dir) if e.kind == "pairs"]
    _age(pairs, 40)
    (stale,) = [e for e in stale_entries(cache_dir, 30 * DAY) if e.kind == "pairs"]
    mark = next(p for p in pairs.files if p.name.endswith(".pairs.json"))
    os.utime(mark)  # a run opens it between the listing and the removal
    assert remove_entries([stale]) == []
    assert all(p.exists() for p in pairs.files)


def test_cli_lists_prunes_and_dry_runs(cache_dir, capsys):
    assert main(["cache", "list", str(cache_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 6 and out[-1].startswith("5 entries, ")
    assert any("pairs" in line and "2 pairs of " in line for line in out)
    (pairs,) = [e for e in cache_entries(cache_dir) if e.kind == "pairs"]
    _age(pairs, 40)
    assert main(["cache", "prune", str(cache_dir), "--unused-days", "30", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"would remove {pairs.key}  pairs") and "nothing removed" in out
    assert all(p.exists() for p in pairs.files)
    assert main(["cache", "prune", str(cache_dir), "--unused-days", "30"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"removed {pairs.key}") and "removed 1 entry, " in out
    assert not any(p.exists() for p in pairs.files)
    assert main(["cache", "prune", str(cache_dir / "none"), "--unused-days", "1"]) == 1
    assert "is not a folder" in capsys.readouterr().err
    assert main(["cache", "prune", str(cache_dir), "--unused-days", "-1"]) == 1
    assert "--unused-days must be a number >= 0, got -1" in capsys.readouterr().err
    assert main(["cache", "prune", str(cache_dir), "--unused-days", "nan"]) == 1
    capsys.readouterr()
    # everything left was used today: kept, and said so
    assert main(["cache", "prune", str(cache_dir), "--unused-days", "0"]) == 0
    assert (
        capsys.readouterr().out
        == "removed 0 entries, 0 B freed; 4 entries kept: used in the last day\n"
    )
    empty = cache_dir.parent / "empty"
    empty.mkdir()
    assert main(["cache", "list", str(empty)]) == 0
    assert "no cache files here: is this the cache folder" in capsys.readouterr().out


def test_a_copied_cache_folder_prunes_as_its_dry_run_says(cache_dir, tmp_path, capsys):
    # cp writes the mark before the data file: the data file is newer than the mark
    (pairs,) = [e for e in cache_entries(cache_dir) if e.kind == "pairs"]
    when = time.time() - 40 * DAY
    for path in pairs.files:
        os.utime(path, (when + (0 if path == pairs.mark else 5), when))
    assert main(["cache", "prune", str(cache_dir), "--unused-days", "30", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith(f"would remove {pairs.key}")
    assert main(["cache", "prune", str(cache_dir), "--unused-days", "30"]) == 0
    assert capsys.readouterr().out.startswith(f"removed {pairs.key}")
    assert not any(p.exists() for p in pairs.files)
