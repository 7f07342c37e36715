"""Minboost: more candidates for the classes the verification left short (docs/paper_a.md, step 5).

For every class with fewer than ``min_verified`` verified images (``confirmed`` or
``relabelled`` with that label), the candidates are the particles that lie in *every*
member's top-``k`` scores for that class (per member: rank by that member's score for
the class, ties at the cut kept), minus every particle already shown to the expert.
Score = mean over members of the class's score; rank within class as in
:func:`~plankflux.hitl.voting.top_k_per_class`. They go into a second proposal folder
(:func:`~plankflux.hitl.proposals.write_proposal_folder`) for the expert to prune.

A particle that qualifies for two short classes is proposed once, for the class with
the higher mean score (the earlier class in the class list on a tie), so it appears in
one class folder only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from plankflux.errors import PlankfluxError
from plankflux.hitl.voting import order_proposals, rank_descending, score_classes, score_cube
from plankflux.layout import KEPT_ACTIONS


def verified_counts(verified: pd.DataFrame, classes: Sequence[str]) -> pd.Series:
    """Verified images per class (``confirmed`` or ``relabelled``), in class order."""
    kept = verified[verified["action"].isin(KEPT_ACTIONS)]
    return kept["label"].value_counts().reindex(list(classes), fill_value=0).astype(int)


def short_classes(
    verified: pd.DataFrame, classes: Sequence[str], min_verified: int = 100
) -> list[str]:
    """The classes with fewer than ``min_verified`` verified images, in class order."""
    counts = verified_counts(verified, classes)
    return [c for c in classes if counts[c] < min_verified]


def minboost_candidates(
    scores: pd.DataFrame,
    verified: pd.DataFrame,
    shown_ids: Iterable[str],
    classes: Sequence[str] | None = None,
    min_verified: int = 100,
    k: int = 1000,
) -> pd.DataFrame:
    """Minboost proposals: ``particle_id``, ``proposed_label``, ``score``, ``rank``.

    ``scores``: the per-member score table; ``verified``: a ``verified.csv`` table
    (its particles count as shown too); ``shown_ids``: every particle already shown
    (e.g. the ids of earlier manifests). Rows are ordered by class, rank, particle_id.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    classes = score_classes(scores, classes)
    weak = short_classes(verified, classes, min_verified)
    ids, _, probs = score_cube(scores, classes)
    columns = [classes.index(c) for c in weak]
    empty = pd.DataFrame({"particle_id": [], "proposed_label": [], "score": [], "rank": []})
    if not columns or not len(ids):
        return order_proposals(empty.astype({"score": float, "rank": "int64"}), classes)

    sub = probs[:, :, columns]  # (M, N, W)
    in_every_top = (rank_descending(sub, axis=1) <= k).all(axis=0)  # (N, W)
    shown = set(map(str, shown_ids)) | set(verified["particle_id"].astype(str))
    in_every_top &= ~np.isin(ids.astype(str), list(shown))[:, None]
    mean = sub.mean(axis=0)  # (N, W)

    # One class per particle: the qualifying class with the highest mean score.
    masked = np.where(in_every_top, mean, -np.inf)
    best = masked.argmax(axis=1)
    keep = in_every_top.any(axis=1)
    rows = np.flatnonzero(keep)
    frame = pd.DataFrame(
        {
            "particle_id": ids[rows].astype(str),
            "proposed_label": np.asarray(weak, dtype=object)[best[rows]],
            "score": mean[rows, best[rows]],
        }
    )
    rank = frame.groupby("proposed_label", sort=False)["score"].rank(method="min", ascending=False)
    frame["rank"] = rank.to_numpy(dtype=np.int64)
    return order_proposals(frame, classes)


def read_shown_ids(paths: Iterable[str]) -> set[str]:
    """The ``particle_id`` values of CSV files (manifests, ``verified.csv``): the shown set."""
    shown: set[str] = set()
    for path in paths:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        if "particle_id" not in frame.columns:
            raise PlankfluxError(f"{path}: no particle_id column (columns: {list(frame.columns)})")
        shown.update(frame["particle_id"])
    return shown
