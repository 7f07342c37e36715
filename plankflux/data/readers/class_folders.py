"""Import images sorted into class folders, or listed in a labels CSV, as a campaign.

Two source layouts are read; neither is modified, moved or copied. The campaign that
comes out (``particles.csv``, ``samples.csv`` and, for a custom class list,
``classes.txt``) points at the source images by absolute path.

(a) **Folder per class** (no ``labels_csv``)::

        SRC/<class>/<image>
        SRC/<class>/<sub-folder>/<image>     # one level of sub-folders is recursed

    Images are ``.jpg .jpeg .png .tif .tiff .bmp`` in any letter case. Hidden files
    and folders (name starting with ``.``) are ignored; other non-image files are
    ignored with a warning. Folders nested deeper than one sub-folder level, and
    images lying directly in ``SRC``, are errors: their class would be a guess.
    ``particle_id`` is the image path relative to ``SRC`` without its extension
    (``<class>/<stem>``; the extension is kept only where two files would collide).

(b) **Labels CSV(s)** (``labels_csv`` given; e.g. EcoTaxa ML template
    ``training_labels.csv``/``test_labels.csv`` with columns ``id,img_path,label``).
    The campaign holds exactly the rows of the CSV(s); an empty label means
    unlabelled. An image path is resolved, first match wins:

    1. an absolute path, as written;
    2. relative to the folder of the CSV that lists it;
    3. relative to ``SRC``;
    4. by file name anywhere under ``SRC`` (hidden folders skipped), which must be
       unique -- this is the fallback for stored prefixes such as ``io/images/1.jpg``
       that do not exist on this machine.

    ``particle_id`` is the CSV's id column when it has one, else as in (a).

**Particle size.** ``metadata_csv`` (one or more CSV/TSV files, ``.gz`` allowed) is
joined to the particles on a key column (``id_column``, else the first of
``id, object_id, particle_id, filename, file_name, img_file_name, image, img_path,
name``). Key values and particle keys are compared after dropping any folder part
and an image extension; a particle's keys are its CSV id (layout b) and its file
stem. The metadata gives either ``esd_um`` (or ``esd (µm)``) directly, or ``area``
in **pixels**, converted with ``pixel_size_um`` as ESD = 2·sqrt(area/π)·pixel size.
The pixel size is the user's to give: ZooScan at 2400 dpi is 25400/2400 = 10.58 µm
per pixel. Generic columns called ``esd`` are not trusted (the ZooScan export mixes
units in it). Without metadata ``esd_um`` stays empty (unknown), which the campaign
format allows; flux code refuses those particles, and a :class:`ReaderWarning` says so.

**Classes.** ``class_map`` (a dict, or a CSV of ``source,target`` rows, header
optional) maps source class names onto campaign classes; an empty target means
unlabelled; source names missing from the map are an error. Without a map the class
list is the sorted set of source class names. Either way, a class list inside the 14
classes of Paper A writes no ``classes.txt``; any other list is written to it.
``unlabelled_folder`` names a source class (folder, or label value in a CSV) whose
images are imported unlabelled.

**Samples.** All particles go into one sample, ``sample_id`` (default: the domain),
with depth, imaged area and deployment days left empty (unknown).
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from plankflux.data.campaign import write_campaign
from plankflux.data.classes import TRAP_CLASSES
from plankflux.data.readers.common import (
    IMAGE_SUFFIXES,
    ZOOSCAN_2400DPI_PIXEL_UM,
    SourceError,
    find_column,
    index_images,
    is_hidden,
    is_image,
    listing,
    natural_key,
    open_text,
    parse_numbers,
    prepare_output,
    read_table,
    warn,
)

_KEY_ALIASES = (
    "id",
    "object_id",
    "particle_id",
    "filename",
    "file_name",
    "img_file_name",
    "image",
    "img_path",
    "name",
)
_PATH_ALIASES = (
    "img_path",
    "image_path",
    "image",
    "path",
    "file",
    "filename",
    "file_name",
    "img_file_name",
)
_LABEL_ALIASES = ("label", "class", "category", "object_annotation_category", "taxon")
_ID_ALIASES = ("id", "object_id", "particle_id")
_ESD_UM_ALIASES = ("esd_um", "object_esd_um")
_AREA_PX_ALIASES = ("area", "area_px", "object_area")


def path_id(path: Path, src: Path) -> str:
    """A stable particle id for an image without one: ``img_`` and 12 hex digits of the
    hash of its path relative to ``src``. Never the class folder's name, so an id (and
    a proposal file named after it) does not give the label away to the expert."""
    rel = path.relative_to(src).as_posix() if path.is_relative_to(src) else path.name
    return "img_" + hashlib.sha1(rel.encode("utf-8")).hexdigest()[:12]


def _scan_unlabelled(src: Path) -> pd.DataFrame:
    """Every image below ``src`` (any depth, hidden files and folders skipped), unlabelled."""
    paths = sorted(
        p
        for p in src.rglob("*")
        if p.is_file()
        and is_image(p)
        and not any(is_hidden(q) for q in p.relative_to(src).parents)
        and not is_hidden(p)
    )
    if not paths:
        raise ValueError(
            f"no images found under {src} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return pd.DataFrame(
        {
            "particle_id": [path_id(p, src) for p in paths],
            "path": [str(p) for p in paths],
            "source_label": [""] * len(paths),
            "id_key": [""] * len(paths),
            "origin": [str(p) for p in paths],
        }
    )


def _scan_class_folders(src: Path) -> pd.DataFrame:
    """Layout (a): one row per image with its class folder name."""
    problems: list[str] = []
    rows: list[tuple[str, Path]] = []
    ignored: list[str] = []
    empty: list[str] = []
    for class_dir in sorted(src.iterdir()):
        if is_hidden(class_dir):
            continue
        if not class_dir.is_dir():
            if is_image(class_dir):
                problems.append(
                    f"{class_dir}: image lies directly in the source, not in a class folder "
                    "(give a labels CSV for a flat folder of images, or --unlabelled for a "
                    "deployment without labels)"
                )
            continue
        n_before = len(rows)
        for entry in sorted(class_dir.iterdir()):
            if is_hidden(entry):
                continue
            if entry.is_dir():
                for inner in sorted(entry.iterdir()):
                    if is_hidden(inner):
                        continue
                    if inner.is_dir():
                        problems.append(
                            f"{inner}: folder nested more than one level below class folder "
                            f"{class_dir.name!r} (only one sub-folder level is read)"
                        )
                    elif is_image(inner):
                        rows.append((class_dir.name, inner))
                    else:
                        ignored.append(str(inner.relative_to(src)))
            elif is_image(entry):
                rows.append((class_dir.name, entry))
            else:
                ignored.append(str(entry.relative_to(src)))
        if len(rows) == n_before:
            empty.append(class_dir.name)
    if problems:
        raise SourceError(src, problems)
    if ignored:
        warn(f"{len(ignored)} non-image file(s) ignored in {src}: {listing(ignored, 5)}")
    if empty:
        warn(f"class folder(s) without images ignored in {src}: {listing(empty)}")
    if not rows:
        raise ValueError(
            f"no images found in class folders under {src} "
            f"(looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )

    return pd.DataFrame(
        {
            "particle_id": [path_id(path, src) for _, path in rows],
            "path": [str(p) for _, p in rows],
            "source_label": [c for c, _ in rows],
            "id_key": [""] * len(rows),
            "origin": [str(p) for _, p in rows],
        }
    )


def _resolve_listed_image(
    text: str, csv_dir: Path, src: Path, by_name: dict[str, list[Path]]
) -> tuple[Path | None, str | None]:
    """Apply the path rule of layout (b); return (path, None) or (None, reason)."""
    raw = Path(text.replace("\\", "/"))
    if raw.is_absolute():
        if raw.is_file():
            return raw.resolve(), None
    else:
        for base in (csv_dir, src):
            candidate = base / raw
            if candidate.is_file():
                return candidate.resolve(), None
    matches = by_name.get(raw.name, [])
    if len(matches) == 1:
        return matches[0], None
    if len(matches) > 1:
        return None, f"file name {raw.name!r} matches {len(matches)} images under {src}"
    return None, f"image {text!r} not found (tried {csv_dir}, {src} and its file names)"


def _rows_from_labels_csvs(src: Path, labels_csvs: Sequence[Path]) -> pd.DataFrame:
    """Layout (b): one row per CSV row, image path resolved, in file then line order."""
    by_name = index_images(src)
    problems: list[str] = []
    records: list[dict] = []
    for csv_path in labels_csvs:
        csv_path = Path(csv_path).expanduser().resolve()
        table = read_table(csv_path)
        path_col = find_column(table, _PATH_ALIASES)
        label_col = find_column(table, _LABEL_ALIASES)
        id_col = find_column(table, _ID_ALIASES)
        if id_col == path_col:
            id_col = None
        if path_col is None or label_col is None:
            wanted = []
            if path_col is None:
                wanted.append(f"an image path column (one of {', '.join(_PATH_ALIASES)})")
            if label_col is None:
                wanted.append(f"a label column (one of {', '.join(_LABEL_ALIASES)})")
            problems.append(f"{csv_path}: needs {' and '.join(wanted)}; has {list(table.columns)}")
            continue
        for line, row in zip(table.index, table.itertuples(index=False), strict=True):
            values = dict(zip(table.columns, row, strict=True))
            text = values[path_col]
            if not text:
                problems.append(f"{csv_path.name} line {line}, column {path_col!r}: empty")
                continue
            path, reason = _resolve_listed_image(text, csv_path.parent, src, by_name)
            if path is None:
                problems.append(f"{csv_path.name} line {line}, column {path_col!r}: {reason}")
                continue
            pid = values[id_col] if id_col else ""
            if id_col and not pid:
                problems.append(f"{csv_path.name} line {line}, column {id_col!r}: empty id")
                continue
            if not pid:
                pid = path_id(path, src)
            records.append(
                {
                    "particle_id": pid,
                    "path": str(path),
                    "source_label": values[label_col],
                    "id_key": values[id_col] if id_col else "",
                    "origin": f"{csv_path.name} line {line}",
                }
            )
    if problems:
        raise SourceError(src, problems)
    if not records:
        raise ValueError(f"the labels CSV(s) {listing(labels_csvs)} list no images")
    rows = pd.DataFrame(records)

    for column, what in (("particle_id", "particle id"), ("path", "image")):
        groups = rows.groupby(column, sort=False)["origin"].agg(list)
        for value, origins in groups.items():
            if len(origins) > 1:
                problems.append(f"{what} {value!r} listed more than once: {listing(origins)}")
    if problems:
        raise SourceError(src, problems)

    listed = set(rows["path"])
    unlisted = [str(p) for paths in by_name.values() for p in paths if str(p) not in listed]
    if unlisted:
        warn(
            f"{len(unlisted)} image(s) under {src} are in no labels CSV and were not "
            f"imported: {listing(sorted(unlisted), 5)}"
        )
    return rows


def load_class_map(class_map: Mapping[str, str] | str | os.PathLike) -> dict[str, str]:
    """A ``{source: target}`` dict from a mapping or a two-column ``source,target`` CSV."""
    if isinstance(class_map, Mapping):
        return {str(k).strip(): str(v).strip() for k, v in class_map.items()}
    path = Path(class_map)
    if not path.is_file():
        raise ValueError(f"class map {path} not found")
    mapping: dict[str, str] = {}
    problems: list[str] = []
    with open_text(path) as handle:
        rows = list(csv.reader(handle))
    for line, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if line == 1 and [c.lower() for c in cells[:2]] == ["source", "target"]:
            continue
        if len(cells) != 2 or not cells[0]:
            problems.append(f"{path.name} line {line}: expected 'source,target', got {row}")
            continue
        source, target = cells
        if source in mapping and mapping[source] != target:
            problems.append(
                f"{path.name} line {line}: {source!r} mapped again, to {target!r} "
                f"(was {mapping[source]!r})"
            )
        mapping[source] = target
    if problems:
        raise SourceError(path, problems)
    if not mapping:
        raise ValueError(f"class map {path} is empty")
    return mapping


def map_labels(
    source_labels: Sequence[str],
    class_map: Mapping[str, str] | str | os.PathLike | None,
    unlabelled: str | None,
) -> tuple[list[str], tuple[str, ...] | None]:
    """Campaign labels for ``source_labels`` and the class list (None = the 14 classes)."""
    present = set(source_labels)
    if unlabelled is not None and unlabelled not in present:
        raise ValueError(
            f"unlabelled folder/label {unlabelled!r} does not occur in the source "
            f"(classes found: {listing(sorted(present - {''}))})"
        )

    def is_unlabelled(name: str) -> bool:
        return name == "" or name == unlabelled

    if class_map is None:
        mapping = {name: name for name in present if not is_unlabelled(name)}
        classes = sorted(set(mapping.values()))
    else:
        mapping = load_class_map(class_map)
        counts = Counter(n for n in source_labels if not is_unlabelled(n))
        unmapped = sorted(n for n in counts if n not in mapping)
        if unmapped:
            raise ValueError(
                f"{len(unmapped)} source class(es) missing from the class map: "
                + ", ".join(f"{n!r} ({counts[n]} image(s))" for n in unmapped)
            )
        classes = sorted({t for t in mapping.values() if t})
    labels = ["" if is_unlabelled(n) else mapping[n] for n in source_labels]
    if not classes:
        raise ValueError(
            "no class names: every image would be unlabelled; to import a deployment "
            "without labels use `plankflux import folders SRC --unlabelled`"
        )
    if set(classes) <= set(TRAP_CLASSES):
        return labels, None
    return labels, tuple(classes)


def join_key(text: str) -> str:
    """Key for the metadata join: no folder part, no image extension."""
    name = str(text).strip().replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and f".{suffix.lower()}" in IMAGE_SUFFIXES else name


def esd_from_metadata(
    rows: pd.DataFrame,
    metadata_csvs: Sequence[str | os.PathLike],
    id_column: str | None,
    pixel_size_um: float | None,
) -> np.ndarray:
    """ESD in µm per row of ``rows`` (columns ``id_key``, ``path``, ``origin``)."""
    if pixel_size_um is not None and not (math.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise ValueError(f"pixel size must be a positive number of µm, got {pixel_size_um}")
    problems: list[str] = []
    keyed: dict[str, tuple[str, float]] = {}  # key -> (where, esd)
    duplicates: dict[str, list[str]] = defaultdict(list)
    for meta_path in metadata_csvs:
        meta_path = Path(meta_path).expanduser().resolve()
        table = read_table(meta_path)
        key_col = find_column(table, _KEY_ALIASES, id_column)
        if key_col is None:
            wanted = repr(id_column) if id_column else f"one of {', '.join(_KEY_ALIASES)}"
            problems.append(
                f"{meta_path}: no key column {wanted}; columns are {list(table.columns)}"
            )
            continue
        esd_col = find_column(table, _ESD_UM_ALIASES)
        area_col = None if esd_col else find_column(table, _AREA_PX_ALIASES)
        lines = list(table.index)
        if esd_col is not None:
            esd = parse_numbers(
                list(table[esd_col]), lines, meta_path.name, esd_col, problems, positive=True
            )
            if pixel_size_um is not None:
                warn(f"{meta_path.name} gives ESD in µm ({esd_col!r}); pixel size not used")
        elif area_col is not None:
            if pixel_size_um is None:
                problems.append(
                    f"{meta_path}: column {area_col!r} is an area in pixels; give the pixel "
                    f"size in µm (--pixel-size-um; ZooScan at 2400 dpi: "
                    f"{ZOOSCAN_2400DPI_PIXEL_UM:.2f})"
                )
                continue
            area = parse_numbers(
                list(table[area_col]), lines, meta_path.name, area_col, problems, positive=True
            )
            esd = 2.0 * np.sqrt(area / math.pi) * pixel_size_um
        else:
            problems.append(
                f"{meta_path}: no size column (one of {', '.join(_ESD_UM_ALIASES)} in µm, or "
                f"{', '.join(_AREA_PX_ALIASES)} in pixels); columns are {list(table.columns)}"
            )
            continue
        for line, raw, value in zip(lines, table[key_col], esd, strict=True):
            key = join_key(raw)
            where = f"{meta_path.name} line {line}"
            if not key:
                problems.append(f"{where}, column {key_col!r}: empty key")
            elif key in keyed:
                duplicates[key].append(where)
            else:
                keyed[key] = (where, value)
    for key, wheres in duplicates.items():
        problems.append(
            f"metadata key {key!r} occurs more than once: {keyed[key][0]}, {listing(wheres)}"
        )
    if problems:
        raise SourceError(listing([str(m) for m in metadata_csvs], 3), problems)

    out = np.full(len(rows), np.nan)
    unmatched: list[str] = []
    stem_counts = Counter(join_key(p) for p in rows["path"])
    for i, (id_key, path, origin) in enumerate(
        zip(rows["id_key"], rows["path"], rows["origin"], strict=True)
    ):
        stem = join_key(path)
        candidates = [join_key(id_key)] if id_key else []
        if stem_counts[stem] == 1:  # a shared stem cannot say which particle it is
            candidates.append(stem)
        hit = next((keyed[k] for k in candidates if k in keyed), None)
        if hit is None:
            name = origin if origin != path else Path(path).name
            if stem_counts[stem] > 1:
                name += " (file stem shared with another image, so not used as key)"
            unmatched.append(name)
        else:
            out[i] = hit[1]
    if unmatched:
        raise ValueError(
            f"{len(unmatched)} image(s) have no row in the metadata "
            f"(matched on the CSV id and the file stem): {listing(unmatched)}"
        )
    missing = int(np.isnan(out).sum())
    if missing:
        warn(f"{missing} particle(s) have an empty size in the metadata: esd_um left empty")
    return out


def read_class_folders(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    labels_csv: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    metadata_csv: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    id_column: str | None = None,
    domain: str = "IMPORT",
    sample_id: str | None = None,
    pixel_size_um: float | None = None,
    class_map: Mapping[str, str] | str | os.PathLike | None = None,
    unlabelled_folder: str | None = None,
    unlabelled: bool = False,
) -> Path:
    """Write a campaign at ``out`` for the images under ``src``; see the module doc.

    ``labels_csv`` switches from the folder-per-class layout to labels CSV(s);
    ``unlabelled`` imports every image below ``src`` (flat or nested) without a label;
    ``metadata_csv`` supplies particle sizes, joined on ``id_column``. Raises
    ``ValueError`` (a :class:`SourceError` lists every defect) before writing
    anything; warns (:class:`ReaderWarning`) about ignored files and unknown sizes.
    """
    src, out = prepare_output(src, out)
    domain = str(domain).strip()
    sample_id = domain if sample_id is None else str(sample_id).strip()
    if not domain or not sample_id:
        raise ValueError("domain and sample id must not be empty")

    if unlabelled:
        if labels_csv is not None or class_map is not None or unlabelled_folder is not None:
            raise ValueError("unlabelled takes no labels CSV, class map or unlabelled folder")
        rows = _scan_unlabelled(src)
    elif labels_csv is None:
        rows = _scan_class_folders(src)
    else:
        csvs = [labels_csv] if isinstance(labels_csv, str | os.PathLike) else list(labels_csv)
        if not csvs:
            raise ValueError("labels_csv is an empty list")
        rows = _rows_from_labels_csvs(src, [Path(c) for c in csvs])

    if unlabelled:
        labels, classes = [""] * len(rows), None  # no class list: the campaign it joins has one
    else:
        labels, classes = map_labels(list(rows["source_label"]), class_map, unlabelled_folder)

    if metadata_csv is None:
        if pixel_size_um is not None:
            warn("pixel size given without a metadata CSV: it is not used")
        esd = np.full(len(rows), np.nan)
        warn(
            f"no metadata CSV: esd_um is empty (unknown) for all {len(rows)} particles; "
            "they cannot contribute to flux until sizes are supplied"
        )
    else:
        metas = (
            [metadata_csv] if isinstance(metadata_csv, str | os.PathLike) else list(metadata_csv)
        )
        esd = esd_from_metadata(rows, metas, id_column, pixel_size_um)

    particles = pd.DataFrame(
        {
            "particle_id": rows["particle_id"],
            "image": rows["path"],
            "domain": domain,
            "sample_id": sample_id,
            "esd_um": esd,
            "label": labels,
        }
    )
    ids = list(particles["particle_id"])
    order = sorted(range(len(ids)), key=lambda i: natural_key(ids[i]))
    particles = particles.iloc[order].reset_index(drop=True)
    samples = pd.DataFrame(
        {
            "sample_id": [sample_id],
            "domain": [domain],
            "depth_m": [""],
            "imaged_area_m2": [""],
            "deployment_days": [""],
        }
    )
    return write_campaign(out, particles, samples, classes=classes)
