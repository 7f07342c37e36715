"""Seeded, stratified splits of particle rows.

Paper A splits each domain's labelled images 80/20 by class; the retraining step
splits verified images 80/20 the same way. Both use :func:`stratified_split`.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np


def stratified_split(
    groups: Sequence[Sequence[object]] | Sequence[object],
    fraction: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices so each group gives ``fraction`` of its rows to the second part.

    ``groups``: one key per row (for example the class, or a ``(domain, class)``
    tuple), so the split is stratified by that key. For every group the rows are
    shuffled with a generator seeded from ``seed`` and ``round(fraction * n)`` go to
    the second part; a group of one row stays whole in the first part (a model
    cannot validate on a class it never trained on). The result does not depend on
    the row order of other groups, so adding a domain leaves the others' splits
    unchanged.

    Returns ``(first, second)``: sorted int64 index arrays, disjoint, covering all rows.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    keys = [tuple(k) if isinstance(k, list | tuple) else (k,) for k in groups]
    rows_by_key: dict[tuple, list[int]] = {}
    for row, key in enumerate(keys):
        rows_by_key.setdefault(key, []).append(row)
    first, second = [], []
    for key in sorted(rows_by_key, key=repr):
        rows = np.asarray(rows_by_key[key], dtype=np.int64)
        # One generator per group, seeded from the seed and the key, so groups are independent.
        rng = np.random.default_rng([seed, zlib.crc32(repr(key).encode())])
        rows = rows[rng.permutation(len(rows))]
        n_second = int(round(fraction * len(rows))) if len(rows) > 1 else 0
        second.append(rows[:n_second])
        first.append(rows[n_second:])
    cat = lambda parts: np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)  # noqa: E731
    return cat(first), cat(second)
