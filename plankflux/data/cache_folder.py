"""What a cache folder (``data.cache_dir``) holds, and removing what is no longer used.

Two kinds of entries can share one folder, each a few files named by the first 16 hex
digits ``K`` of its key (a new key whenever the source files or the settings change, so
old entries stay behind until removed):

* decoded images (:mod:`plankflux.data.image_cache`): ``K.u8`` and its mark ``K.json``;
* prepared CytoSense pairs (:mod:`plankflux.data.pair_cache`): ``K.img.u8``,
  ``K.prof.f32``, ``K.size.f32`` and the mark ``K.pairs.json``.

A run that opens an entry touches its mark (:func:`touch_mark`; so does every loader
worker that maps it), so the mark's modification time is the entry's last use. Files of
a build that never finished (no mark) count from their newest file, as do temporary
files of builds (``.K…tmp``). Whatever was used or written in the last
:data:`IN_USE_GRACE_S` is never removed: a run or a build may be using it.
Only files named like cache files directly inside the folder are ever listed or
removed: nothing else there, and nothing in sub-folders.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

_ENTRY_FILE = re.compile(
    r"^(?P<key>[0-9a-f]{16})\.(?P<part>u8|json|img\.u8|prof\.f32|size\.f32|pairs\.json)$"
)
_BUILD_FILE = re.compile(r"^\.(?P<key>[0-9a-f]{16})\..*\.tmp$")
_MARKS = {"json": "images", "pairs.json": "pairs"}
IN_USE_GRACE_S = 24 * 3600.0


@dataclass(frozen=True)
class CacheEntry:
    """One key's files: ``kind`` is ``images``, ``pairs``, ``unfinished`` (no mark) or
    ``leftover`` (temporary files of a build); ``last_used`` in seconds since the epoch."""

    key: str
    kind: str
    files: tuple[Path, ...]
    size_bytes: int
    last_used: float
    description: str
    mark: Path | None = None  # the completion mark, whose mtime is ``last_used``


def touch_mark(mark: Path) -> None:
    """Record a use of the entry whose completion mark is ``mark`` (its mtime). A
    read-only cache folder is used as it is."""
    try:
        os.utime(mark)
    except OSError:
        pass


def _describe(kind: str, mark: Path) -> str:
    try:
        meta = json.loads(mark.read_text())
    except (OSError, ValueError):
        return "mark unreadable"
    if not isinstance(meta, dict):
        return "mark unreadable"
    source = f" of {meta['source']}" if meta.get("source") else ""
    if kind == "images":
        return (
            f"{meta.get('n', '?')} images{source}, {meta.get('size', '?')} px, "
            f"{meta.get('mode', '?')}"
        )
    shape = meta.get("shapes", {}).get("image", ["?"] * 4)
    return f"{shape[0]} pairs{source}, images {shape[-1]} px"


def cache_entries(cache_dir: str | os.PathLike) -> list[CacheEntry]:
    """The entries in ``cache_dir`` (none if it does not exist), least recently used first."""
    folder = Path(cache_dir)
    groups: dict[tuple[str, bool], list[tuple[Path, os.stat_result, str]]] = {}
    if not folder.is_dir():
        return []
    for path in folder.iterdir():
        match = _ENTRY_FILE.match(path.name) or _BUILD_FILE.match(path.name)
        try:
            if match is None or not path.is_file():
                continue
            stat = path.stat()
        except FileNotFoundError:  # renamed or removed meanwhile by a build or a prune
            continue
        part = match.groupdict().get("part")
        groups.setdefault((match["key"], part is None), []).append((path, stat, part))
    entries = []
    for (key, building), files in groups.items():
        marks = [(path, stat, _MARKS[part]) for path, stat, part in files if part in _MARKS]
        kind, last = "unfinished", max(stat.st_mtime for _, stat, _ in files)
        description, mark = "no completion mark", None
        if building:
            kind, description = "leftover", "files of a build"
        elif marks:
            mark, stat, kind = marks[0]
            last, description = stat.st_mtime, _describe(kind, mark)
        entries.append(
            CacheEntry(
                key,
                kind,
                tuple(sorted(path for path, _, _ in files)),
                sum(stat.st_size for _, stat, _ in files),
                last,
                description,
                mark,
            )
        )
    return sorted(entries, key=lambda e: (e.last_used, e.key, e.kind))


def stale_entries(
    cache_dir: str | os.PathLike, unused_for_s: float, now: float | None = None
) -> list[CacheEntry]:
    """The entries of ``cache_dir`` last used more than ``max(unused_for_s,
    IN_USE_GRACE_S)`` seconds before ``now``."""
    now = time.time() if now is None else now
    limit = max(unused_for_s, IN_USE_GRACE_S)
    return [entry for entry in cache_entries(cache_dir) if now - entry.last_used > limit]


def remove_entries(entries: list[CacheEntry]) -> list[CacheEntry]:
    """Delete the entries' files (mark first, so a half-removed entry is never used),
    except those of an entry used since it was listed (a run opened it meanwhile: its
    mark, or for an entry without one its newest file, is newer). Returns the entries
    removed."""
    removed = []
    for entry in entries:
        watched = [entry.mark] if entry.mark is not None else entry.files
        try:
            if max(path.stat().st_mtime for path in watched) > entry.last_used:
                continue
        except FileNotFoundError:  # another process is removing it
            continue
        for path in sorted(entry.files, key=lambda p: not p.name.endswith("json")):
            path.unlink(missing_ok=True)
        removed.append(entry)
    return removed
