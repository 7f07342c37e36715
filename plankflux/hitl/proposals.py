"""Proposal folders: the images an expert verifies by moving or deleting files (docs/paper_a.md).

Layout of a proposal folder ``<dir>``::

    <dir>/<class>/<key>__<original file name>   one per proposed particle (copy or symlink)
    <dir>/<class>/                              one folder per class, even when empty
    <dir>/manifest.csv                          written last; its presence = folder complete

``manifest.csv`` columns: ``particle_id``, ``image`` (path relative to ``<dir>``, with
``/``, e.g. ``aggregate/RR01_000012__RR01_000012.png``), ``proposed_label``, ``score``,
``rank``, then any constant ``manifest_extra`` columns. A particle proposed for two
classes (minboost handles each class on its own) has a row and a file in each of
the two class folders, under the same file name. ``<key>`` is the particle id
with characters outside ``[A-Za-z0-9._-]`` (and leading dots) replaced by ``_``; when
that changes the id, or two ids would clash on a case-insensitive file system, a short
hash of the id is appended, so every file name is unique and maps back to one particle.

The user's original images are only read: copies are made with ``shutil.copy2`` (or
symbolic links with ``os.symlink``), each into a temporary name then renamed into
place, so an interrupted run leaves only complete files and can be resumed.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from plankflux.data.campaign import Campaign, load_campaign
from plankflux.hitl.voting import PROPOSAL_COLUMNS
from plankflux.layout import MANIFEST_FILE
from plankflux.utils.atomic import atomic_open
from plankflux.utils.paths import check_name, ensure_inside

log = logging.getLogger(__name__)

# Files an operating system drops into folders a person browses; never an error.
OS_METADATA_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".localized"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_NAME = 200


def is_os_metadata(name: str) -> bool:
    """Whether ``name`` is operating-system clutter (``.DS_Store``, ``._x``, ``Thumbs.db``)."""
    return name in OS_METADATA_FILES or name.startswith("._")


def is_partial(name: str) -> bool:
    """Whether ``name`` is a temporary file of an interrupted :func:`write_proposal_folder`."""
    return name.startswith(".") and name.endswith(".partial")


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def proposal_keys(particle_ids: Sequence[str]) -> list[str]:
    """The ``<key>`` of each particle's proposal file name (see module doc); it depends
    on the whole id set only through case-insensitive clashes between distinct ids (a
    particle listed twice, e.g. in two minboost classes, keeps one key)."""
    unique = list(dict.fromkeys(particle_ids))
    keys = []
    for pid in unique:
        key = _UNSAFE.sub("_", pid)
        key = "_" + key[1:] if key.startswith(".") else key
        if key != pid or len(key) > 80:
            key = f"{key[:80]}-{_short_hash(pid)}"
        keys.append(key)
    folded = pd.Series([k.lower() for k in keys])
    clash = folded.duplicated(keep=False).to_numpy()
    key_of = {
        p: f"{k}-{_short_hash(p)}" if c else k for k, p, c in zip(keys, unique, clash, strict=True)
    }
    return [key_of[pid] for pid in particle_ids]


def proposal_file_names(particle_ids: Sequence[str], images: Sequence[str]) -> list[str]:
    """File names ``<key>__<original file name>`` for the proposal folder (see module doc)."""
    names = []
    for key, image in zip(proposal_keys(particle_ids), images, strict=True):
        base = _UNSAFE.sub("_", Path(image).name)
        stem, suffix = os.path.splitext(base)
        room = max(_MAX_NAME - len(key) - 2 - len(suffix), 1)
        names.append(f"{key}__{stem[:room]}{suffix}")
    if len({n.lower() for n in names}) != len(names):  # only if two hashes collide
        raise ValueError("proposal file names are not unique; particle ids clash")
    return names


def manifest_frame(
    proposals: pd.DataFrame,
    campaign: Campaign,
    classes: Sequence[str],
    manifest_extra: Mapping[str, object] | None = None,
) -> tuple[pd.DataFrame, list[Path]]:
    """The manifest rows for ``proposals`` and the original image of each row."""
    missing = [c for c in PROPOSAL_COLUMNS if c not in proposals.columns]
    if missing:
        raise ValueError(f"proposals lack column(s) {missing}")
    ids = proposals["particle_id"].astype(str)
    labels = proposals["proposed_label"].astype(str)
    twice = pd.DataFrame({"id": ids, "label": labels}).duplicated()
    if twice.any():  # one particle may sit in two class folders (minboost), not twice in one
        duplicated = sorted(set(ids[twice.to_numpy()]))
        raise ValueError(f"particles proposed more than once for one class: {duplicated[:20]}")
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ValueError(f"proposed label(s) not in the class list: {unknown}")
    particles = campaign.particles.set_index(campaign.particles["particle_id"].astype(str))
    absent = sorted(set(ids) - set(particles.index))
    if absent:
        raise ValueError(f"{len(absent)} proposed particle(s) not in the campaign: {absent[:20]}")
    images = particles.loc[ids, "image"].tolist()
    unique_ids = list(dict.fromkeys(ids))  # a particle in two class folders: one file name
    unique_names = proposal_file_names(unique_ids, particles.loc[unique_ids, "image"].tolist())
    name_of = dict(zip(unique_ids, unique_names, strict=True))
    names = [name_of[pid] for pid in ids]
    frame = pd.DataFrame(
        {
            "particle_id": ids.to_numpy(),
            "image": [f"{c}/{n}" for c, n in zip(labels, names, strict=True)],
            "proposed_label": labels.to_numpy(),
            "score": proposals["score"].to_numpy(dtype=float),
            "rank": proposals["rank"].to_numpy(dtype="int64"),
        }
    )
    for column, value in (manifest_extra or {}).items():
        if column in frame.columns:
            raise ValueError(f"manifest_extra may not replace column {column!r}")
        frame[column] = value
    return frame, [campaign.image_path(p) for p in images]


def _manifest_text(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def _is_done(dst: Path, src: Path, link: bool) -> bool:
    """Whether ``dst`` already is the finished copy (or link) of ``src``."""
    if link:
        return dst.is_symlink() and os.readlink(dst) == os.path.abspath(src)
    return not dst.is_symlink() and dst.is_file() and dst.stat().st_size == src.stat().st_size


def _check_resumable(
    out_dir: Path, frame: pd.DataFrame, sources: list[Path], classes: Sequence[str], link: bool
) -> None:
    """Refuse (listing every offending path) unless ``out_dir`` is a partial run of this set."""
    expected = dict(zip((out_dir / image for image in frame["image"]), sources, strict=True))
    offending, partial = [], []
    for entry in sorted(out_dir.iterdir()):
        if is_os_metadata(entry.name):
            continue
        if not (entry.is_dir() and not entry.is_symlink() and entry.name in classes):
            offending.append(entry)
            continue
        for item in sorted(entry.iterdir()):
            if is_os_metadata(item.name):
                continue
            if is_partial(item.name):
                partial.append(item)
                continue
            if item not in expected or not _is_done(item, expected[item], link):
                offending.append(item)
    if offending:
        listed = "\n  ".join(str(p) for p in offending[:25])
        more = f"\n  ... and {len(offending) - 25} more" if len(offending) > 25 else ""
        raise FileExistsError(
            f"{out_dir} is not empty and holds no {MANIFEST_FILE}; refusing to write into it. "
            f"Not part of this proposal set:\n  {listed}{more}"
        )
    for item in partial:  # left by an interrupted run
        item.unlink()


def _place(src: Path, dst: Path, link: bool) -> None:
    """Copy (or symlink) ``src`` to ``dst`` through a temporary name in ``dst``'s folder."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.partial")
    tmp.unlink(missing_ok=True)
    try:
        if link:
            os.symlink(os.path.abspath(src), tmp)
        else:
            shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    finally:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()


