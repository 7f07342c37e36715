"""CytoClus exports -> the CytoSense pair layout (docs/data_formats.md).

A CytoClus export of a set ``S`` (e.g. "All Imaged Particles") of measurement ``M``::

    M_S_Pulses.csv     one row per sample point: Particle ID, then one column per
                       channel; particles separated by all-zero rows
    M_S_Listmode.csv   one row per particle (Particle ID, Sample Length, features)
    M_Info.txt         instrument settings
    M_S_Images/M_Cropped_<id>.jpg  (or a ``*_Images.zip``) cropped particle images

Both locales occur (``,`` and decimal points; ``;`` and decimal commas): the header decides.

Channel mapping (``PROFILE_BANDS`` order: FWS, SWS, FL green, yellow, orange, red):
``FWS``/``Forward Scatter`` -> fws (or the mean of ``FWS L`` and ``FWS R`` when only
those are exported); ``SWS``/``Sidewards Scatter`` -> sws; ``FL Green`` ... ``FL Red``
(any case) -> the fluorescence bands. Other channels (``Curvature``, ``Trigger``,
``FL Red 2``, ...) are dropped and listed in the result. A band the instrument lacks
(many units have no green detector) is zero-filled, i.e. reads as a detector that saw
nothing (−1 after log compression), with a warning; ``missing_channels="error"``
refuses instead. Compare such data only with models that saw the band silent too.

CytoClus crops carry no scale bar, but the Paper B image pipeline always crops the
top 25 px; the reader therefore adds a ``scale_bar_px`` strip (background grey with
a dark bar) above each image (greyscale PNG). Nothing is written into the source.
"""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from plankflux.data.cytosense import ANNOTATIONS_FILE, PROFILE_BANDS, write_pairs, write_profile
from plankflux.data.images import as_grey, open_image
from plankflux.data.readers.common import SourceError, listing, prepare_output, warn
from plankflux.errors import PlankfluxError
from plankflux.utils.paths import name_problem

CHANNEL_ALIASES = {
    "fws": ("fws", "forwardscatter"),
    "sws": ("sws", "sidewardsscatter", "sidewardscatter", "sidescatter"),
    "fl_green": ("flgreen", "fluorescencegreen"),
    "fl_yellow": ("flyellow", "fluorescenceyellow"),
    "fl_orange": ("florange", "fluorescenceorange"),
    "fl_red": ("flred", "fluorescencered"),
}
FWS_HALVES = (("fwsl", "fwsr"), ("forwardscatterleft", "forwardscatterright"))
_CROPPED = re.compile(r"^(?P<m>.+)_Cropped_(?P<id>\d+)\.(jpe?g|png|tiff?|bmp)$", re.IGNORECASE)


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass
class CytoClusImport:
    """What :func:`read_cytoclus` found and wrote (counts over every export)."""

    root: Path
    n_particles: int = 0  # particles parsed from the pulse files
    n_imaged: int = 0  # of them with a cropped image
    n_written: int = 0  # rows of annotations.csv
    samples: list[str] = field(default_factory=list)
    dropped_channels: dict[str, list[str]] = field(default_factory=dict)  # sample -> names
    zero_filled: dict[str, list[str]] = field(default_factory=dict)  # sample -> bands


