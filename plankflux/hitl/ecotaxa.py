"""EcoTaxa exchange: send a proposal set to EcoTaxa and take the expert's verdict back.

Scientists in this field often verify images in EcoTaxa rather than in a folder.
Two directions:

* :func:`export_ecotaxa_bundle` turns a proposal folder (``<dir>/<class>/<file>`` plus
  ``<dir>/manifest.csv``) into an EcoTaxa import bundle: a zip holding
  ``ecotaxa_plankflux.tsv`` and copies of the proposed images. The TSV has EcoTaxa's
  header row and type row (``[t]`` text, ``[f]`` float) and carries each proposal as a
  *predicted* annotation (``object_annotation_category`` = proposed label), so the
  expert validates or corrects it in EcoTaxa's annotation view.
* :func:`import_ecotaxa_verification` reads the TSV EcoTaxa exports afterwards and
  turns it into the same ``verified.csv`` (``particle_id``, ``label``, ``action``) that
  the folder ingest writes, so the rest of the pipeline does not care which way the
  expert worked.

Nothing here moves, renames or modifies the user's images: the bundle holds copies
read from the proposal folder.
"""

from __future__ import annotations

import math
import os
import re
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

import pandas as pd

from plankflux.data.campaign import Campaign
from plankflux.data.classes import TRAP_CLASSES
from plankflux.data.readers.ecotaxa import STATUS, EcoTaxaError, read_ecotaxa_tsv
from plankflux.layout import MANIFEST_COLUMNS, MANIFEST_FILE, VERIFIED_COLUMNS
from plankflux.utils.atomic import atomic_path, write_csv_atomic
from plankflux.utils.paths import is_inside, name_problem

TSV_NAME = "ecotaxa_plankflux.tsv"

#: Fixed timestamp for every zip member (the zip epoch), so exports are byte-identical.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ZIP_MODE = 0o644 << 16
_MAX_LISTED = 50


def _listing(items: Iterable[object]) -> str:
    items = [str(i) for i in items]
    shown = "\n  ".join(items[:_MAX_LISTED])
    more = f"\n  ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return f"\n  {shown}{more}"


# --------------------------------------------------------------------------- manifest


def _read_manifest(path: Path, required: Sequence[str]) -> pd.DataFrame:
    if not path.is_file():
        raise EcoTaxaError(f"proposal manifest not found: {path}")
    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, encoding="utf-8-sig", na_filter=False
        )
    except Exception as err:
        raise EcoTaxaError(f"cannot read proposal manifest {path}: {err}") from err
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise EcoTaxaError(f"proposal manifest {path} lacks column(s) {missing}")
    frame = frame.apply(lambda col: col.str.strip())
    empty = frame.index[frame["particle_id"] == ""].tolist()
    if empty:
        lines = [f"line {i + 2}" for i in empty]
        raise EcoTaxaError(f"proposal manifest {path} has empty particle_id on:{_listing(lines)}")
    dup = sorted(set(frame.loc[frame["particle_id"].duplicated(), "particle_id"]))
    if dup:
        raise EcoTaxaError(f"proposal manifest {path} lists particle(s) twice:{_listing(dup)}")
    return frame.reset_index(drop=True)


# --------------------------------------------------------------------------- export


def _float_text(value: object) -> str:
    """A float cell: shortest round-trip text, empty for unknown."""
    if value is None or value == "":
        return ""
    number = float(value)
    if not math.isfinite(number):
        return ""
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def _zip_member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = _ZIP_MODE
    info.create_system = 3  # unix, whatever the platform, so the bytes do not vary
    return info


def _safe_member_name(image: str) -> str | None:
    """The manifest's relative image path as a zip member name; ``None`` if unsafe."""
    text = image.replace("\\", "/")
    path = PurePosixPath(text)
    if not text or path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", text):
        return None
    return path.as_posix()