def write_proposal_folder(
    proposals: pd.DataFrame,
    campaign: Campaign | str | os.PathLike,
    out_dir: str | os.PathLike,
    link: bool = False,
    manifest_extra: Mapping[str, object] | None = None,
    classes: Sequence[str] | None = None,
) -> Path:
    """Write ``proposals`` (``particle_id, proposed_label, score, rank``) as a proposal folder.

    ``campaign``: a loaded :class:`Campaign` or its folder. ``link``: symbolic links
    instead of copies. ``manifest_extra``: constant columns appended to the manifest
    (e.g. ``{"round": "minboost"}``). ``classes``: the class folders to create
    (default: the campaign's class list).

    An existing folder whose ``manifest.csv`` is exactly what would be written is left
    untouched (a finished identical run, possibly already edited by the expert); one
    with a different manifest, or other content, raises ``FileExistsError``. A folder
    without manifest holding only files of this same set (an interrupted run) is
    completed. Missing original images raise ``FileNotFoundError`` listing them all,
    before anything is written. Returns ``out_dir``.
    """
    if not isinstance(campaign, Campaign):
        campaign = load_campaign(campaign, check_images="none")
    classes = tuple(classes if classes is not None else campaign.classes)
    for name in classes:  # class names become folder names
        check_name(name, "class name")
    out_dir = Path(out_dir)
    frame, sources = manifest_frame(proposals, campaign, classes, manifest_extra)
    for image in frame["image"]:
        ensure_inside(out_dir / image, out_dir, "proposal folder")
    text = _manifest_text(frame)

    manifest = out_dir / MANIFEST_FILE
    if manifest.exists():
        if manifest.read_bytes() == text.encode("utf-8"):
            log.info("%s is already complete (identical manifest); nothing to do", out_dir)
            return out_dir
        raise FileExistsError(
            f"{out_dir} already holds a different proposal set ({MANIFEST_FILE} differs); "
            "choose another folder or remove it"
        )
    missing = [str(src) for src in sources if not src.is_file()]
    if missing:
        listed = "\n  ".join(missing[:25])
        more = f"\n  ... and {len(missing) - 25} more" if len(missing) > 25 else ""
        raise FileNotFoundError(f"{len(missing)} original image(s) not found:\n  {listed}{more}")
    if out_dir.exists() and any(out_dir.iterdir()):
        _check_resumable(out_dir, frame, sources, classes, link)

    for name in classes:
        (out_dir / name).mkdir(parents=True, exist_ok=True)
    progress = tqdm(
        list(zip(frame["image"], sources, strict=True)),
        desc=f"{'linking' if link else 'copying'} proposals",
        unit="img",
        disable=True if len(frame) < 100 else None,
    )
    for image, src in progress:
        dst = out_dir / image
        if not (dst.is_symlink() or dst.exists()) or not _is_done(dst, src, link):
            _place(src, dst, link)
    with atomic_open(manifest, "w", newline="", encoding="utf-8") as handle:
        handle.write(text)
    log.info("wrote %d proposals into %s", len(frame), out_dir)
    return out_dir
