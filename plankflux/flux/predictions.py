"""The predictions table that flux tables are computed from, and its helpers.

Format (CSV or Parquet), one row per particle per ensemble member per treatment:

============ ======= ==========================================================
column       type    meaning
============ ======= ==========================================================
particle_id  str     a ``particle_id`` of the campaign's ``particles.csv``
treatment    str     e.g. ``OOD``, ``+top1k``, ``+verify``, ``+minboost``, ``human``
member       int     ensemble member (0-based); ``human`` uses member 0
label        str     the class this member gives the particle (14-class or grouped)
============ ======= ==========================================================

A ``(particle_id, treatment, member)`` appears at most once. Particles absent for a
treatment/member simply add no carbon (see ``coverage`` in the flux tables). The
``human`` treatment is the campaign's *original* human annotation, as in Paper A's
Figures 5–7 (:func:`human_predictions`): ``label_original`` of every particle that has
one, in the original scheme; a campaign with no ``label_original`` at all falls back to
its ``label`` column. Its ``coverage`` says which fraction of a sample it annotates, and
a human reference that does not cover a whole sample is not compared (the flux
assessment says so). The revised labels (``label``) are what models train and are
tested on; as a treatment (``revised``) they are the relabelling reference of Figure 7.
Particles used in training keep their verified label: pass them as ``fixed_labels``
(:func:`with_fixed_labels`), which adds or overrides them for every member.
The ensemble's score table (``scores.parquet``: ``particle_id, member`` then one
score column per class) converts with :func:`predictions_from_scores`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from plankflux.data.campaign import Campaign, load_campaign
from plankflux.data.classes import to_original_scheme
from plankflux.layout import PREDICTION_COLUMNS

HUMAN = "human"
REVISED = "revised"
ORIGINAL_LABEL = "label_original"


def as_frames(campaign) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(particles, samples)`` from a Campaign, a campaign folder or such a pair."""
    if isinstance(campaign, Campaign):
        return campaign.particles, campaign.samples
    if isinstance(campaign, str | os.PathLike):
        loaded = load_campaign(campaign, check_images="none")
        return loaded.particles, loaded.samples
    particles, samples = campaign
    return particles, samples


def human_label_column(particles: pd.DataFrame) -> str:
    """The column the human reference comes from: ``label_original`` (Paper A's
    original annotation) when any particle has one, else ``label``."""
    if ORIGINAL_LABEL in particles.columns:
        if (particles[ORIGINAL_LABEL].fillna("").astype(str) != "").any():
            return ORIGINAL_LABEL
    return "label"


def human_predictions(
    particles: pd.DataFrame, treatment: str = HUMAN, column: str | None = None
) -> pd.DataFrame:
    """Human labels as a predictions table (member 0, annotated rows only).

    ``column``: ``label_original`` (mapped to the original scheme, old names included,
    so carbon can be looked up), ``label``, or ``None`` for :func:`human_label_column`.
    """
    column = column or human_label_column(particles)
    values = particles[column].fillna("").astype(str)
    annotated = particles[values != ""]
    labels = values[values != ""].tolist()
    if column == ORIGINAL_LABEL:
        labels = to_original_scheme(labels)
    return pd.DataFrame(
        {
            "particle_id": annotated["particle_id"].astype(str).to_numpy(),
            "treatment": treatment,
            "member": np.zeros(len(annotated), dtype=np.int64),
            "label": np.asarray(labels, dtype=object),
        }
    )


