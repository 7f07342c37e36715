"""Carbon per particle from its class and ESD: Table 1 of Paper A (docs/paper_a.md), as data.

Each flux group has a *shape* and parameters ``A`` and ``B``; a particle's carbon is
``C = A · V^B`` mg with the volume ``V`` (µm³) computed from its equivalent
spherical diameter ``ESD`` (µm) by the shape's rule:

======== ====================== ================== ===================
shape    width w                length l           volume V
======== ====================== ================== ===================
sphere   ESD                    ESD                4/3·π·(ESD/2)³
cylinder 264·ESD/(ESD+584)      π/w·(ESD/2)²       l·π·(w/2)²
ellipsoid 0.54·ESD              ESD²/w             4/3·(l/2)·π·(w/2)²
cuboid   0.63·ESD               π/w·(ESD/2)²       l·w·w/4
======== ====================== ================== ===================

The default table (:data:`TABLE1`, also ``conf/allometry/table1.yaml``) gives
aggregate, long/short/mini pellets, salp pellets, rhizaria and phytoplankton.
Classes whose ``FLUX_GROUP`` is ``None`` (swimmers, fibres, bubbles, noise) carry
zero carbon whatever their ESD. A user swaps in their own table with
:func:`load_allometry` (CSV with columns ``group, shape, A, B`` or the YAML form).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from plankflux.data.classes import FLUX_GROUP, ORIGINAL_GROUP

SHAPES = ("sphere", "cylinder", "ellipsoid", "cuboid")
ALLOMETRY_COLUMNS = ("group", "shape", "A", "B")
# Names that carry no carbon: the 14-class names without a flux group and their
# original-scheme groups (swimmer, fiber, unidentifiable).
ZERO_CARBON_NAMES = frozenset(
    [c for c, g in FLUX_GROUP.items() if g is None]
    + [ORIGINAL_GROUP[c] for c, g in FLUX_GROUP.items() if g is None]
)


@dataclass(frozen=True)
class Allometry:
    """Per flux group: ``shape`` (one of :data:`SHAPES`) and ``A`` (mg µm^-3B), ``B``.

    ``rows`` keeps the table order, which is the order of class groups in flux tables.
    """

    rows: tuple[tuple[str, str, float, float], ...]

    def __post_init__(self) -> None:
        problems = []
        names = [r[0] for r in self.rows]
        if not names:
            problems.append("the table has no rows")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(f"duplicate group(s) {dupes}")
        for group, shape, a, b in self.rows:
            if shape not in SHAPES:
                problems.append(f"group {group!r}: shape {shape!r} is not one of {SHAPES}")
            if not (math.isfinite(a) and a >= 0):
                problems.append(f"group {group!r}: A must be a finite number >= 0, got {a}")
            if not math.isfinite(b):
                problems.append(f"group {group!r}: B must be a finite number, got {b}")
        if problems:
            raise ValueError("invalid allometry table: " + "; ".join(problems))

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(r[0] for r in self.rows)

    def params(self, group: str) -> tuple[str, float, float]:
        """``(shape, A, B)`` of one group."""
        for name, shape, a, b in self.rows:
            if name == group:
                return shape, a, b
        raise KeyError(group)

    def with_params(self, **updates: tuple[float, float]) -> Allometry:
        """A copy with ``group=(A, B)`` replaced for the named groups."""
        unknown = sorted(set(updates) - set(self.groups))
        if unknown:
            raise ValueError(f"no allometry row for group(s) {unknown}")
        return Allometry(
            tuple(
                (g, s, *map(float, updates[g])) if g in updates else (g, s, a, b)
                for g, s, a, b in self.rows
            )
        )

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.rows), columns=list(ALLOMETRY_COLUMNS))

    @classmethod
    def from_records(cls, records: Iterable[Mapping], source: str = "table") -> Allometry:
        """From rows with keys ``group, shape, A, B`` (case-insensitive for A and B)."""
        rows, problems = [], []
        for i, rec in enumerate(records):
            rec = {str(k).strip(): v for k, v in dict(rec).items()}
            rec.update({k.upper(): v for k, v in rec.items() if k in ("a", "b")})
            missing = [c for c in ALLOMETRY_COLUMNS if c not in rec]
            if missing:
                problems.append(f"row {i + 1}: missing {missing}")
                continue
            try:
                a, b = float(rec["A"]), float(rec["B"])
            except (TypeError, ValueError):
                problems.append(f"row {i + 1}: A/B not numbers ({rec['A']!r}, {rec['B']!r})")
                continue
            rows.append((str(rec["group"]).strip(), str(rec["shape"]).strip(), a, b))
        if problems:
            raise ValueError(f"{source}: " + "; ".join(problems))
        try:
            return cls(tuple(rows))
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None


TABLE1 = Allometry(
    (
        ("aggregate", "sphere", 1.13e-10, 0.81),
        ("long_pellet", "cylinder", 1.13e-10, 1.0),
        ("short_pellet", "ellipsoid", 1.13e-10, 1.0),
        ("mini_pellet", "sphere", 1.13e-10, 1.0),
        ("salp_pellet", "cuboid", 4e-11, 1.0),
        ("rhizaria", "sphere", 4e-12, 0.939),
        ("phytoplankton", "sphere", 2.88e-10, 0.811),
    )
)


def load_allometry(source: str | os.PathLike | Mapping | Allometry | None = None) -> Allometry:
    """An :class:`Allometry` from ``None`` (Table 1), a CSV/YAML file or a mapping.

    CSV: columns ``group, shape, A, B``. YAML (and mappings such as a Hydra config):
    ``{"rows": [{"group": ..., "shape": ..., "A": ..., "B": ...}, ...]}``.
    """
    if source is None:
        return TABLE1
    if isinstance(source, Allometry):
        return source
    if isinstance(source, Mapping) or hasattr(source, "items"):
        records = dict(source.items()).get("rows")
        if records is None:
            raise ValueError("allometry mapping has no 'rows' list")
        return Allometry.from_records(records, "allometry config")
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"allometry table not found: {path}")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:  # safe_load refuses python/object tags: never runs code
            reason = str(err).splitlines()[0]
            raise ValueError(f"{path}: not a readable YAML allometry table ({reason})") from err
        if not isinstance(data, Mapping) or not isinstance(data.get("rows"), list):
            raise ValueError(f"{path}: expected a mapping with a 'rows' list")
        return Allometry.from_records(data["rows"], str(path))
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    frame.columns = [c.strip() for c in frame.columns]
    return Allometry.from_records(frame.to_dict("records"), str(path))


def shape_dimensions(shape: str, esd_um: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Width, length (µm) and volume (µm³) of particles of one shape; arrays of ESD's shape."""
    esd = np.asarray(esd_um, dtype=np.float64)
    if shape == "sphere":
        return esd, esd, 4 / 3 * np.pi * (esd / 2) ** 3
    if shape == "cylinder":
        w = 264 * esd / (esd + 584)
        length = np.pi / w * (esd / 2) ** 2
        return w, length, length * np.pi * (w / 2) ** 2
    if shape == "ellipsoid":
        w = 0.54 * esd
        length = esd**2 / w
        return w, length, 4 / 3 * (length / 2) * np.pi * (w / 2) ** 2
    if shape == "cuboid":
        w = 0.63 * esd
        length = np.pi / w * (esd / 2) ** 2
        return w, length, length * w * w / 4
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def group_index(labels: Sequence[str], allometry: Allometry | None = None) -> np.ndarray:
    """Row of ``allometry`` per label, int64 (N,), ``-1`` for zero-carbon classes.

    A label names its own row if the table has one (a grouped name such as
    ``phytoplankton``, or a class given its own row by a custom table), else its
    14-class ``FLUX_GROUP``'s row. Unknown names raise ``ValueError`` naming them.
    Each distinct name is looked up once, so this is fast for millions of labels.
    """
    table = load_allometry(allometry)
    if not isinstance(labels, pd.Series | pd.Index):
        labels = np.asarray(labels, dtype=object)
    codes, uniques = pd.factorize(labels, use_na_sentinel=False)
    row_of = {g: i for i, g in enumerate(table.groups)}
    mapped, unknown, no_row = [], [], []
    for name in uniques:
        known = isinstance(name, str)
        if known and name in row_of:
            mapped.append(row_of[name])
        elif known and name in ZERO_CARBON_NAMES:
            mapped.append(-1)
        elif known and name in FLUX_GROUP:
            mapped.append(row_of.get(FLUX_GROUP[name], -1))
            if FLUX_GROUP[name] not in row_of:
                no_row.append(f"{name} ({FLUX_GROUP[name]})")
        else:
            unknown.append(name)
            mapped.append(-1)
    if unknown:
        raise ValueError(
            f"unknown class name(s) for carbon: {sorted(map(repr, unknown))}; expected "
            f"14-class names or groups {sorted(set(table.groups) | ZERO_CARBON_NAMES)}"
        )
    if no_row:
        raise ValueError(f"the allometry table has no row for {sorted(no_row)}")
    return np.asarray(mapped, dtype=np.int64)[codes]


