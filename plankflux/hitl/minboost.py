"""Minboost: more candidates for the classes the verification left short (docs/paper_a.md, step 5).

For every class with fewer than ``min_verified`` verified images (``confirmed`` or
``relabelled`` with that label), the candidates are the particles that lie in *every*
member's top-``k`` scores for that class (per member: rank by that member's score for
the class, ties at the cut kept), minus the particles already verified *as that
class*. Score = mean over members of the class's score; rank within class as in
:func:`~plankflux.hitl.voting.top_k_per_class`. They go into a second proposal folder
(:func:`~plankflux.hitl.proposals.write_proposal_folder`) for the expert to prune.

As in Paper A (mpic ``scripts/minboost.py``), each short class is handled on its own:
a particle that qualifies for two short classes is proposed in both class folders
(the ingest keeps the class folder the expert leaves it in), and an image the expert
deleted before, or verified as another class, may be proposed again. ``shown_ids``
optionally excludes further particles from every class (not in the paper).
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
    shown_ids: Iterable[str] = (),
    classes: Sequence[str] | None = None,
    min_verified: int = 100,
    k: int = 1000,
) -> pd.DataFrame:
    """Minboost proposals: ``particle_id``, ``proposed_label``, ``score``, ``rank``.

    ``scores``: the per-member score table; ``verified``: a ``verified.csv`` table (a
    particle verified as a class is not proposed for it again); ``shown_ids``:
    particles to leave out of every class (default none, as the paper). One row per
    (particle, short class) pair that qualifies, so a particle may appear under two
    classes. Rows are ordered by class, rank, particle_id.
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
    qualifies = (rank_descending(sub, axis=1) <= k).all(axis=0)  # (N, W)
    ids_text = ids.astype(str)
    qualifies &= ~np.isin(ids_text, list(map(str, shown_ids)))[:, None]
    kept = verified[verified["action"].isin(KEPT_ACTIONS)]
    for w, cls in enumerate(weak):  # verified as this class: not proposed for it again
        done = kept.loc[kept["label"] == cls, "particle_id"].astype(str)
        qualifies[:, w] &= ~np.isin(ids_text, done.to_numpy())
    mean = sub.mean(axis=0)  # (N, W)

    rows, cols = np.nonzero(qualifies)
    frame = pd.DataFrame(
        {
            "particle_id": ids_text[rows],
            "proposed_label": np.asarray(weak, dtype=object)[cols],
            "score": mean[rows, cols],
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
