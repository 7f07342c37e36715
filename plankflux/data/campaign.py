"""The trap campaign format (docs/data_formats.md): load, validate and write.

A campaign root holds ``particles.csv`` (one row per particle image),
``samples.csv`` (one row per gel-trap sample), the images, and optionally
``classes.txt`` (one class name per line) when the campaign does not use the 14
classes of Paper A.

Loading checks every row and collects *every* problem before raising, so a user
fixes a file in one pass. Each problem names the file, the line (1 = header) and the
column. Nothing here ever writes into a campaign that it reads.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from plankflux.data.classes import TRAP_CLASSES
from plankflux.data.images import open_image
from plankflux.errors import Problem, ProblemsError
from plankflux.layout import (
    CLASSES_FILE,
    OPTIONAL_PARTICLE_COLUMNS,
    OPTIONAL_SAMPLE_COLUMNS,
    PARTICLE_COLUMNS,
    PARTICLES_FILE,
    SAMPLE_COLUMNS,
    SAMPLES_FILE,
)
from plankflux.utils.atomic import atomic_open, write_csv_atomic
from plankflux.utils.paths import control_problem, name_problem, outside_reason, suffix_problem

#: The largest ESD accepted (µm): 10 cm, far above any particle a trap gel holds;
#: beyond it a value is a unit mistake (or 1e300), not a particle.
MAX_ESD_UM = 100_000.0
_CONTROL = "[\x00-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


class CampaignError(ProblemsError):
    """A campaign failed validation; ``problems`` lists every defect found."""

    def __init__(self, root: Path, problems: Sequence[Problem]):
        self.root = root
        super().__init__(f"campaign {root}", problems, hint=f"run `plankflux validate {root}`")


@dataclass
class Campaign:
    """A loaded, validated campaign.

    ``particles`` columns: ``particle_id`` (str), ``image`` (str, relative to
    ``root`` or absolute), ``domain``, ``sample_id``, ``esd_um`` (float, NaN where
    unknown), ``label`` (str, ``""`` = unlabelled), ``label_original`` (str),
    ``ambiguous`` (bool), ``magnification`` (float, NaN where unknown),
    ``imaged_area_m2`` (float: the area imaged at the particle's magnification, NaN
    where the sample's area applies).
    ``samples`` columns: those of ``SAMPLE_COLUMNS`` and ``OPTIONAL_SAMPLE_COLUMNS``
    (area and days NaN where unknown).
    """

    root: Path
    particles: pd.DataFrame
    samples: pd.DataFrame
    classes: tuple[str, ...] = TRAP_CLASSES
    skipped: list[Problem] = field(default_factory=list)
    #: Columns present in the files but not part of the format (ignored), as problems.
    ignored_columns: list[Problem] = field(default_factory=list)

    def image_path(self, image: str) -> Path:
        return resolve_image(self.root, image)

    def image_paths(self, rows: pd.DataFrame | None = None) -> list[Path]:
        rows = self.particles if rows is None else rows
        return [self.image_path(p) for p in rows["image"]]

    def summary(self) -> str:
        p = self.particles
        labelled = int((p["label"] != "").sum())
        domains = ", ".join(f"{d} {n}" for d, n in p["domain"].value_counts(sort=False).items())
        return (
            f"{len(p)} particles ({labelled} labelled) in {len(self.samples)} samples; "
            f"domains: {domains}; {len(self.classes)} classes"
        )


def resolve_image(root: Path, image: str) -> Path:
    path = Path(image)
    return path if path.is_absolute() else root / path


def read_text_file(path: Path, problems: list[Problem], name: str) -> str | None:
    """The text of a UTF-8 file (a byte-order mark, as Notepad and Excel write, and CRLF
    line ends are accepted); ``None`` with a problem naming the line when it is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        problems.append(
            Problem(
                name,
                f"is not UTF-8 text (byte 0x{data[err.start]:02x}); save it as UTF-8 "
                "(e.g. 'CSV UTF-8' in a spreadsheet)",
                line=line,
            )
        )
        return None


def read_class_list(path: Path) -> tuple[list[str], list[Problem]]:
    """The class names of a ``classes.txt`` (one per non-empty line) and its problems:
    names become folder names, so each must be a safe file name (no ``/``, ``..`` or
    control characters); duplicates are named with both lines."""
    problems: list[Problem] = []
    text = read_text_file(path, problems, CLASSES_FILE)
    names, first = [], {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        reason = name_problem(name)
        if reason:
            problems.append(Problem(CLASSES_FILE, f"class name {reason}", line=number))
        elif name in first:
            msg = f"duplicate class name {name!r} (first on line {first[name]})"
            problems.append(Problem(CLASSES_FILE, msg, line=number))
        else:
            first[name] = number
            names.append(name)
    if text is not None and not names and not problems:
        problems.append(Problem(CLASSES_FILE, "holds no class name"))
    return names, problems


def read_classes(root: str | os.PathLike) -> tuple[str, ...]:
    """The campaign's class list: ``classes.txt`` if present, else Paper A's 14."""
    path = Path(root) / CLASSES_FILE
    if not path.exists():
        return TRAP_CLASSES
    names, problems = read_class_list(path)
    if problems:
        raise CampaignError(Path(root), problems)
    return tuple(names)


def image_is_readable(path: Path) -> str | None:
    """Decode an image fully; return ``None`` if fine, else the reason it is not."""
    if path.exists() and not path.is_file():  # a folder, a pipe (would block), a device
        return "not a regular file"
    try:
        open_image(path)
        return None
    except FileNotFoundError:
        return "image file is missing"
    except Exception as err:  # PIL raises many types for damaged files
        return f"image cannot be decoded ({type(err).__name__}: {err})"


def _read_table(
    root: Path,
    name: str,
    required: Sequence[str],
    optional: Sequence[str],
    problems: list[Problem],
    ignored: list[Problem],
):
    """One campaign CSV as text columns (stripped), or ``None`` after adding problems.

    Refused: a file that is not UTF-8, repeated column names, a column that looks like
    a misspelt known one, and a table without rows. Other unknown columns are listed
    in ``ignored``.
    """
    path = root / name
    if not path.is_file():
        problems.append(Problem(name, f"file not found in {root}"))
        return None
    text = read_text_file(path, problems, name)
    if text is None:
        return None
    try:
        header = next(csv.reader(io.StringIO(text)), [])
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    except Exception as err:  # pandas raises several types for damaged files
        problems.append(Problem(name, f"cannot be parsed as CSV: {err}"))
        return None
    header = [c.strip() for c in header]
    n_before = len(problems)
    for column in sorted({c for c in header if header.count(c) > 1}):
        problems.append(Problem(name, "column appears more than once", line=1, column=column))
    known = (*required, *optional)
    for column in header:
        if column in known or header.count(column) > 1:
            continue
        close = difflib.get_close_matches(column, known, n=1, cutoff=0.8)
        if close:
            msg = f"unknown column; did you mean {close[0]!r}?"
            problems.append(Problem(name, msg, line=1, column=column))
        else:
            ignored.append(Problem(name, "column is not part of the format: ignored", 1, column))
    frame.columns = header if len(header) == len(frame.columns) else frame.columns
    for column in required:
        if column not in header:
            problems.append(Problem(name, "required column is missing", line=1, column=column))
    if len(problems) > n_before:
        return None
    if frame.empty:
        problems.append(Problem(name, "has a header but no rows"))
        return None
    frame = frame.apply(lambda col: col.str.strip())
    for column in frame.columns:  # a line break or direction override inside a cell
        if column in ("particle_id", "image"):
            continue  # checked with their row's particle
        for i in np.flatnonzero(frame[column].str.contains(_CONTROL, regex=True).to_numpy()):
            value = frame[column].iat[i]
            problems.append(Problem(name, f"value {control_problem(value)}", i + 2, column))
    return frame


def _parse_floats(
    frame: pd.DataFrame,
    column: str,
    file: str,
    problems: list[Problem],
    *,
    positive: bool = False,
    allow_empty: bool = True,
    ids: Sequence[str] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> np.ndarray:
    """Parse one text column to float64, NaN for empty cells; report bad cells."""
    out = np.full(len(frame), np.nan)
    for i, text in enumerate(frame[column]):
        pid = ids[i] if ids is not None else None
        if text == "":
            if not allow_empty:
                problems.append(Problem(file, "value is empty", i + 2, column, pid))
            continue
        try:
            value = float(text)
        except ValueError:
            problems.append(Problem(file, f"not a number: {text!r}", i + 2, column, pid))
            continue
        if not math.isfinite(value):
            problems.append(Problem(file, f"not a finite number: {text!r}", i + 2, column, pid))
        elif positive and value <= 0:
            problems.append(Problem(file, f"must be > 0, got {text}", i + 2, column, pid))
        elif minimum is not None and value < minimum:
            problems.append(
                Problem(file, f"must be >= {minimum:g}, got {text}", i + 2, column, pid)
            )
        elif maximum is not None and value > maximum:
            problems.append(
                Problem(file, f"must be <= {maximum:g}, got {text}", i + 2, column, pid)
            )
        else:
            out[i] = value
    return out


def _check_samples(frame: pd.DataFrame, problems: list[Problem]) -> pd.DataFrame:
    f = SAMPLES_FILE
    for column in ("sample_id", "domain"):
        for i, value in enumerate(frame[column]):
            reason = name_problem(value)
            if reason:
                problems.append(Problem(f, f"value {reason}", i + 2, column))
    dup = frame["sample_id"].duplicated(keep=False) & (frame["sample_id"] != "")
    for i in np.flatnonzero(dup.to_numpy()):
        sid = frame["sample_id"].iat[i]
        problems.append(Problem(f, f"duplicate sample_id {sid!r}", int(i) + 2, "sample_id"))
    out = frame.copy()
    out["depth_m"] = _parse_floats(frame, "depth_m", f, problems, minimum=0)
    out["imaged_area_m2"] = _parse_floats(frame, "imaged_area_m2", f, problems, positive=True)
    out["deployment_days"] = _parse_floats(frame, "deployment_days", f, problems, positive=True)
    for column in ("measured_flux_mmol_m2_d", "measured_flux_sd"):
        if column in frame.columns:
            out[column] = _parse_floats(frame, column, f, problems, minimum=0)
    return out


def _check_particles(
    root: Path,
    frame: pd.DataFrame,
    samples: pd.DataFrame | None,
    classes: Sequence[str],
    check_images: str,
    problems: list[Problem],
) -> pd.DataFrame:
    f = PARTICLES_FILE
    ids = frame["particle_id"].tolist()
    for column in ("particle_id", "image"):
        for i, value in enumerate(frame[column]):
            reason = "is empty" if not value else control_problem(value)
            if reason:
                pid = None if column == "particle_id" else ids[i] or None
                problems.append(Problem(f, f"value {reason}", i + 2, column, pid))
    # Domain names and sample ids name folders and files of the outputs.
    for column in ("domain", "sample_id"):
        for i, value in enumerate(frame[column]):
            reason = name_problem(value)
            if reason:
                problems.append(Problem(f, f"value {reason}", i + 2, column, ids[i] or None))
    for i, image in enumerate(frame["image"]):
        reason = image and (suffix_problem(image) or outside_reason(root, image))
        if reason:
            problems.append(Problem(f, reason, i + 2, "image", ids[i] or None))
    dup = frame["particle_id"].duplicated(keep="first") & (frame["particle_id"] != "")
    first_line = {pid: i + 2 for i, pid in reversed(list(enumerate(ids)))}
    for i in np.flatnonzero(dup.to_numpy()):
        msg = f"duplicate particle_id (first seen on line {first_line[ids[i]]})"
        problems.append(Problem(f, msg, int(i) + 2, "particle_id", ids[i]))

    out = frame.copy()
    out["esd_um"] = _parse_floats(
        frame, "esd_um", f, problems, positive=True, ids=ids, maximum=MAX_ESD_UM
    )

    known = set(classes)
    for i, label in enumerate(frame["label"]):
        if label and label not in known:
            problems.append(Problem(f, f"unknown class label {label!r}", i + 2, "label", ids[i]))

    if samples is not None:
        sample_domain = dict(zip(samples["sample_id"], samples["domain"], strict=True))
        for i, (sid, dom) in enumerate(zip(frame["sample_id"], frame["domain"], strict=True)):
            if sid and sid not in sample_domain:
                msg = f"sample_id {sid!r} is not in {SAMPLES_FILE}"
                problems.append(Problem(f, msg, i + 2, "sample_id", ids[i]))
            elif sid and dom and sample_domain[sid] != dom:
                msg = f"domain {dom!r} differs from sample {sid!r}'s domain {sample_domain[sid]!r}"
                problems.append(Problem(f, msg, i + 2, "domain", ids[i]))

    if "label_original" not in out.columns:
        out["label_original"] = ""
    if "ambiguous" in frame.columns:
        flags = []
        for i, text in enumerate(frame["ambiguous"].str.lower()):
            if text not in _TRUE | _FALSE:
                msg = f"not a boolean: {frame['ambiguous'].iat[i]!r}"
                problems.append(Problem(f, msg, i + 2, "ambiguous", ids[i]))
            flags.append(text in _TRUE)
        out["ambiguous"] = np.array(flags, dtype=bool)
    else:
        out["ambiguous"] = False
    if "imaged_area_m2" in frame.columns:
        out["imaged_area_m2"] = _parse_floats(
            frame, "imaged_area_m2", f, problems, positive=True, ids=ids
        )
    else:
        out["imaged_area_m2"] = np.nan
    if "magnification" in frame.columns:
        out["magnification"] = _parse_floats(
            frame, "magnification", f, problems, positive=True, ids=ids
        )
    else:
        out["magnification"] = np.nan

    if check_images != "none":
        paths = [resolve_image(root, p) for p in frame["image"]]
        # Shown only when the check takes a while (a large campaign, or decoding): a
        # pipeline loads the campaign once per member, and a bar each time is noise.
        progress = tqdm(paths, desc="checking images", unit="img", delay=2.0)
        refused = {p.line - 2 for p in problems if p.file == f and p.column == "image"}
        for i, path in enumerate(progress):
            if not frame["image"].iat[i] or i in refused:
                continue
            if check_images == "decode":
                reason = image_is_readable(path)
            else:
                reason = None if path.is_file() else "image file is missing"
                if reason and path.exists():
                    reason = "not a regular file"
            if reason:
                problems.append(Problem(f, f"{reason}: {path}", i + 2, "image", ids[i]))
    return out


def validate_campaign(
    root: str | os.PathLike, check_images: str = "decode"
) -> tuple[Campaign | None, list[Problem]]:
    """Check a campaign; return it (``None`` when unreadable) and every problem found.

    ``check_images``: ``"decode"`` (open every image fully), ``"exists"`` or ``"none"``.
    """
    if check_images not in ("decode", "exists", "none"):
        raise ValueError(f"check_images must be decode, exists or none, got {check_images!r}")
    root = Path(root)
    problems: list[Problem] = []
    if not root.is_dir():
        return None, [Problem(str(root), "campaign folder not found")]
    try:
        classes = read_classes(root)
    except CampaignError as err:
        return None, err.problems
    ignored: list[Problem] = []
    samples = _read_table(
        root, SAMPLES_FILE, SAMPLE_COLUMNS, OPTIONAL_SAMPLE_COLUMNS, problems, ignored
    )
    if samples is not None:
        samples = _check_samples(samples, problems)
    particles = _read_table(
        root, PARTICLES_FILE, PARTICLE_COLUMNS, OPTIONAL_PARTICLE_COLUMNS, problems, ignored
    )
    if particles is not None:
        particles = _check_particles(root, particles, samples, classes, check_images, problems)
    if particles is None or samples is None:
        return None, problems
    return Campaign(root, particles, samples, classes, ignored_columns=ignored), problems


def load_campaign(
    root: str | os.PathLike, check_images: str = "exists", skip_unreadable: bool = False
) -> Campaign:
    """Load a campaign, raising :class:`CampaignError` listing every problem.

    With ``skip_unreadable`` the particles whose image is missing or cannot be
    decoded are dropped instead (and listed in ``Campaign.skipped``); every other
    problem still raises.
    """
    campaign, problems = validate_campaign(root, check_images)
    if skip_unreadable:
        skipped = [p for p in problems if p.column == "image" and p.line is not None]
        problems = [p for p in problems if p not in skipped]
    if problems or campaign is None:
        raise CampaignError(Path(root), problems)
    if skip_unreadable and skipped:
        bad = {p.line - 2 for p in skipped}
        keep = [i not in bad for i in range(len(campaign.particles))]
        campaign.particles = campaign.particles[keep].reset_index(drop=True)
        campaign.skipped = skipped
    return campaign


def write_skipped_list(problems: Iterable[Problem], path: str | os.PathLike) -> None:
    """Write the particles skipped for unreadable images as CSV (atomic)."""
    rows = [{"particle_id": p.particle_id, "line": p.line, "reason": p.message} for p in problems]
    write_csv_atomic(pd.DataFrame(rows, columns=["particle_id", "line", "reason"]), path)


def write_campaign(
    root: str | os.PathLike,
    particles: pd.DataFrame,
    samples: pd.DataFrame,
    classes: Sequence[str] | None = None,
) -> Path:
    """Write ``particles.csv``, ``samples.csv`` (and ``classes.txt`` for a custom class list).

    Columns come out in the format's fixed order (required, then the optional ones
    present); each file is written atomically. Images are not touched.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    # Samples first: a crash in between leaves samples without particles, still valid
    # (particles pointing at samples not yet written would not be).
    for name, frame, required, optional in (
        (SAMPLES_FILE, samples, SAMPLE_COLUMNS, OPTIONAL_SAMPLE_COLUMNS),
        (PARTICLES_FILE, particles, PARTICLE_COLUMNS, OPTIONAL_PARTICLE_COLUMNS),
    ):
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise ValueError(f"cannot write {name}: missing column(s) {missing}")
        columns = list(required) + [c for c in optional if c in frame.columns]
        write_csv_atomic(frame[columns], root / name)
    if classes is not None and tuple(classes) != TRAP_CLASSES:
        with atomic_open(root / CLASSES_FILE) as handle:
            handle.write("".join(f"{c}\n" for c in classes))
    return root