def resolve_groups(labels: Sequence[str], allometry: Allometry | None = None) -> np.ndarray:
    """Allometry group name per label (object array (N,), ``""`` for zero carbon)."""
    table = load_allometry(allometry)
    names = np.asarray([*table.groups, ""], dtype=object)
    return names[group_index(labels, table)]


def particle_carbon_mg(
    labels: Sequence[str],
    esd_um: Sequence[float],
    allometry: Allometry | str | os.PathLike | Mapping | None = None,
    ids: Sequence | None = None,
) -> np.ndarray:
    """Carbon (mg C) per particle, shape (N,), from class names (N,) and ESD in µm (N,).

    Vectorised: one NumPy pass per shape. Zero-carbon classes give 0.0 whatever their
    ESD (NaN allowed there). A flux-carrying particle with NaN, infinite or
    non-positive ESD raises ``ValueError`` giving how many and which (``ids`` if given,
    else positions), never a silent NaN.
    """
    table = load_allometry(allometry)
    return carbon_for_rows(group_index(labels, table), esd_um, table, ids)


def carbon_for_rows(
    row: np.ndarray, esd_um: Sequence[float], allometry: Allometry, ids: Sequence | None = None
) -> np.ndarray:
    """:func:`particle_carbon_mg` from rows already looked up by :func:`group_index`."""
    table = allometry
    esd = np.asarray(esd_um, dtype=np.float64).reshape(-1)
    if len(row) != len(esd):
        raise ValueError(f"labels and esd_um differ in length: {len(row)} vs {len(esd)}")
    # Per-particle lookups; the extra last entry serves row -1 (zero carbon).
    a_of = np.array([r[2] for r in table.rows] + [0.0])[row]
    b_of = np.array([r[3] for r in table.rows] + [1.0])[row]
    shape_of = np.array([SHAPES.index(r[1]) for r in table.rows] + [-1], dtype=np.int8)[row]
    carbon = np.zeros(len(esd))
    carries = (shape_of >= 0) & (a_of > 0)
    bad = carries & ~(np.isfinite(esd) & (esd > 0))
    if bad.any():
        where = np.flatnonzero(bad)
        named = np.asarray(ids, dtype=object)[where] if ids is not None else where
        shown = ", ".join(map(str, named[:20])) + (" ..." if len(where) > 20 else "")
        kind = "particle_id(s)" if ids is not None else "position(s)"
        raise ValueError(
            f"{len(where)} flux-carrying particle(s) without a positive ESD (esd_um missing, "
            f"zero or negative) at {kind}: {shown}"
        )
    for k, shape in enumerate(SHAPES):
        mask = shape_of == k
        if mask.any():
            volume = shape_dimensions(shape, esd[mask])[2]
            carbon[mask] = a_of[mask] * volume ** b_of[mask]
    return carbon


