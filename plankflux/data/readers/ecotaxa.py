"""EcoTaxa exports: reading the TSV, and importing one as a campaign.

An EcoTaxa export is a tab-separated table (often inside a zip) with a header row, an
optional type row (``[t]``/``[f]``) and one row per object image. EcoTaxa annotates
each object with a category and a status: ``validated`` (an expert's label),
``dubious``, ``predicted`` (a classifier's guess) or empty (unclassified).

:func:`read_ecotaxa_export` turns an export into a campaign:

* ``particle_id`` = ``object_id``; ``image`` = ``img_file_name`` under ``images``
  (an image path that leaves that folder is refused);
* ``label`` = the category of **validated** objects only; the category of predicted
  and dubious objects goes to ``label_predicted`` and is never used as truth;
  categories become class names with ``/`` replaced by ``_`` (they name folders);
* ``sample_id`` = ``sample_id`` (else one sample named after the domain);
  ``domain`` = the ``domain`` argument;
* ``esd_um`` from ``object_esd_um``, else ``object_area`` (pixels) with
  ``pixel_size_um``; otherwise empty;
* per sample: ``depth_m`` = the mean of ``(object_depth_min + object_depth_max) / 2``,
  ``imaged_area_m2`` from ``sample_imaged_area_m2``/``acq_imaged_area_m2``,
  ``deployment_days`` from ``sample_deployment_days``/``sample_duration_days``.

What could not be mapped is said in warnings, which the command prints.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from plankflux.data.campaign import write_campaign
from plankflux.data.classes import TRAP_CLASSES
from plankflux.data.readers.common import prepare_output, warn
from plankflux.errors import PlankfluxError
from plankflux.utils.paths import is_inside

_TYPE_CELL = re.compile(r"^\[[tf]\]$", re.IGNORECASE)

#: EcoTaxa's annotation status, in its export words and its one-letter database codes.
STATUS = {
    "validated": "validated",
    "v": "validated",
    "dubious": "dubious",
    "d": "dubious",
    "predicted": "predicted",
    "p": "predicted",
    "": "unclassified",
    "unclassified": "unclassified",
}
_AREA_COLUMNS = ("sample_imaged_area_m2", "acq_imaged_area_m2")
_DAYS_COLUMNS = ("sample_deployment_days", "sample_duration_days")


class EcoTaxaError(PlankfluxError):
    """An EcoTaxa bundle or export cannot be used; the message lists every offender."""


def _is_type_row(cells: Sequence[str]) -> bool:
    filled = [c.strip() for c in cells if c.strip()]
    return bool(filled) and all(_TYPE_CELL.match(c) for c in filled)


def _read_export_text(tsv_path: Path) -> tuple[str, str]:
    """The TSV text and a name for messages; a zip must hold exactly one TSV."""
    if not tsv_path.is_file():
        raise EcoTaxaError(f"EcoTaxa export not found: {tsv_path}")
    if zipfile.is_zipfile(tsv_path):
        with zipfile.ZipFile(tsv_path) as archive:
            names = [
                n
                for n in archive.namelist()
                if n.lower().endswith(".tsv")
                and not n.endswith("/")
                and not n.startswith("__MACOSX/")
                and not PurePosixPath(n).name.startswith("._")
            ]
            if len(names) != 1:
                found = ", ".join(names) if names else "none"
                raise EcoTaxaError(f"{tsv_path} must hold exactly one .tsv file; found {found}")
            raw = archive.read(names[0])
            where = f"{tsv_path}:{names[0]}"
    else:
        raw = tsv_path.read_bytes()
        where = str(tsv_path)
    try:
        return raw.decode("utf-8-sig"), where
    except UnicodeDecodeError as err:
        raise EcoTaxaError(f"{where} is not UTF-8 text: {err}") from err


def read_ecotaxa_tsv(tsv_path: str | os.PathLike) -> pd.DataFrame:
    """Read an EcoTaxa TSV (or a zip holding one) as text columns, without the type row."""
    text, where = _read_export_text(Path(tsv_path))
    reader = csv.reader(io.StringIO(text), delimiter="\t")
    rows = [r for r in reader if any(c.strip() for c in r)]
    if not rows:
        raise EcoTaxaError(f"{where} is empty")
    header = [c.strip() for c in rows[0]]
    body = rows[1:]
    if body and _is_type_row(body[0]):
        body = body[1:]
    dup = sorted(c for c, n in Counter(header).items() if n > 1)
    if dup:
        raise EcoTaxaError(f"{where} repeats column(s) {dup}")
    ragged = [i + 2 for i, r in enumerate(body) if len(r) > len(header)]
    if ragged:
        raise EcoTaxaError(f"{where}: row(s) with more cells than the header: {ragged[:20]}")
    body = [r + [""] * (len(header) - len(r)) for r in body]
    frame = pd.DataFrame(body, columns=header, dtype=str)
    return frame.apply(lambda col: col.str.strip()) if len(frame) else frame


def _first(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    return next((n for n in names if n in frame.columns), None)


def _numbers(frame: pd.DataFrame, column: str, problems: list[str], positive: bool) -> np.ndarray:
    out = np.full(len(frame), np.nan)
    for i, text in enumerate(frame[column]):
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or (positive and value <= 0):
            problems.append(f"line {i + 2}, column {column!r}: not a usable number: {text!r}")
        else:
            out[i] = value
    return out


def read_ecotaxa_export(
    tsv_path: str | os.PathLike,
    images: str | os.PathLike,
    out: str | os.PathLike,
    domain: str = "ECOTAXA",
    pixel_size_um: float | None = None,
) -> Path:
    """Write a campaign at ``out`` from an EcoTaxa export and return it; what could not
    be mapped is said in :class:`~plankflux.data.readers.common.ReaderWarning`s.
    Raises :class:`EcoTaxaError` listing every bad row, before writing anything."""

    images = Path(images).expanduser().resolve()
    _, out = prepare_output(images, out)
    export = read_ecotaxa_tsv(tsv_path)
    missing = [c for c in ("object_id", "img_file_name") if c not in export.columns]
    if missing:
        raise EcoTaxaError(f"{tsv_path}: lacks column(s) {missing}")
    export = export.drop_duplicates("object_id", keep="first").reset_index(drop=True)
    problems, notes = [], []
    paths = []
    for i, name in enumerate(export["img_file_name"]):
        path = images / name
        if not name or not is_inside(path, images):
            problems.append(f"line {i + 2}, column 'img_file_name': {name!r} is not below {images}")
        elif not path.is_file():
            problems.append(f"line {i + 2}, column 'img_file_name': image not found: {path}")
        paths.append(str(path))
    for i, pid in enumerate(export["object_id"]):
        if not pid:
            problems.append(f"line {i + 2}, column 'object_id': empty")

    category = export.get("object_annotation_category", pd.Series("", index=export.index))
    category = category.str.replace("/", "_", regex=False)
    if "object_annotation_status" in export.columns:
        status = export["object_annotation_status"].str.lower().map(STATUS)
        for i in np.flatnonzero(status.isna().to_numpy()):
            value = export["object_annotation_status"].iat[i]
            problems.append(f"line {i + 2}, column 'object_annotation_status': unknown {value!r}")
    else:
        status = pd.Series("unclassified", index=export.index)
        notes.append("no object_annotation_status column: every object imported unlabelled")
    validated = status == "validated"

    if "object_esd_um" in export.columns:
        esd = _numbers(export, "object_esd_um", problems, positive=True)
    elif "object_area" in export.columns and pixel_size_um:
        area = _numbers(export, "object_area", problems, positive=True)
        esd = 2 * np.sqrt(area / np.pi) * pixel_size_um
    else:
        esd = np.full(len(export), np.nan)
        notes.append("no object_esd_um (or object_area with --pixel-size-um): esd_um left empty")
    sample_ids = export["sample_id"] if "sample_id" in export.columns else None
    if sample_ids is None or not sample_ids.str.len().all():
        notes.append("no sample_id for every object: all objects go into one sample")
        sample_ids = pd.Series(domain, index=export.index)
    if problems:
        raise EcoTaxaError(
            f"cannot import EcoTaxa export {tsv_path}:\n  " + "\n  ".join(problems[:50])
        )

    labels = category.where(validated, "")
    particles = pd.DataFrame(
        {
            "particle_id": export["object_id"],
            "image": paths,
            "domain": domain,
            "sample_id": sample_ids,
            "esd_um": esd,
            "label": labels,
            "label_predicted": category.where(~validated & (category != ""), ""),
        }
    )
    samples = _samples(export, sample_ids, domain, problems, notes)
    if problems:
        raise _import_error(tsv_path, problems)
    used = sorted(set(labels) - {""})
    classes = None if set(used) <= set(TRAP_CLASSES) else tuple(used)
    if not used:
        notes.append("no validated object: the campaign is unlabelled")
    n_predicted = int((particles["label_predicted"] != "").sum())
    if n_predicted:
        notes.append(f"{n_predicted} predicted/dubious object(s): category kept in label_predicted")
    for note in notes:
        warn(note)
    return write_campaign(out, particles, samples, classes)


def _import_error(tsv_path, problems: list[str]) -> EcoTaxaError:
    listed = "\n  ".join(problems[:50])
    more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
    return EcoTaxaError(f"cannot import EcoTaxa export {tsv_path}:\n  {listed}{more}")


def _samples(export, sample_ids, domain, problems, notes) -> pd.DataFrame:
    """One row per sample: depth, imaged area and deployment days where the export has them."""
    frame = pd.DataFrame({"sample_id": sample_ids})
    if {"object_depth_min", "object_depth_max"} <= set(export.columns):
        low = _numbers(export, "object_depth_min", problems, positive=False)
        high = _numbers(export, "object_depth_max", problems, positive=False)
        frame["depth_m"] = (low + high) / 2
    else:
        notes.append("no object_depth_min/max: depth_m left empty")
        frame["depth_m"] = np.nan
    for column, names in (("imaged_area_m2", _AREA_COLUMNS), ("deployment_days", _DAYS_COLUMNS)):
        source = _first(export, names)
        if source is None:
            notes.append(f"no {' or '.join(names)}: {column} left empty (no flux without it)")
            frame[column] = np.nan
        else:
            frame[column] = _numbers(export, source, problems, positive=True)
    grouped = frame.groupby("sample_id", sort=False)
    samples = grouped.agg(
        {"depth_m": "mean", "imaged_area_m2": "first", "deployment_days": "first"}
    )
    samples = samples.reset_index()
    samples.insert(1, "domain", domain)
    return samples