def _foreign_files(proposal_dir, manifest, members, campaign, particles) -> list[str]:
    """Proposal files that are not their particle's image: a symbolic link to anything
    else (e.g. a system file; a linked proposal must point at the campaign image), a
    path that leaves the folder, an empty file or a proposed label that is no name."""
    bad = []
    for pid, label, member in zip(
        manifest["particle_id"], manifest["proposed_label"], members, strict=True
    ):
        if name_problem(label):
            bad.append(f"{pid}: proposed_label {label!r} {name_problem(label)}")
        if member is None or pid not in particles.index:
            continue
        path = proposal_dir / member
        if not path.is_file():
            continue
        if path.is_symlink():
            image = campaign.image_path(particles.at[pid, "image"])
            if os.path.realpath(path) != os.path.realpath(image):
                bad.append(f"{path}: a link to {os.path.realpath(path)}, not to {pid}'s image")
        elif not is_inside(path, proposal_dir):
            bad.append(f"{path}: lies outside {proposal_dir}")
        elif path.stat().st_size == 0:
            bad.append(f"{path}: empty file")
    return [f"proposal file(s) that are not the proposed image:{_listing(bad)}"] if bad else []


def export_ecotaxa_bundle(
    proposal_dir: str | os.PathLike,
    campaign: Campaign,
    out_zip: str | os.PathLike,
    sample_id_column: bool = True,
    category_map: Mapping[str, str] | None = None,
) -> Path:
    """Write an EcoTaxa import bundle (zip) for a proposal folder; return its path.

    The zip holds ``ecotaxa_plankflux.tsv`` (header row, then EcoTaxa's type row) and a
    copy of every proposed image under the same relative path it has in the proposal
    folder (``img_file_name`` is that path, relative to the TSV). Columns:
    ``object_id`` (the particle_id), ``img_file_name``, ``object_annotation_category``
    (the proposed label, or ``category_map[label]`` to use EcoTaxa's taxonomy names),
    ``object_annotation_status`` (``predicted``), ``object_plankflux_score`` and
    ``object_plankflux_rank`` ``[f]``, ``object_esd_um`` ``[f]`` when the campaign
    knows any particle's ESD (empty where unknown), ``object_domain`` and, with
    ``sample_id_column``, ``sample_id`` (the particle's trap sample).

    Rows are sorted by proposed label, rank, particle_id and every zip member has a
    fixed timestamp, so exporting the same folder twice gives byte-identical zips. The
    zip is written to a temporary file and renamed into place. Raises
    :class:`EcoTaxaError` listing every manifest particle missing from the campaign,
    every missing image and every unsafe image path; nothing is written then.
    """
    proposal_dir = Path(proposal_dir)
    manifest = _read_manifest(proposal_dir / MANIFEST_FILE, MANIFEST_COLUMNS)
    particles = campaign.particles.set_index("particle_id")

    problems: list[str] = []
    unknown = [pid for pid in manifest["particle_id"] if pid not in particles.index]
    if unknown:
        problems.append(f"particle(s) not in campaign {campaign.root}:{_listing(unknown)}")
    members: list[str | None] = [_safe_member_name(img) for img in manifest["image"]]
    unsafe = [img for img, m in zip(manifest["image"], members, strict=True) if m is None]
    if unsafe:
        problems.append(f"image path(s) not inside {proposal_dir}:{_listing(unsafe)}")
    counts = Counter(m for m in members if m is not None)
    twice = sorted(m for m, n in counts.items() if n > 1)
    if twice:
        problems.append(f"image(s) listed for more than one particle:{_listing(twice)}")
    missing = [
        str(proposal_dir / m) for m in members if m is not None and not (proposal_dir / m).is_file()
    ]
    if missing:
        problems.append(f"proposed image(s) missing:{_listing(missing)}")
    problems += _foreign_files(proposal_dir, manifest, members, campaign, particles)
    for column in ("score", "rank"):
        numbers = pd.to_numeric(manifest[column].replace("", "nan"), errors="coerce")
        bad = manifest.loc[numbers.isna() & (manifest[column] != ""), "particle_id"].tolist()
        if bad:
            problems.append(f"manifest {column} is not a number for:{_listing(bad)}")
    if problems:
        raise EcoTaxaError(f"cannot export {proposal_dir} to EcoTaxa:\n" + "\n".join(problems))

    manifest = manifest.assign(zip_member=members)
    manifest["rank_num"] = pd.to_numeric(manifest["rank"], errors="coerce")
    manifest = manifest.sort_values(
        ["proposed_label", "rank_num", "particle_id"], kind="mergesort", na_position="last"
    ).reset_index(drop=True)

    esd = pd.to_numeric(particles["esd_um"], errors="coerce") if "esd_um" in particles else None
    with_esd = esd is not None and bool(esd.notna().any())
    header = [
        ("object_id", "[t]"),
        ("img_file_name", "[t]"),
        ("object_annotation_category", "[t]"),
        ("object_annotation_status", "[t]"),
        ("object_plankflux_score", "[f]"),
        ("object_plankflux_rank", "[f]"),
    ]
    if with_esd:
        header.append(("object_esd_um", "[f]"))
    header.append(("object_domain", "[t]"))
    if sample_id_column:
        header.append(("sample_id", "[t]"))

    mapping = dict(category_map or {})
    rows: list[list[str]] = []
    for row in manifest.itertuples(index=False):
        info = particles.loc[row.particle_id]
        cells = [
            row.particle_id,
            row.zip_member,
            mapping.get(row.proposed_label, row.proposed_label),
            "predicted",
            _float_text(row.score),
            _float_text(row.rank),
        ]
        if with_esd:
            cells.append(_float_text(esd.loc[row.particle_id]))
        cells.append(str(info["domain"]))
        if sample_id_column:
            cells.append(str(info["sample_id"]))
        rows.append(cells)

    bad_cells = sorted({c for r in rows for c in r if re.search(r"[\t\r\n]", c)})
    if bad_cells:
        raise EcoTaxaError(f"value(s) contain a tab or line break:{_listing(map(repr, bad_cells))}")

    lines = ["\t".join(n for n, _ in header), "\t".join(t for _, t in header)]
    lines += ["\t".join(r) for r in rows]
    tsv = ("\n".join(lines) + "\n").encode("utf-8")

    out_zip = Path(out_zip)
    with atomic_path(out_zip) as tmp:
        with zipfile.ZipFile(tmp, "w") as bundle:
            bundle.writestr(_zip_member(TSV_NAME), tsv, compresslevel=6)
            for member in manifest["zip_member"]:
                data = (proposal_dir / member).read_bytes()
                bundle.writestr(_zip_member(member), data, compresslevel=6)
    return out_zip


