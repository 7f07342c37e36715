"""The CytoSense pair format of Paper B (docs/data_formats.md): load, validate and write.

A dataset root holds ``annotations.csv`` with the columns ``image``, ``profile`` and
``class`` (paths relative to the root, ``class`` empty = unlabelled; further columns
such as ``particle_id`` are kept), the greyscale images (a 25-px scale bar at the
top) and one profile CSV per particle: a header row, then one row per position along
the particle with 6 numeric columns in the order of ``PROFILE_BANDS`` (forward
scatter, sideward scatter, fluorescence green, yellow, orange, red). The profile
length L varies per particle. An optional ``classes.txt`` (one name per line) fixes
the class order, so that two data sets (LAB, SEA) share label indices.

As for trap campaigns (:mod:`plankflux.data.campaign`) every problem is collected
before raising; each names the file, the line (1 = header) and the column.
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from plankflux.data.campaign import image_is_readable, read_class_list
from plankflux.errors import Problem, ProblemsError
from plankflux.layout import ANNOTATIONS_FILE, CLASSES_FILE, PAIR_COLUMNS
from plankflux.utils.atomic import atomic_open, write_csv_atomic
from plankflux.utils.paths import outside_reason, suffix_problem

PROFILE_BANDS = ("fws", "sws", "fl_green", "fl_yellow", "fl_orange", "fl_red")
N_BANDS = len(PROFILE_BANDS)
CHECK_FILES = ("none", "exists", "parse")


class PairsError(ProblemsError):
    """A pair data set failed validation; ``problems`` lists every defect found."""

    def __init__(self, root: Path, problems: Sequence[Problem]):
        self.root = root
        super().__init__(f"CytoSense pairs {root}", problems)


@dataclass
class CytoSensePairs:
    """A loaded pair data set. ``pairs``: one row per particle (text columns, index 0..N-1)."""

    root: Path
    pairs: pd.DataFrame
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.pairs)

    def labels(self) -> np.ndarray:
        """(N,) int64 class index into ``classes``, -1 for unlabelled rows."""
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index.get(c, -1) for c in self.pairs["class"]], dtype=np.int64)

    def image_path(self, row: int) -> Path:
        return self.root / self.pairs["image"].iat[row]

    def profile_path(self, row: int) -> Path:
        return self.root / self.pairs["profile"].iat[row]

    def summary(self) -> str:
        labelled = int((self.pairs["class"] != "").sum())
        return f"{len(self)} pairs ({labelled} labelled), {len(self.classes)} classes"


# ----------------------------------------------------------------------------- profiles
def _delimiter(header: str) -> str:
    # A semicolon header means a European-locale CSV whose numbers use decimal commas.
    return ";" if header.count(";") > header.count(",") else ","


#: Names accepted for each band in a profile header (compared in lower case, with
#: spaces and dashes as underscores): the band itself, the instrument's words, a letter.
BAND_ALIASES: dict[str, frozenset[str]] = {
    "fws": frozenset({"fws", "forward_scatter", "fsc"}),
    "sws": frozenset({"sws", "sidewards_scatter", "side_scatter", "ssc"}),
    "fl_green": frozenset({"fl_green", "green", "g", "flg"}),
    "fl_yellow": frozenset({"fl_yellow", "yellow", "y", "fly"}),
    "fl_orange": frozenset({"fl_orange", "orange", "o", "flo"}),
    "fl_red": frozenset({"fl_red", "red", "r", "flr"}),
}


def _band_key(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def _header_problem(header: Sequence[str]) -> str | None:
    """Why a profile header is not the bands in :data:`PROFILE_BANDS` order (values are
    read by position, so another order would swap bands silently), or ``None``."""
    keys = [_band_key(h) for h in header]
    if len(keys) == N_BANDS and all(
        key in BAND_ALIASES[band] for key, band in zip(keys, PROFILE_BANDS, strict=True)
    ):
        return None
    return f"header {list(header)} is not the bands {list(PROFILE_BANDS)} in this order"


def profile_problems(path: Path, name: str | None = None) -> list[Problem]:
    """Check one profile file line by line; every problem names ``name`` (default: path)."""
    name = name or str(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            lines = handle.read().splitlines()
    except OSError as err:
        return [Problem(name, f"profile cannot be read: {err}")]
    if not lines:
        return [Problem(name, "profile file is empty (no header)")]
    sep = _delimiter(lines[0])
    header = [h.strip() for h in next(csv.reader([lines[0]], delimiter=sep))]
    problems = []
    if len(header) != N_BANDS:
        problems.append(Problem(name, f"header has {len(header)} columns, expected {N_BANDS}", 1))
        header = list(PROFILE_BANDS)
    elif reason := _header_problem(header):
        problems.append(Problem(name, reason, 1))
    rows = [(i + 1, line) for i, line in enumerate(lines) if i > 0 and line.strip()]
    if not rows:
        problems.append(Problem(name, "profile is empty (header only, no rows)"))
    for line_no, line in rows:
        cells = next(csv.reader([line], delimiter=sep))
        if len(cells) != N_BANDS:
            msg = f"row has {len(cells)} columns, expected {N_BANDS}"
            problems.append(Problem(name, msg, line_no))
            continue
        for column, text in zip(header, cells, strict=True):
            value = text.strip().replace(",", ".") if sep == ";" else text.strip()
            try:
                ok = math.isfinite(float(value))
            except ValueError:
                ok = False
            if not ok:
                problems.append(Problem(name, f"not a finite number: {text!r}", line_no, column))
    return problems


def read_profile(path: str | os.PathLike) -> np.ndarray:
    """Read a profile CSV -> (L, 6) float32 in the band order of ``PROFILE_BANDS``.

    Raises ``ValueError`` naming the file, line and column of every bad cell.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig") as handle:
            first = handle.readline()
            sep = _delimiter(first)
            text = handle.read()
        if _header_problem(next(csv.reader([first], delimiter=sep), [])):
            raise ValueError("header")  # explained by profile_problems below
        if sep == ";":
            text = text.replace(",", ".")
        # Fast path for the common, valid file; the slow checker explains failures.
        with warnings.catch_warnings():  # "input contained no data": reported below
            warnings.simplefilter("ignore", UserWarning)
            values = np.loadtxt(text.splitlines(), delimiter=sep, dtype=np.float64, ndmin=2)
        if values.shape[0] >= 1 and values.shape[1] == N_BANDS and np.isfinite(values).all():
            return values.astype(np.float32)
    except (OSError, ValueError):
        pass
    problems = profile_problems(path) or [Problem(str(path), "profile cannot be parsed")]
    raise ProblemsError(f"profile {path}", problems)


