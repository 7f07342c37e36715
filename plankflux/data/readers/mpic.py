"""Import the published layout of github amaralvin7/mpic (docs/data_formats.md) as a campaign.

Source layout::

    SRC/metadata.csv
    SRC/imgs/<label>/<filename>          # label "none" = unlabelled

``metadata.csv`` has one row per image with columns ``filename, label, domain,
esd (µm), area (m²), time (days), sample, measured_flux, measured_flux_e, date,
depth, olabel``. Column names are matched after stripping, lower-casing and
folding units into the name, so ``esd``/``esd (µm)``/``esd_um``,
``area``/``area (m²)`` and ``time``/``time (days)`` are all accepted.
``filename, label, domain, sample, esd`` are required; the others may be absent
(their campaign values are then empty).

Mapping onto the campaign format:

* particles: ``particle_id`` = file stem; ``image`` = absolute path of
  ``imgs/<label>/<filename>`` (the source is never modified, moved or copied);
  ``esd_um`` = esd; ``label`` = label with ``none`` -> unlabelled;
  ``label_original`` = olabel (kept verbatim, old names included, ``none`` -> "");
  ``magnification`` parsed from file names of the form
  ``<sample>_<mag>x_<view>_<field><plane>_<n>`` (e.g. ``RR5_7x_obl_20_18208.jpg``
  -> 7), empty where the name does not match.
* samples: one row per ``sample`` with ``domain``, ``depth`` -> ``depth_m``,
  ``area`` -> ``imaged_area_m2`` (the first row's; each particle also keeps its own
  row's area as ``imaged_area_m2``, the area imaged at its magnification, which the
  flux uses), ``time`` -> ``deployment_days``,
  ``measured_flux`` -> ``measured_flux_mmol_m2_d``, ``measured_flux_e`` ->
  ``measured_flux_sd`` and ``date``. These values are repeated on every row of the
  metadata; a sample whose rows disagree is an error naming the sample and column
  (except the area, which differs between magnifications).

Every defect found (missing files, unknown labels, bad numbers, disagreeing
sample values) is collected and raised at once as a :class:`SourceError`, before
anything is written.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from plankflux.data.campaign import write_campaign
from plankflux.data.classes import OLD_NAME_ALIASES, ORIGINAL_CLASSES, TRAP_CLASSES
from plankflux.data.readers.common import (
    SourceError,
    find_column,
    is_image,
    listing,
    natural_key,
    parse_numbers,
    prepare_output,
    read_table,
    warn,
)

METADATA_FILE = "metadata.csv"
IMAGES_DIR = "imgs"
UNLABELLED = "none"

# <sample>_<mag>x_<view>_<field><plane>_<n>, e.g. RR5_7x_obl_20_18208. A microscope's
# magnification has at most 4 digits before the point: a longer number is not one (it
# would be read as, e.g., 1e20), so such a name is not an mpic name.
FILENAME_PATTERN = re.compile(
    r"^(?P<sample>.+?)_(?P<magnification>\d{1,4}(?:\.\d+)?)x_(?P<view>[A-Za-z]+)_"
    r"(?P<field_plane>\d+)_(?P<number>\d+)$"
)

# metadata key -> accepted (normalized) column names
_COLUMNS: dict[str, tuple[str, ...]] = {
    "filename": ("filename", "file_name", "file"),
    "label": ("label",),
    "domain": ("domain",),
    "sample": ("sample", "sample_id"),
    "esd": ("esd_um", "esd"),
    "area": ("area_m2", "area", "imaged_area_m2"),
    "time": ("time_days", "time", "deployment_days", "days"),
    "depth": ("depth_m", "depth"),
    "measured_flux": ("measured_flux", "measured_flux_mmol_m2_d"),
    "measured_flux_e": ("measured_flux_e", "measured_flux_sd", "measured_flux_err"),
    "date": ("date",),
    "olabel": ("olabel", "label_original", "original_label"),
}
_REQUIRED = ("filename", "label", "domain", "sample", "esd")
# sample-level metadata key -> (samples.csv column, must be positive, numeric)
_SAMPLE_FIELDS: dict[str, tuple[str, bool, bool]] = {
    "domain": ("domain", False, False),
    "depth": ("depth_m", False, True),
    "area": ("imaged_area_m2", True, True),
    "time": ("deployment_days", True, True),
    "measured_flux": ("measured_flux_mmol_m2_d", False, True),
    "measured_flux_e": ("measured_flux_sd", False, True),
    "date": ("date", False, False),
}


def parse_mpic_filename(name: str) -> dict[str, str] | None:
    """Fields of an mpic image name (``sample``, ``magnification``, ...) or None."""
    stem = Path(name).stem
    match = FILENAME_PATTERN.match(stem)
    return match.groupdict() if match else None


def _magnification(name: str) -> float:
    fields = parse_mpic_filename(name)
    return float(fields["magnification"]) if fields else np.nan


def _label_problems(
    labels: list[str], lines: list[int], column: str, allowed: set[str], hint_old: bool
) -> list[str]:
    """One message per unknown label, with its count and first lines."""
    where: dict[str, list[int]] = defaultdict(list)
    for label, line in zip(labels, lines, strict=True):
        if label and label not in allowed:
            where[label].append(line)
    problems = []
    for label in sorted(where):
        found = where[label]
        hint = ""
        if hint_old and label in OLD_NAME_ALIASES:
            hint = " (an old annotation name, allowed in olabel only; maps to "
            hint += f"{OLD_NAME_ALIASES[label]!r})"
        problems.append(
            f"{METADATA_FILE} column {column!r}: unknown class {label!r}{hint} on "
            f"{len(found)} row(s), lines {listing(found, 5)}"
        )
    return problems


def _sample_table(
    columns: dict[str, str | None],
    texts: dict[str, list[str]],
    numbers: dict[str, np.ndarray],
    samples: list[str],
    lines: list[int],
) -> tuple[pd.DataFrame, list[str]]:
    """One row per sample; problems for samples whose rows disagree."""
    first_row: dict[str, int] = {}
    seen: dict[tuple[str, str], dict[str, tuple[int, str]]] = defaultdict(dict)
    for i, sample in enumerate(samples):
        first_row.setdefault(sample, i)
        for key in _SAMPLE_FIELDS:
            if columns[key] is None:
                continue
            if key in numbers:
                value = numbers[key][i]
                token = "" if np.isnan(value) else repr(float(value))
            else:
                token = texts[key][i]
            seen[(sample, key)].setdefault(token, (lines[i], texts[key][i]))
    problems = []
    for (sample, key), values in seen.items():
        if len(values) > 1 and key != "area":  # the area differs by magnification
            shown = ", ".join(f"{text!r} (line {line})" for line, text in values.values())
            problems.append(
                f"{METADATA_FILE}: sample {sample!r} has different values in column "
                f"{columns[key]!r} on different rows: {shown}"
            )

    order = sorted(first_row, key=natural_key)
    table: dict[str, list] = {"sample_id": order}
    for key, (target, _, numeric) in _SAMPLE_FIELDS.items():
        if columns[key] is None:
            if target in ("depth_m", "imaged_area_m2", "deployment_days"):
                table[target] = [""] * len(order)  # required by the format, may be empty
            continue
        source = numbers[key] if numeric else texts[key]
        table[target] = [source[first_row[s]] for s in order]
    return pd.DataFrame(table), problems


def read_mpic(src: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write a campaign at ``out`` for the mpic layout at ``src``; see the module doc.

    Raises ``ValueError`` (a :class:`SourceError` lists every defect) before
    writing anything.
    """
    src, out = prepare_output(src, out)
    meta_path = src / METADATA_FILE
    imgs = src / IMAGES_DIR
    absent = [str(p) for p in (meta_path, imgs) if not p.exists()]
    if absent:
        raise ValueError(
            f"{src} is not an mpic layout (needs {METADATA_FILE} and {IMAGES_DIR}/<label>/): "
            f"missing {listing(absent)}"
        )
    table = read_table(meta_path)
    columns = {key: find_column(table, aliases) for key, aliases in _COLUMNS.items()}
    missing = [key for key in _REQUIRED if columns[key] is None]
    if missing:
        raise SourceError(
            meta_path,
            [
                f"required column {key!r} is missing (accepted: {', '.join(_COLUMNS[key])}); "
                f"columns are {list(table.columns)}"
                for key in missing
            ],
        )
    if len(table) == 0:
        raise ValueError(f"{meta_path} has no rows")
    for key in ("area", "time"):
        if columns[key] is None:
            warn(f"{meta_path} has no {key} column: {_SAMPLE_FIELDS[key][0]} left empty")

    n = len(table)
    lines = [int(line) for line in table.index]
    texts = {key: list(table[c]) if c else [""] * n for key, c in columns.items()}
    problems: list[str] = []

    for key in ("filename", "label", "domain", "sample"):
        for line, value in zip(lines, texts[key], strict=True):
            if not value:
                msg = "empty" + (f" (use {UNLABELLED!r} for unlabelled)" if key == "label" else "")
                problems.append(f"{METADATA_FILE} line {line}, column {columns[key]!r}: {msg}")

    # Labels: the label column names a folder and must be one of the 14 classes.
    folder_of = texts["label"]
    labels = ["" if v.lower() == UNLABELLED else v for v in folder_of]
    problems += _label_problems(labels, lines, columns["label"], set(TRAP_CLASSES), True)
    originals = ["" if v.lower() == UNLABELLED else v for v in texts["olabel"]]
    if columns["olabel"] is not None:
        allowed = set(TRAP_CLASSES) | set(ORIGINAL_CLASSES) | set(OLD_NAME_ALIASES)
        problems += _label_problems(originals, lines, columns["olabel"], allowed, False)

    # File names: unique, unique stems (the particle id), present in their label folder.
    names = [v.replace("\\", "/").rsplit("/", 1)[-1] for v in texts["filename"]]
    for what, values in (("file name", names), ("file stem", [Path(v).stem for v in names])):
        where: dict[str, list[int]] = defaultdict(list)
        for value, line in zip(values, lines, strict=True):
            if value:
                where[value].append(line)
        for value, found in where.items():
            if len(found) > 1:
                problems.append(
                    f"{METADATA_FILE}: {what} {value!r} occurs on lines {listing(found)}"
                )

    on_disk: dict[str, set[str]] = {}  # label folder -> file names in it
    if imgs.is_dir():
        for entry in sorted(imgs.iterdir()):
            if entry.is_dir() and not entry.name.startswith("."):
                on_disk[entry.name] = {p.name for p in entry.iterdir() if is_image(p)}
    folders_of_name: dict[str, list[str]] = defaultdict(list)
    for folder, files in on_disk.items():
        for name in files:
            folders_of_name[name].append(folder)
    missing_files = []
    for line, name, folder in zip(lines, names, folder_of, strict=True):
        if name and folder and name not in on_disk.get(folder, ()):
            elsewhere = folders_of_name.get(name)
            hint = (
                f" (found in {listing([f'{IMAGES_DIR}/{f}/' for f in elsewhere])})"
                if elsewhere
                else ""
            )
            missing_files.append(
                f"{METADATA_FILE} line {line}: image {IMAGES_DIR}/{folder}/{name} is missing{hint}"
            )
    problems += missing_files

    # Numbers: particle ESD, then the sample-level values.
    esd = parse_numbers(texts["esd"], lines, METADATA_FILE, columns["esd"], problems, positive=True)
    numbers: dict[str, np.ndarray] = {}
    for key, (_, positive, numeric) in _SAMPLE_FIELDS.items():
        if numeric and columns[key] is not None:
            numbers[key] = parse_numbers(
                texts[key], lines, METADATA_FILE, columns[key], problems, positive=positive
            )
    samples, sample_problems = _sample_table(columns, texts, numbers, texts["sample"], lines)
    problems += sample_problems
    if problems:
        raise SourceError(meta_path, problems)

    unknown_esd = int(np.isnan(esd).sum())
    if unknown_esd:
        warn(f"{unknown_esd} row(s) of {meta_path} have no esd: esd_um left empty (no carbon)")
    listed = set(zip(folder_of, names, strict=True))
    unlisted = [
        f"{IMAGES_DIR}/{folder}/{name}"
        for folder, files in on_disk.items()
        for name in sorted(files)
        if (folder, name) not in listed
    ]
    if unlisted:
        warn(
            f"{len(unlisted)} image(s) under {imgs} are not in {METADATA_FILE} and were not "
            f"imported: {listing(unlisted, 5)}"
        )

    particles = pd.DataFrame(
        {
            "particle_id": [Path(v).stem for v in names],
            "image": [str(imgs / f / v) for f, v in zip(folder_of, names, strict=True)],
            "domain": texts["domain"],
            "sample_id": texts["sample"],
            "esd_um": esd,
            "label": labels,
            "magnification": [_magnification(v) for v in names],
        }
    )
    if columns["olabel"] is not None:
        particles["label_original"] = originals
    if "area" in numbers:  # per image: the area imaged at its magnification
        particles["imaged_area_m2"] = numbers["area"]
    ids = list(particles["particle_id"])
    order = sorted(range(n), key=lambda i: natural_key(ids[i]))
    particles = particles.iloc[order].reset_index(drop=True)
    return write_campaign(out, particles, samples, classes=None)