def carbon_by_group(
    esd_um: Sequence[float], allometry: Allometry, rows: Iterable[int] | None = None
) -> np.ndarray:
    """Carbon (mg C) of every particle as if it belonged to each allometry row.

    Returns ``(R + 1, N)`` float64 for ``R`` table rows and ``N`` ESDs: row ``r + 1``
    holds ``A_r · V_r(ESD)^B_r``, row 0 is 0.0 (zero-carbon classes, :func:`group_index`
    ``-1``), so a prediction's carbon is ``out[group + 1, particle]``. Only ``rows``
    (default all) are computed; the others stay 0. The arithmetic is
    :func:`carbon_for_rows`'s, element by element, so the values are bit-identical.
    ESDs are not checked here (NaN carbon for a bad ESD): the caller refuses
    flux-carrying particles without a positive ESD (:func:`carbon_for_rows` raises).
    """
    esd = np.asarray(esd_um, dtype=np.float64).reshape(-1)
    table = allometry
    out = np.zeros((len(table.rows) + 1, len(esd)))
    volumes: dict[str, np.ndarray] = {}
    with np.errstate(all="ignore"):  # bad ESDs give NaN here and are refused by the caller
        for r in sorted(set(range(len(table.rows)) if rows is None else rows)):
            _, shape, a, b = table.rows[r]
            if shape not in volumes:
                volumes[shape] = shape_dimensions(shape, esd)[2]
            # A full array exponent (not a scalar), as carbon_for_rows' per-row arrays:
            # NumPy's power loop then takes the same vectorised path (bit-identical).
            np.multiply(a, volumes[shape] ** np.full(len(esd), b), out=out[r + 1])
    return out