def write_profile(path: str | os.PathLike, profile: np.ndarray) -> None:
    """Write an (L, 6) profile as CSV with the ``PROFILE_BANDS`` header.

    Not atomic on purpose: ``annotations.csv`` is written last, and a root without
    it does not load, so a crash never leaves a loadable data set with half a profile.
    """
    profile = np.asarray(profile, dtype=np.float64)
    if profile.ndim != 2 or profile.shape[1] != N_BANDS or len(profile) == 0:
        raise ValueError(f"profile must be (L>=1, {N_BANDS}), got {profile.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(",".join(f"{v:.6g}" for v in row) for row in profile)
    path.write_text(",".join(PROFILE_BANDS) + "\n" + body + "\n")


# -------------------------------------------------------------------------- annotations
def _read_classes(root: Path, problems: list[Problem]) -> tuple[str, ...] | None:
    if not (root / CLASSES_FILE).exists():
        return None
    names, found = read_class_list(root / CLASSES_FILE)
    problems += found
    return tuple(names)


def _check(root: Path, check_files: str, allow_missing_image: bool):
    """The frame (or None) and every problem of the data set at ``root``."""
    if check_files not in CHECK_FILES:
        raise ValueError(f"check_files must be one of {CHECK_FILES}, got {check_files!r}")
    f, problems = ANNOTATIONS_FILE, []
    if not (root / f).is_file():
        return None, None, [Problem(f, f"file not found in {root}")]
    try:
        frame = pd.read_csv(
            root / f, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig"
        )
    except Exception as err:  # pandas raises several types for broken CSVs
        return None, None, [Problem(f, f"cannot be parsed as CSV: {err}")]
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in PAIR_COLUMNS if c not in frame.columns]
    problems += [Problem(f, "required column is missing", 1, c) for c in missing]
    if missing:
        return None, None, problems
    frame = frame.apply(lambda col: col.str.strip()).reset_index(drop=True)
    classes = _read_classes(root, problems)
    for column in ("image", "profile"):
        seen: dict[str, int] = {}
        for i, value in enumerate(frame[column]):
            line = i + 2
            if not value:
                if column == "profile" or not allow_missing_image:
                    problems.append(Problem(f, "value is empty", line, column))
                continue
            if value in seen:
                msg = f"duplicate {column} (first seen on line {seen[value]})"
                problems.append(Problem(f, msg, line, column))
                continue
            seen[value] = line
            path = root / value
            refused = outside_reason(root, value) or (column == "image" and suffix_problem(value))
            if refused:
                problems.append(Problem(f, refused, line, column))
            elif check_files != "none" and not path.is_file():
                problems.append(Problem(f, f"{column} file is missing: {path}", line, column))
            elif check_files == "parse" and column == "profile":
                problems += profile_problems(path, value)
            elif check_files == "parse" and (reason := image_is_readable(path)):
                problems.append(Problem(f, f"{reason}: {path}", line, column))
    if classes is not None:
        for i, label in enumerate(frame["class"]):
            if label and label not in classes:
                msg = f"class {label!r} is not in {CLASSES_FILE}"
                problems.append(Problem(f, msg, i + 2, "class"))
    else:
        classes = tuple(sorted({c for c in frame["class"] if c}))
    return frame, classes, problems


