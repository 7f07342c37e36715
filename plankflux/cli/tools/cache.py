"""``plankflux cache list|prune DIR``: what a cache folder (``data.cache_dir``) holds, and
removing the entries no run has used for a while.

Every change of a campaign's files or of the image size/resize mode builds a new entry
(the decoded images of a 224-px RR campaign are about 4.5 GB), and old ones are never
reused; ``prune`` deletes those not opened for ``--unused-days`` days. Only cache files
are touched (:mod:`plankflux.data.cache_folder`); campaigns, images and labels never.
"""

from __future__ import annotations

import argparse
import math
import time

from plankflux.errors import PlankfluxError

EMPTY_HINT = (
    "no cache files here: is this the cache folder (data.cache_dir; by default "
    "$PLANKFLUX_CACHE_DIR, else .cache inside the data folder, $PLANKFLUX_DATA_DIR/.cache)?"
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "cache",
        help="list a cache folder (data.cache_dir) or remove its unused entries",
        description="Decoded-image and prepared-pair caches: list them, or remove the "
        "entries that no run has opened for some days (a run opening an entry counts as "
        "a use). Only cache files are ever removed.",
    )
    verbs = parser.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    listing = verbs.add_parser("list", help="one line per entry, least recently used first")
    listing.add_argument("cache_dir", help="the cache folder (data.cache_dir)")
    listing.set_defaults(func=run_list)
    prune = verbs.add_parser("prune", help="remove the entries unused for --unused-days days")
    prune.add_argument("cache_dir", help="the cache folder (data.cache_dir)")
    prune.add_argument(
        "--unused-days",
        type=float,
        required=True,
        help="remove entries last used more than this many days ago; whatever was used "
        "in the last day is always kept (a run may be using it)",
    )
    prune.add_argument("--dry-run", action="store_true", help="only say what would go")
    prune.set_defaults(func=run_prune)


def _size(n_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def _line(entry, now: float) -> str:
    days = (now - entry.last_used) / 86400
    return (
        f"{entry.key}  {entry.kind:10s} {_size(entry.size_bytes):>9s}  "
        f"last used {days:6.1f} days ago  {entry.description}"
    )


def _existing(folder: str):
    from pathlib import Path

    if not Path(folder).is_dir():
        raise PlankfluxError(f"{folder} is not a folder (the cache folder, data.cache_dir)")
    return folder


def _entries(n: int) -> str:
    return f"{n} entr{'y' if n == 1 else 'ies'}"


def run_list(args: argparse.Namespace) -> int:
    from plankflux.data.cache_folder import cache_entries

    entries = cache_entries(_existing(args.cache_dir))
    now = time.time()
    for entry in entries:
        print(_line(entry, now))
    total = sum(e.size_bytes for e in entries)
    print(f"{_entries(len(entries))}, {_size(total)} in {args.cache_dir}")
    if not entries:
        print(EMPTY_HINT)
    return 0


def run_prune(args: argparse.Namespace) -> int:
    from plankflux.data.cache_folder import (
        IN_USE_GRACE_S,
        cache_entries,
        remove_entries,
        stale_entries,
    )

    if not math.isfinite(args.unused_days) or args.unused_days < 0:
        raise PlankfluxError(f"--unused-days must be a number >= 0, got {args.unused_days:g}")
    now, unused_s = time.time(), args.unused_days * 86400
    folder = _existing(args.cache_dir)
    stale = stale_entries(folder, unused_s, now)
    recent = [  # unused long enough, but within the last day: a run may be using them
        e for e in cache_entries(folder) if unused_s < now - e.last_used <= IN_USE_GRACE_S
    ]
    kept = f"; {_entries(len(recent))} kept: used in the last day" if recent else ""
    if args.dry_run:
        for entry in stale:
            print("would remove " + _line(entry, now))
        total = _size(sum(e.size_bytes for e in stale))
        print(f"{_entries(len(stale))}, {total} would be freed{kept} (dry run: nothing removed)")
        return 0
    removed = remove_entries(stale)
    for entry in removed:
        print("removed " + _line(entry, now))
    for entry in stale:
        if entry not in removed:
            print("kept " + _line(entry, now) + " (a run opened it meanwhile)")
    freed = _size(sum(e.size_bytes for e in removed))
    print(f"removed {_entries(len(removed))}, {freed} freed{kept}")
    return 0