def predictions_from_scores(
    scores: pd.DataFrame, treatment: str, class_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Argmax labels from a score table (``particle_id, member``, one column per class)."""
    if class_names is None:
        class_names = [c for c in scores.columns if c not in ("particle_id", "member")]
    missing = [c for c in ("particle_id", "member", *class_names) if c not in scores.columns]
    if missing:
        raise ValueError(f"score table lacks column(s) {missing}")
    probs = scores[list(class_names)].to_numpy(dtype=np.float64)
    return pd.DataFrame(
        {
            "particle_id": scores["particle_id"].astype(str).to_numpy(),
            "treatment": treatment,
            "member": scores["member"].to_numpy(dtype=np.int64),
            "label": np.asarray(class_names, dtype=object)[probs.argmax(axis=1)],
        }
    )


def read_predictions(path: str | os.PathLike, treatment: str | None = None) -> pd.DataFrame:
    """Read a predictions table (CSV/Parquet), or a score table converted by argmax.

    A score table (no ``label`` column) needs ``treatment``; a predictions table
    without a ``treatment`` column takes ``treatment`` too.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file not found: {path}")
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(
            path, dtype={"particle_id": str, "label": str, "treatment": str}, keep_default_na=False
        )
    if "label" not in frame.columns and "member" in frame.columns:
        if treatment is None:
            raise ValueError(f"{path} is a score table: give the treatment it belongs to")
        return predictions_from_scores(frame, treatment)
    if "treatment" not in frame.columns and treatment is not None:
        frame.insert(1, "treatment", treatment)
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {PREDICTION_COLUMNS}")
    return frame[list(PREDICTION_COLUMNS)]


def read_fixed_labels(path: str | os.PathLike) -> pd.DataFrame:
    """``particle_id, label[, treatment]`` CSV of particles whose verified label is kept."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    missing = [c for c in ("particle_id", "label") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    return frame


def with_fixed_labels(
    predictions: pd.DataFrame, fixed_labels: Mapping[str, str] | pd.DataFrame | None
) -> pd.DataFrame:
    """Give the ``fixed_labels`` particles their verified label for every member.

    ``fixed_labels``: ``{particle_id: label}`` (every treatment except ``human``) or a
    frame ``particle_id, label`` with an optional ``treatment`` column restricting a
    row to one treatment. Fixed particles missing from a treatment/member (the
    pipeline does not predict training images) are added; present ones overridden.
    """
    if fixed_labels is None or len(fixed_labels) == 0:
        return predictions
    if isinstance(fixed_labels, pd.DataFrame):
        fixed = fixed_labels.astype({"particle_id": str, "label": str})
    else:
        fixed = pd.DataFrame(
            {"particle_id": list(map(str, fixed_labels)), "label": list(fixed_labels.values())}
        )
    combos = predictions[["treatment", "member"]].drop_duplicates()
    combos = combos[~combos["treatment"].isin([HUMAN, REVISED])]
    if "treatment" in fixed.columns:
        unknown = sorted(set(fixed["treatment"]) - set(combos["treatment"]))
        if unknown:
            raise ValueError(f"fixed_labels name treatment(s) not in the predictions: {unknown}")
        rows = fixed.merge(combos, on="treatment")
    else:
        rows = fixed.merge(combos, how="cross")
    rows = rows[list(PREDICTION_COLUMNS)]
    key = ["particle_id", "treatment", "member"]
    merged = pd.concat([rows, predictions[list(PREDICTION_COLUMNS)]], ignore_index=True)
    return merged.drop_duplicates(key, keep="first").reset_index(drop=True)


class CodedPredictions(NamedTuple):
    """A checked predictions table as integer codes, one entry per row (``R`` rows)."""

    position: np.ndarray  #: (R,) int64: the row's particle in ``particle_ids``
    member: np.ndarray  #: (R,) int64
    treatment_code: np.ndarray  #: (R,) int into ``treatments`` (may be a read-only view)
    treatments: np.ndarray  #: (T,) object: distinct treatments as given, first seen first
    label_code: np.ndarray  #: (R,) int32 or int64 into ``labels``
    labels: np.ndarray  #: (L,) object: distinct labels as given, first seen first
    combo_code: np.ndarray  #: (R,) int32 or int64 into ``combos``
    combos: np.ndarray  #: (K,) int64 ``treatment_code · n_members + member``, sorted
    n_members: int  #: ``max(member) + 1``


#: Rows per slice in row-wise integer arithmetic. Temporaries of this size (2 MiB of
#: int64) are reused from the heap; whole-table ones (40 MB for 5 M rows) are fresh
#: memory each time, which on a busy 2-core machine cost more (page faults) than the
#: arithmetic: three whole-table int64 operations on 5 M rows took 24-210 ms, sliced
#: 9-13 ms.
ROW_CHUNK = 1 << 18


def check_predictions(predictions: pd.DataFrame, particle_ids: pd.Index) -> np.ndarray:
    """Validate a predictions table; return each row's position in ``particle_ids``.

    Raises ``ValueError`` naming the missing columns, unknown particle ids, empty
    treatments/labels, non-integer or negative members, or duplicated rows.
    """
    return code_predictions(predictions, particle_ids).position


def code_predictions(predictions: pd.DataFrame, particle_ids: pd.Index) -> CodedPredictions:
    """:func:`check_predictions`, returning the table as integer codes (:class:`CodedPredictions`).

    The flux tables work on these codes (``bincount``) rather than on strings: each
    string column is factorized once, and checks run on its few distinct values.
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(f"predictions lack column(s) {missing}; expected {PREDICTION_COLUMNS}")
    # The id alignment check (pyarrow string compares and a hash pass, both releasing the
    # GIL) runs in a thread beside the factorizing below: on 2 cores 0.47 -> 0.39 s for
    # 1M particles x 5 members (bench_flux.py).
    pool = ThreadPoolExecutor(max_workers=1)
    aligned = pool.submit(_aligned_positions, predictions["particle_id"], particle_ids)
    pool.shutdown(wait=False)  # the submitted check still runs; its thread then ends
    problems = []
    if pd.api.types.is_integer_dtype(predictions["member"].dtype):
        member = predictions["member"].to_numpy(dtype=np.int64)
        bad = member < 0
    else:
        as_float = pd.to_numeric(predictions["member"], errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(as_float) | (as_float < 0) | (as_float != np.round(as_float))
        member = np.where(bad, 0, as_float).astype(np.int64)
    if bad.any():
        problems.append(
            f"{int(bad.sum())} row(s) with a member that is not an integer >= 0 "
            f"(first at row {int(np.flatnonzero(bad)[0])})"
        )
    coded = {}
    for column in ("treatment", "label"):
        codes, uniques = _factorize(predictions[column])
        # Empty: missing (code -1) or "" as a string; judged once per distinct value.
        empty_value = np.asarray(pd.Series(uniques).astype(str) == "", dtype=bool)
        if (codes < 0).any() or empty_value.any():
            empty = np.append(empty_value, True)[codes]  # code -1 picks the last entry
            problems.append(
                f"{int(empty.sum())} row(s) with an empty {column} "
                f"(first at row {int(np.flatnonzero(empty)[0])})"
            )
        coded[column] = codes, np.asarray(uniques, dtype=object)
    # Map each distinct id once: predictions repeat every particle once per member.
    position = aligned.result()
    if position is None:
        id_code, id_uniques = pd.factorize(predictions["particle_id"].astype(str))
        position = particle_ids.get_indexer(id_uniques)[id_code]
    else:  # rows are particle_ids repeated: a row's position numbers its (unique) id
        id_code, id_uniques = position, particle_ids
    n_m = int(member.max()) + 1 if len(member) else 1
    t_code = coded["treatment"][0]
    combo_code, combos = combo_codes(t_code, len(coded["treatment"][1]), member, n_m)
    if (position < 0).any():
        unknown = pd.unique(predictions["particle_id"].to_numpy()[position < 0])
        shown = ", ".join(map(repr, unknown[:20])) + (" ..." if len(unknown) > 20 else "")
        problems.append(f"{len(unknown)} particle_id(s) not in the campaign: {shown}")
    elif not bad.any():
        if (t_code < 0).any():  # a missing treatment (reported above): the historical key
            t_code, t_uniques = pd.factorize(predictions["treatment"])
            id_code = pd.factorize(predictions["particle_id"].astype(str))[0]
            key = (id_code.astype(np.int64) * len(t_uniques) + t_code) * n_m + member
            repeated = bool(pd.Series(key).duplicated().any())
        else:  # (treatment, member) <-> combo one to one: the same rows collide
            repeated = _pairs_repeat(id_code, len(id_uniques), combo_code, len(combos))
            key = id_code.astype(np.int64) * len(combos) + combo_code if repeated else None
        if repeated:
            dup = pd.Series(key).duplicated().to_numpy()
            first = predictions[dup].iloc[0]
            problems.append(
                f"{int(dup.sum())} duplicated (particle_id, treatment, member) row(s), "
                f"e.g. {tuple(first[['particle_id', 'treatment', 'member']])}"
            )
    if problems:
        raise ValueError("bad predictions table: " + "; ".join(problems))
    return CodedPredictions(
        position, member, *coded["treatment"], *coded["label"], combo_code, combos, n_m
    )


def _factorize(values: pd.Series) -> tuple[np.ndarray, np.ndarray | pd.Index]:
    """``pd.factorize(values)``: codes (N,) (int32 or int64; -1 where missing) and the
    distinct values in order of first appearance. A column holding one value throughout
    (the usual treatment column) takes one comparison pass instead of hashing every
    string; a pyarrow string column is encoded by pyarrow directly."""
    if len(values) and not isinstance(values.dtype, pd.CategoricalDtype):
        first, strings = values.iloc[0], _arrow_strings(values)
        if strings is not None:  # compare in pyarrow (bitmaps), not via a NumPy bool array
            import pyarrow.compute as pc

            same = isinstance(first, str) and not strings.null_count
            same = same and pc.all(pc.equal(strings, first)).as_py()
        else:
            same = isinstance(first, str) and bool((values == first).all())
        if same:
            # all codes 0: a read-only broadcast view, no (R,) array to allocate
            codes = np.broadcast_to(np.int64(0), (len(values),))
            return codes, pd.factorize(values.iloc[:1])[1]
        if strings is not None:  # pyarrow's encoding: int32 codes, no int64 copy
            encoded = strings.dictionary_encode()
            indices = encoded.indices
            codes = (indices.fill_null(-1) if indices.null_count else indices).to_numpy()
            return codes, np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    codes, uniques = pd.factorize(values)
    return codes, uniques


def row_slices(n_rows: int) -> list[slice]:
    """Slices of :data:`ROW_CHUNK` rows covering ``range(n_rows)``."""
    return [slice(start, start + ROW_CHUNK) for start in range(0, n_rows, ROW_CHUNK)]


def combo_codes(
    t_code: np.ndarray, n_t: int, member: np.ndarray, n_m: int
) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(t_code · n_m + member, sort=True)``: codes (R,) (int32, or int64 on
    the hash path) of each row's (treatment, member) combination, and the sorted
    combinations (K,) int64.

    ``t_code`` and ``member`` (R,) int64. A presence table over the ``n_t · n_m``
    possible keys replaces hashing when it is small; a missing treatment (code -1,
    reported by the caller) takes the hash path.
    """
    n_rows, n_keys = len(t_code), n_t * n_m
    if n_rows == 0 or n_keys > 4 * n_rows + 1024 or int(t_code.min()) < 0:
        codes, uniques = pd.factorize(t_code * n_m + member, sort=True)
        return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=np.int64)
    # int32 codes: half the fresh memory of int64 (see ROW_CHUNK); K <= n_keys is small
    present, codes = np.zeros(n_keys, dtype=bool), np.empty(n_rows, dtype=np.int32)
    for rows in row_slices(n_rows):
        key = codes[rows]
        np.multiply(t_code[rows], n_m, out=key)
        key += member[rows]
        present[key] = True
    combos = np.flatnonzero(present)
    if len(combos) < n_keys:  # else every key occurs and is its own code
        lookup = np.cumsum(present) - 1
        for rows in row_slices(n_rows):
            codes[rows] = lookup[codes[rows]]
    return codes, combos


def _pairs_repeat(id_code: np.ndarray, n_ids: int, combo_code: np.ndarray, n_combos: int) -> bool:
    """Whether some (id, combination) pair occurs in two rows; codes (R,) non-negative.

    A table of seen pairs, filled slice by slice: a slice repeats a pair seen before if
    it hits a set entry, and one within itself if it sets fewer entries than it has rows.
    Hashing whole-table keys instead when the table would be large.
    """
    n_rows, n_keys = len(id_code), n_ids * n_combos
    if n_keys > 4 * n_rows + 1024:
        key = id_code.astype(np.int64) * n_combos + combo_code
        return bool(pd.Series(key).duplicated().any())
    seen, n_seen = np.zeros(n_keys, dtype=bool), 0
    for rows in row_slices(n_rows):
        key = id_code[rows] * n_combos + combo_code[rows]
        if seen[key].any():
            return True
        seen[key] = True
        now = int(np.count_nonzero(seen))
        if now - n_seen < len(key):
            return True
        n_seen = now
    return False


def _arrow_strings(values: pd.Series | pd.Index):
    """The pyarrow string array behind ``values`` (no copy if it is one chunk), or
    ``None`` if ``values`` are not pyarrow-backed strings."""
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        import pyarrow as pa

        strings = pa.array(values.array)
        # several chunks (e.g. after pd.concat): one array, as the buffers are read below
        return strings.combine_chunks() if isinstance(strings, pa.ChunkedArray) else strings
    return None


def _aligned_positions(pred_ids: pd.Series, particle_ids: pd.Index) -> np.ndarray | None:
    """Row positions (R,) when the prediction ids are ``particle_ids`` in order, repeated
    (every member predicting every particle in campaign order, as the benchmark does and
    as the predict step writes a whole campaign), else ``None``.

    Verified by comparing the strings block by block (a vectorised pass, no hashing);
    ``None`` too if ``particle_ids`` might repeat a value, so the general path's
    ``get_indexer`` reports it as before.
    """
    n, r = len(particle_ids), len(pred_ids)
    if n == 0 or r == 0 or r % n:
        return None
    wanted, given = _arrow_strings(particle_ids), _arrow_strings(pred_ids)
    if wanted is None or given is None or wanted.null_count or given.null_count:
        return None
    import pyarrow.compute as pc

    for block in range(r // n):  # a mismatch usually shows in the first block: cheap refusal
        if not pc.all(pc.equal(given.slice(block * n, n), wanted)).as_py():
            return None
    if not _distinct_strings(wanted):
        return None
    return np.tile(np.arange(n, dtype=np.int64), r // n)


def _distinct_strings(strings) -> bool:
    """True if no two strings of a pyarrow (large_)string array without nulls are equal.

    Proven with 64-bit hashes of the UTF-8 bytes (equal strings hash alike, so distinct
    hashes mean distinct strings): about 8 bytes per pass over the array instead of a
    string hash table. Returns False on a repeated hash, which may also be a collision
    (then the caller's exact path decides).
    """
    import pyarrow as pa

    _, offsets, data = strings.buffers()
    wide = pa.types.is_large_string(strings.type)
    offsets = np.frombuffer(offsets, dtype=np.int64 if wide else np.int32)
    offsets = offsets[strings.offset : strings.offset + len(strings) + 1].astype(np.int64)
    start, length = offsets[:-1], np.diff(offsets)
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    longest, end = int(length.max(initial=0)), int(offsets[-1])
    # Zero padding so that every read below (up to ``longest + 8`` bytes past a string's
    # start, masked to its length) stays inside.
    padded = np.zeros(end + longest + 8, dtype=np.uint8)
    padded[:end] = raw[:end]
    # words[i] is the little-endian 8-byte word starting at byte i (an unaligned view).
    words = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    mix, spread = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0x9E3779B97F4A7C15)
    hashed = length.astype(np.uint64) * spread
    for at in range(0, longest, 8):
        word = words[start + at]
        left = np.clip(length - at, 0, 8).astype(np.uint64)  # bytes of this word in the string
        keep = np.where(left == 8, ~np.uint64(0), (np.uint64(1) << (left * np.uint64(8))) - 1)
        hashed = (hashed ^ (word & keep)) * mix
        hashed ^= hashed >> np.uint64(29)
    return bool(pd.Index(hashed).is_unique)