def validate_pairs(
    root: str | os.PathLike, check_files: str = "parse", allow_missing_image: bool = False
) -> list[Problem]:
    """Every problem of the pair data set at ``root`` (empty list = valid).

    ``check_files``: ``"parse"`` (default: files exist, every profile parses, every
    image decodes), ``"exists"`` or ``"none"``. ``allow_missing_image`` accepts an
    empty ``image`` cell (a profile-only particle, e.g. from a CytoClus export).
    """
    return _check(Path(root), check_files, allow_missing_image)[2]


def load_pairs(
    root: str | os.PathLike, check_files: str = "exists", allow_missing_image: bool = False
) -> CytoSensePairs:
    """Load a pair data set, raising :class:`PairsError` that lists every problem.

    Classes come from ``classes.txt`` when present, else the sorted class names used.
    """
    root = Path(root)
    frame, classes, problems = _check(root, check_files, allow_missing_image)
    if problems or frame is None:
        raise PairsError(root, problems)
    return CytoSensePairs(root, frame, classes)


def combine_pairs(sets: Sequence[CytoSensePairs]) -> CytoSensePairs:
    """One pair set from several (e.g. LAB + UTO for combined pre-training).

    Paths become absolute, so the rows keep pointing at their own roots; a ``dataset``
    column names each row's root. Classes are the first set's in order, then classes
    new in later sets, so a set's labels keep their indices when it comes first.
    """
    if len(sets) == 1:
        return sets[0]
    frames, classes = [], list(sets[0].classes)
    for pairs in sets:
        frame = pairs.pairs.copy()
        root = pairs.root.resolve()
        for column in ("image", "profile"):
            frame[column] = [str(root / value) for value in frame[column]]
        frame["dataset"] = pairs.root.name
        frames.append(frame)
        classes += [c for c in pairs.classes if c not in classes]
    frame = pd.concat(frames, ignore_index=True).fillna("")
    return CytoSensePairs(sets[0].root, frame, tuple(classes))


def write_pairs(
    root: str | os.PathLike, pairs: pd.DataFrame, classes: Sequence[str] | None = None
) -> Path:
    """Write ``annotations.csv`` (``image, profile, class`` first, then any other
    columns) atomically, and ``classes.txt`` when ``classes`` is given. Files that
    the rows point at are not touched; write them first."""
    root = Path(root)
    missing = [c for c in PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        raise ValueError(f"cannot write {ANNOTATIONS_FILE}: missing column(s) {missing}")
    columns = list(PAIR_COLUMNS) + [c for c in pairs.columns if c not in PAIR_COLUMNS]
    frame = pairs[columns].copy()
    frame["class"] = frame["class"].fillna("").astype(str)
    if classes is not None:
        with atomic_open(root / CLASSES_FILE) as handle:
            handle.write("".join(f"{c}\n" for c in classes))
    write_csv_atomic(frame, root / ANNOTATIONS_FILE)
    return root
