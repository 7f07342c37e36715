"""Atomic file writes: a reader never sees a half-written output.

Each writer writes to a temporary file in the destination folder and renames it
into place (``os.replace`` is atomic on POSIX and Windows within one file system),
so a crash leaves either the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates the file 0600; give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """``open`` that writes to a temporary file and renames it into place on success."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def is_partial_write(name: str) -> bool:
    """Whether ``name`` is a temporary file of an interrupted write: ``.<name>.*.tmp``
    (:func:`atomic_path`, checkpoint writes) or ``.<name>.*.partial`` (proposal copies)."""
    return name.startswith(".") and name.endswith((".tmp", ".partial"))


def remove_partial_writes(root: str | os.PathLike) -> list[Path]:
    """Delete every temporary file that a killed process left below ``root`` (an output
    folder of plankflux, never a user's data); return what was removed."""
    removed = []
    for folder, _, files in os.walk(root):
        for name in files:
            if is_partial_write(name):
                path = Path(folder, name)
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def write_csv_atomic(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``frame`` as CSV (no index, ``\\n`` line ends) atomically."""
    with atomic_open(path, "w", newline="") as handle:
        frame.to_csv(handle, index=False, lineterminator="\n")