def parse_pulses(path: str | os.PathLike) -> tuple[list[str], dict[int, np.ndarray]]:
    """Read a ``*_Pulses.csv``: the channel names and ``{particle id: (L, C) float64}``.

    Particles are the runs of rows between all-zero separator rows (a change of
    Particle ID also ends a run, for exports without separators). Particle 0 is told
    from a separator by its non-zero signals.
    """
    path = Path(path)
    with open(path, encoding="utf-8-sig") as handle:
        header = handle.readline()
    sep = ";" if header.count(";") > header.count(",") else ","  # ";" means decimal commas
    try:
        text = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise SourceError(path, [f"{path.name}: cannot be read as a table: {err}"]) from err
    text.columns = [c.strip() for c in text.columns]
    if len(text.columns) < 2 or _key(text.columns[0]) != "particleid":
        raise SourceError(path, [f"{path.name} line 1: expected 'Particle ID' then channels"])
    cells = text.apply(lambda c: c.str.strip().str.replace(",", ".") if sep == ";" else c)
    array = cells.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = [  # line = row + 2: line 1 is the header
        f"{path.name} line {i + 2}, column {text.columns[j]!r}: not a number: {text.iat[i, j]!r}"
        for i, j in zip(*np.nonzero(~np.isfinite(array)), strict=True)
    ]
    if bad:
        raise SourceError(path, bad)
    ids, separator = array[:, 0], (array == 0).all(axis=1)
    starts = np.flatnonzero(np.r_[True, (ids[1:] != ids[:-1]) | separator[:-1]] & ~separator)
    lasts = np.flatnonzero(np.r_[(ids[1:] != ids[:-1]) | separator[1:], True] & ~separator)
    particles, first_line, problems = {}, {}, []
    for a, b in zip(starts, lasts, strict=True):
        pid = int(ids[a])
        if pid in particles:
            again = f"particle {pid} appears again (first block on line {first_line[pid]})"
            problems.append(f"{path.name} line {a + 2}: {again}")
        particles[pid], first_line[pid] = array[a : b + 1, 1:], int(a) + 2
    if problems:
        raise SourceError(path, problems)
    return list(text.columns[1:]), particles


def channel_plan(channels: list[str], missing: str, where: str):
    """Which instrument columns make each band: ``(plan, dropped names, zero-filled bands)``.

    ``plan[b]`` lists the column indices averaged into band ``b`` (empty = zero-filled).
    """
    keys = [_key(c) for c in channels]
    plan: list[list[int]] = []
    zero = []
    for band in PROFILE_BANDS:
        hits = [i for i, k in enumerate(keys) if k in CHANNEL_ALIASES[band]][:1]
        if not hits and band == "fws":
            halves = [[keys.index(k) for k in pair if k in keys] for pair in FWS_HALVES]
            hits = next((h for h in halves if len(h) == 2), [])
        if not hits:
            if missing == "error":
                message = f"{where}: no channel for band {band!r} (channels: {listing(channels)})"
                raise SourceError(where, [message])
            zero.append(band)
        plan.append(hits)
    used = {i for hits in plan for i in hits}
    return plan, [c for i, c in enumerate(channels) if i not in used], zero


def apply_plan(profile: np.ndarray, plan: list[list[int]]) -> np.ndarray:
    """(L, C) instrument channels -> (L, 6) bands in ``PROFILE_BANDS`` order."""
    out = np.zeros((len(profile), len(PROFILE_BANDS)), dtype=np.float64)
    for b, hits in enumerate(plan):
        if hits:
            out[:, b] = profile[:, hits].mean(axis=1)
    return out


def _measurement(prefix: str, folder: Path, image_names: set[str]) -> str:
    """The measurement name ``M`` of an export ``M[_set]``: from ``M_Info.txt`` or images."""
    names = {p.name[: -len("_Info.txt")] for p in folder.glob("*_Info.txt")} | image_names
    hits = [m for m in names if prefix == m or prefix.startswith(m + "_")]
    return max(hits, key=len, default=prefix)


def _index_images(folder: Path) -> dict[tuple[str, int], tuple[Path, str | None]]:
    """``(measurement, id) -> (file or zip, member or None)`` for every cropped image."""
    found: dict[tuple[str, int], tuple[Path, str | None]] = {}
    for path in sorted(folder.rglob("*")):
        if any(p.startswith((".", "__MACOSX")) for p in path.relative_to(folder).parts):
            continue
        if path.suffix.lower() == ".zip":
            if not zipfile.is_zipfile(path):
                raise ValueError(f"{path}: not a readable zip archive of cropped images")
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    name = member.rsplit("/", 1)[-1]
                    if "__MACOSX" not in member and (m := _CROPPED.match(name)):
                        found.setdefault((m["m"], int(m["id"])), (path, member))
        elif m := _CROPPED.match(path.name):
            found[(m["m"], int(m["id"]))] = (path, None)  # a loose file beats a zip member
    return found


