"""Helpers every reader shares: output checks, table reading, messages, error types."""

from __future__ import annotations

import gzip
import math
import os
import re
import warnings
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from plankflux.data.campaign import CLASSES_FILE, PARTICLES_FILE, SAMPLES_FILE
from plankflux.errors import ProblemsError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})
ZOOSCAN_2400DPI_PIXEL_UM = 25400 / 2400  # 10.58 µm per pixel


class ReaderWarning(UserWarning):
    """Something a user should know about an import that does not stop it."""


class SourceError(ProblemsError):
    """The source data cannot be imported; ``problems`` lists every defect found."""

    def __init__(self, source: str | os.PathLike, problems: Sequence[str], note: str = ""):
        self.source = str(source)
        super().__init__(f"cannot import {self.source}", problems, note=note)


def listing(items: Sequence, limit: int = 10) -> str:
    """``a, b, c and 7 more``: a short, bounded list for messages."""
    items = [str(i) for i in items]
    head = ", ".join(items[:limit])
    return head + (f" and {len(items) - limit} more" if len(items) > limit else "")


def warn(message: str) -> None:
    warnings.warn(message, ReaderWarning, stacklevel=3)


def prepare_output(src: str | os.PathLike, out: str | os.PathLike) -> tuple[Path, Path]:
    """Check the source exists and the output may be written; return both, absolute.

    The output must not lie inside the source (a reader never changes the source's
    listing) and must not already hold a campaign: an import never overwrites one,
    and a stale ``classes.txt`` or ``samples.csv`` would silently join the new one.
    """
    src = Path(src).expanduser().resolve()
    out = Path(out).expanduser().resolve()
    if not src.exists():
        raise ValueError(f"source {src} does not exist")
    if not src.is_dir():
        raise ValueError(f"source {src} is not a folder")
    if out == src or out.is_relative_to(src):
        raise ValueError(
            f"output folder {out} lies inside the source {src}; readers never write "
            "into the source, choose an output folder elsewhere"
        )
    if out.exists() and not out.is_dir():
        raise ValueError(f"output {out} exists and is not a folder")
    present = [n for n in (PARTICLES_FILE, SAMPLES_FILE, CLASSES_FILE) if (out / n).exists()]
    if present:
        raise ValueError(
            f"output folder {out} already holds a campaign ({', '.join(present)}); "
            "choose an empty folder or remove those files first"
        )
    return src, out


def normalize_column(name: str) -> str:
    """``'Esd (µm)'`` -> ``'esd_um'``, ``'area (m²)'`` -> ``'area_m2'``: for matching only."""
    text = str(name).strip().lower().replace("µ", "u").replace("μ", "u")
    text = text.replace("²", "2").replace("³", "3")
    text = re.sub(r"[^0-9a-z%]+", "_", text)
    return text.strip("_")


def find_column(
    frame: pd.DataFrame, aliases: Iterable[str], explicit: str | None = None
) -> str | None:
    """The frame's column matching ``explicit`` (if given) or the first alias, else None."""
    normalized = {normalize_column(c): c for c in reversed(list(frame.columns))}
    wanted = [explicit] if explicit is not None else list(aliases)
    for name in wanted:
        if name in frame.columns:
            return name
        if normalize_column(name) in normalized:
            return normalized[normalize_column(name)]
    return None


def open_text(path: Path):
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV/TSV (``.gz`` allowed) as stripped text; the index is the file line.

    The delimiter (comma, tab or semicolon) is taken from the header line, so EcoTaxa
    TSV exports read as well as CSVs. EcoTaxa's type row (``[t]``/``[f]`` under the
    header) is dropped. Nothing is converted: empty cells stay ``""``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"table {path} not found")
    try:
        with open_text(path) as handle:
            header = handle.readline()
        delimiter = max((",", "\t", ";"), key=header.count)
        frame = pd.read_csv(
            path,
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding="utf-8-sig",
        )
    except (
        OSError,
        EOFError,  # a truncated .gz
        zlib.error,
        UnicodeDecodeError,
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
    ) as err:
        raise ValueError(f"cannot read {path} as a table: {err}") from err
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.apply(lambda col: col.str.strip()) if len(frame.columns) else frame
    frame.index = np.arange(len(frame)) + 2  # line 1 is the header
    if len(frame) and all(re.fullmatch(r"\[[a-z]\]", v or "") for v in frame.iloc[0]):
        frame = frame.iloc[1:]
    return frame


def natural_key(text: str) -> tuple:
    """Sort key that orders ``img2`` before ``img10``."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", text)
        if part
    )


def parse_numbers(
    values: Sequence[str],
    lines: Sequence[int],
    where: str,
    column: str,
    problems: list[str],
    *,
    positive: bool = False,
) -> np.ndarray:
    """Parse text cells to float64 (NaN for empty); report bad cells by line and column."""
    out = np.full(len(values), np.nan)
    for i, (text, line) in enumerate(zip(values, lines, strict=True)):
        if text == "":
            continue
        try:
            value = float(text)
        except ValueError:
            problems.append(f"{where} line {line}, column {column!r}: not a number: {text!r}")
            continue
        if not math.isfinite(value):
            problems.append(f"{where} line {line}, column {column!r}: not finite: {text!r}")
        elif positive and value <= 0:
            problems.append(f"{where} line {line}, column {column!r}: must be > 0, got {text}")
        else:
            out[i] = value
    return out


def is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not is_hidden(path)


def index_images(root: Path) -> dict[str, list[Path]]:
    """Every image under ``root`` (hidden files and folders skipped), by file name."""
    found: dict[str, list[Path]] = defaultdict(list)
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            if is_image(path):
                found[name].append(path)
    return found


# ----------------------------------------------------------------------------
# Folder-per-class and labels-CSV reader
# ----------------------------------------------------------------------------