# --------------------------------------------------------------------------- import


def _resolve_category(
    category: str, known: set[str], category_map: Mapping[str, str]
) -> str | None:
    if category in category_map:
        mapped = category_map[category]
        return mapped if mapped in known else None
    if category in known:
        return category
    head = category.split("<", 1)[0].strip()
    if "<" in category and head in known:
        return head
    return None


def import_ecotaxa_verification(
    tsv_path: str | os.PathLike,
    manifest_csv: str | os.PathLike,
    out_path: str | os.PathLike | None = None,
    category_map: Mapping[str, str] | None = None,
    classes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Turn an EcoTaxa export of the verified objects into ``verified.csv`` rows.

    ``tsv_path`` is the TSV EcoTaxa exported (a type row under the header is
    skipped if present; column order and extra columns do not matter), or a zip
    holding exactly one TSV. ``manifest_csv`` is the proposal folder's manifest.
    Each manifest particle gets one row, in manifest order:

    * ``object_annotation_status`` validated and the category is the proposed label:
      ``confirmed`` (label = proposed label);
    * validated with another category: ``relabelled`` (label = that category);
    * dubious, predicted or unclassified (the expert did not validate it), or absent
      from the export: ``rejected`` with an empty label. A warning counts those
      never reviewed (predicted/unclassified), since they are rejected unseen.

    Categories of validated objects are turned into class names by ``category_map``
    (EcoTaxa name -> class name) first; otherwise a class name is taken as is, and an
    EcoTaxa taxonomic name such as ``Copepoda<Maxillopoda`` becomes the part before
    ``<`` when that is a known class. Known classes are ``classes`` (default: Paper A's
    14) plus the manifest's proposed labels. Raises :class:`EcoTaxaError`, writing
    nothing, listing every unknown category, every exported object that is not in the
    manifest, every object exported twice with different annotations, and every
    unknown status. With ``out_path`` the table is written there atomically as CSV.

    The output has the folder ingest's columns and meanings: ``particle_id``,
    ``label``, ``action`` (``confirmed``, ``relabelled`` or ``rejected``).
    """
    manifest = _read_manifest(Path(manifest_csv), ("particle_id", "proposed_label"))
    export = read_ecotaxa_tsv(tsv_path)
    needed = ("object_id", "object_annotation_category", "object_annotation_status")
    missing = [c for c in needed if c not in export.columns]
    if missing:
        raise EcoTaxaError(f"EcoTaxa export {tsv_path} lacks column(s) {missing}")
    export = export[export["object_id"] != ""]

    known = set(TRAP_CLASSES if classes is None else classes) | set(manifest["proposed_label"])
    known.discard("")
    mapping = dict(category_map or {})
    problems: list[str] = []

    in_manifest = set(manifest["particle_id"])
    if not set(export["object_id"]) & in_manifest:
        raise EcoTaxaError(
            f"EcoTaxa export {tsv_path} holds none of the {len(in_manifest)} objects of "
            f"{manifest_csv} (empty, or the export of another project): nothing imported"
        )
    stray = sorted(set(export["object_id"]) - in_manifest)
    if stray:
        problems.append(f"object(s) in the export but not in {manifest_csv}:{_listing(stray)}")

    export = export.assign(status=export["object_annotation_status"].str.lower().map(STATUS))
    bad_status = sorted(set(export.loc[export["status"].isna(), "object_annotation_status"]))
    if bad_status:
        problems.append(f"unknown object_annotation_status value(s):{_listing(bad_status)}")

    # Several images of one object give several rows; they must agree.
    verdicts = export[["object_id", "status", "object_annotation_category"]].drop_duplicates()
    conflicting = sorted(set(verdicts.loc[verdicts["object_id"].duplicated(), "object_id"]))
    if conflicting:
        problems.append(
            f"object(s) exported twice with different annotations:{_listing(conflicting)}"
        )

    validated = verdicts[verdicts["status"] == "validated"]
    resolved: dict[str, str | None] = {
        c: _resolve_category(c, known, mapping)
        for c in sorted(set(validated["object_annotation_category"]))
    }
    unknown = [c for c, name in resolved.items() if name is None]
    if unknown:
        problems.append(
            "unknown categor(y/ies) of validated objects (pass category_map to map "
            f"EcoTaxa names to classes; known classes: {sorted(known)}):{_listing(unknown)}"
        )
    if problems:
        raise EcoTaxaError(f"cannot import EcoTaxa export {tsv_path}:\n" + "\n".join(problems))

    verdict = {
        row.object_id: (row.status, row.object_annotation_category)
        for row in verdicts.itertuples(index=False)
    }
    out_rows = []
    unreviewed = 0
    for pid, proposed in zip(manifest["particle_id"], manifest["proposed_label"], strict=True):
        status, category = verdict.get(pid, ("missing", ""))
        if status == "validated":
            label = resolved[category]
            out_rows.append((pid, label, "confirmed" if label == proposed else "relabelled"))
        else:
            unreviewed += status in ("predicted", "unclassified")
            out_rows.append((pid, "", "rejected"))
    if unreviewed:
        warnings.warn(
            f"{unreviewed} object(s) were still predicted/unclassified in the EcoTaxa export "
            "(never validated); they count as rejected",
            stacklevel=2,
        )
    table = pd.DataFrame(out_rows, columns=list(VERIFIED_COLUMNS), dtype=str)
    if out_path is not None:
        write_csv_atomic(table, out_path)
    return table