def _load_image(source: tuple[Path, str | None]) -> Image.Image:
    """The crop as greyscale; a ``ValueError`` naming the file (``archive.zip:member`` for
    a crop inside a zip) when it cannot be decoded."""
    path, member = source
    where = f"{path}:{member}" if member is not None else str(path)
    try:
        if member is not None:
            with zipfile.ZipFile(path) as archive:
                path = io.BytesIO(archive.read(member))
        return as_grey(open_image(path))
    except PlankfluxError:
        raise  # already names the file (an oversized image)
    except (OSError, SyntaxError, ValueError, zipfile.BadZipFile) as err:  # Pillow's errors
        detail = re.sub(r"<_io\.BytesIO object at \w+>", "(zip member)", str(err))
        raise ValueError(f"{where}: cannot be decoded as an image ({detail})") from err


def add_scale_bar_strip(image: Image.Image, height: int) -> Image.Image:
    """Put a ``height``-px strip (background grey, a dark bar) above a greyscale image."""
    if height <= 0:
        return image
    pixels = np.asarray(image, dtype=np.uint8)
    strip = np.full((height, pixels.shape[1]), int(np.median(pixels[0])), dtype=np.uint8)
    bar = slice(height // 2 - 1, height // 2 + 1)
    strip[bar, 2 : max(3, pixels.shape[1] // 3)] = 0
    return Image.fromarray(np.vstack([strip, pixels]))


def _read_labels(labels: str | os.PathLike | dict | None) -> dict[str, str]:
    if labels is None or isinstance(labels, dict):
        return {str(k): str(v) for k, v in (labels or {}).items()}
    try:
        frame = pd.read_csv(labels, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{labels}: cannot be read as a UTF-8 CSV ({err})") from err
    column = next((c for c in ("class", "label") if c in frame.columns), None)
    if "particle_id" not in frame.columns or column is None:
        raise ValueError(f"{labels}: needs the columns particle_id and class (or label)")
    ids, names = frame["particle_id"].str.strip(), frame[column].str.strip()
    problems = [
        f"line {i + 2}, column {column!r}: class name {name_problem(name)}"
        for i, name in enumerate(names)
        if name and name_problem(name)
    ]
    problems += [
        f"particle_id {pid!r} is listed more than once"
        for pid in sorted(set(ids[ids.duplicated()]))
    ]
    if problems:
        raise ValueError(f"{labels}: " + "; ".join(problems[:20]))
    return dict(zip(ids, names, strict=True))


def read_cytoclus(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    labels: str | os.PathLike | dict | None = None,
    only_imaged: bool = True,
    missing_channels: str = "zero",
    scale_bar_px: int = 25,
) -> CytoClusImport:
    """Convert every ``*_Pulses.csv`` export under ``src`` into a pair layout at ``out``.

    ``labels``: a CSV (``particle_id``, ``class`` or ``label``) or a dict keyed by
    ``particle_id`` (``<measurement>_<Particle ID>``, as EcoTaxa's object_id) or the bare
    Particle ID; unlisted particles stay unlabelled. ``only_imaged``: write only the
    particles with a cropped image (pairs); with False every particle is written and
    the image cell is empty when it has none (load with ``allow_missing_image``).
    """
    if missing_channels not in ("zero", "error"):
        raise ValueError(f"missing_channels must be zero or error, got {missing_channels!r}")
    src, out = prepare_output(src, out)
    if (out / ANNOTATIONS_FILE).exists():
        raise ValueError(f"output folder {out} already holds {ANNOTATIONS_FILE}")
    pulses = sorted(p for p in src.rglob("*_Pulses.csv") if "Polynomial" not in p.name)
    if not pulses:
        raise ValueError(f"no CytoClus *_Pulses.csv export under {src}")
    names = _read_labels(labels)
    result, rows, indexed, undecodable = CytoClusImport(out), [], {}, []
    for pulse_file in pulses:
        prefix = pulse_file.name[: -len("_Pulses.csv")]
        channels, particles = parse_pulses(pulse_file)
        plan, dropped, zero = channel_plan(channels, missing_channels, pulse_file.name)
        if pulse_file.parent not in indexed:
            indexed[pulse_file.parent] = _index_images(pulse_file.parent)
        images = indexed[pulse_file.parent]
        measurement = _measurement(prefix, pulse_file.parent, {k[0] for k in images})
        listmode = pulse_file.with_name(prefix + "_Listmode.csv")
        if listmode.is_file():
            _check_listmode(listmode, particles)
        if zero:
            there = f"(channels there: {listing(channels)})"
            warn(f"{pulse_file.name}: no channel for {listing(zero)}; zero-filled {there}")
        result.samples.append(measurement)
        result.dropped_channels[measurement], result.zero_filled[measurement] = dropped, zero
        folder = re.sub(r"[^\w.-]+", "_", measurement).strip("_")  # no spaces in our paths
        for pid, raw in particles.items():
            source = images.get((measurement, pid))
            result.n_particles += 1
            result.n_imaged += source is not None
            if source is None and only_imaged:
                continue
            image = ""
            if source is not None:
                try:
                    crop = _load_image(source)
                except ValueError as err:  # every bad crop is listed, then nothing imported
                    undecodable.append(str(err))
                    continue
                image = f"images/{folder}/{folder}_{pid}.png"
                (out / image).parent.mkdir(parents=True, exist_ok=True)
                add_scale_bar_strip(crop, scale_bar_px).save(out / image)
            profile = f"profiles/{folder}/{pid}.csv"
            write_profile(out / profile, apply_plan(raw, plan))
            particle_id = f"{measurement}_{pid}"
            label = names.get(particle_id, names.get(str(pid), ""))
            rows.append((image, profile, label, particle_id, measurement))
    if undecodable:  # annotations.csv is not written: the half-written folder never loads
        raise SourceError(
            src, undecodable, note=f" (nothing imported: {ANNOTATIONS_FILE} not written; "
            "repair or remove these crops, then import again)",
        )  # fmt: skip
    columns = ["image", "profile", "class", "particle_id", "sample"]
    write_pairs(out, pd.DataFrame(rows, columns=columns))
    result.n_written = len(rows)
    return result


def _check_listmode(path: Path, particles: dict[int, np.ndarray]) -> None:
    """Warn where the listmode and the pulse file disagree (ids, Sample Length).

    Read with the csv module: real exports have rows with more or fewer fields than
    the header (see the ULCO mock), which must not stop an import of the pulses.
    """
    with open(path, encoding="utf-8-sig", newline="") as handle:
        header = handle.readline()
        sep = ";" if header.count(";") > header.count(",") else ","
        names = [_key(c) for c in next(csv.reader([header], delimiter=sep))]
        rows = [r for r in csv.reader(handle, delimiter=sep) if r]
    ragged = [i + 2 for i, r in enumerate(rows) if len(r) != len(names)]
    if ragged:
        warn(f"{path.name}: line(s) {listing(ragged)} have a field count unlike the header")
    if names[:2] != ["particleid", "samplelength"]:
        return  # not the layout CytoClus writes: nothing to compare
    number = lambda text: float(text.replace(",", ".") if sep == ";" else text)  # noqa: E731
    try:
        lengths = {int(number(r[0])): number(r[1]) for r in rows}
    except (ValueError, IndexError) as err:
        warn(f"{path.name}: cannot read Particle ID / Sample Length ({err}); not checked")
        return
    ids = set(lengths)
    only_pulses, only_list = sorted(set(particles) - ids), sorted(ids - set(particles))
    if only_pulses or only_list:
        only = f"only in the pulse file: {listing(only_pulses)}; only in the listmode: "
        warn(f"{path.name}: particles {only}{listing(only_list)}")
    off = [i for i, n in lengths.items() if i in particles and len(particles[i]) != n]
    if off:
        warn(
            f"{path.name}: Sample Length differs from the pulse rows for particle(s) "
            f"{listing(off)} (a truncated export?)"
        )
