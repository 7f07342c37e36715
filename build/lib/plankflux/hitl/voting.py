"""Ensemble voting on the per-member score table (docs/paper_a.md, step 3).

The score table is the one :class:`~plankflux.callbacks.prediction_writer.EnsembleScoreWriter`
writes (``scores.parquet``): columns ``particle_id``, ``member`` (0..M-1), then one
softmax score column per class. Every particle must have exactly one row per member.

* :func:`consensus`: the particles whose argmax class is the same for every member
  (unanimous), with score = mean over members of that class's softmax score.
* :func:`top_k_per_class`: per class the ``k`` highest consensus scores, ties at the
  cut kept (so a class may give more than ``k``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from plankflux.layout import score_classes

CONSENSUS_COLUMNS = ("particle_id", "label", "score")
PROPOSAL_COLUMNS = ("particle_id", "proposed_label", "score", "rank")


def score_cube(
    scores: pd.DataFrame, classes: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(particle_ids (N,), members (M,), probs (M, N, C))`` from the long score table.

    Particles keep the order of their first appearance, members are sorted. Raises
    ``ValueError`` unless every particle has exactly one row for every member.
    """
    classes = score_classes(scores, classes)
    if not classes:
        raise ValueError("score table has no class columns")
    pid = scores["particle_id"].astype(str).to_numpy()
    ids = pd.unique(pid)
    members = np.sort(pd.unique(scores["member"].to_numpy()))
    n_members, n = len(members), len(ids)
    m_idx = np.searchsorted(members, scores["member"].to_numpy())
    p_idx = pd.Index(ids).get_indexer(pid)
    counts = np.bincount(m_idx * n + p_idx, minlength=n_members * n).reshape(n_members, n)
    bad = np.flatnonzero((counts != 1).any(axis=0))
    if bad.size:
        shown = ", ".join(repr(str(ids[i])) for i in bad[:10])
        more = f" and {bad.size - 10} more" if bad.size > 10 else ""
        raise ValueError(
            f"score table must hold exactly one row per member ({n_members} members) for "
            f"every particle; not so for {bad.size} particle(s): {shown}{more}"
        )
    probs = np.empty((n_members, n, len(classes)), dtype=np.float64)
    probs[m_idx, p_idx] = scores[classes].to_numpy(dtype=np.float64)
    return ids.astype(object), members, probs


def consensus(scores: pd.DataFrame, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Unanimous particles: ``particle_id``, ``label`` (class name), ``score``.

    A particle is kept when the argmax class is the same for all members; its score
    is the mean over members of that class's score. Rows keep the order in which the
    particles first appear in ``scores``.
    """
    classes = score_classes(scores, classes)
    ids, _, probs = score_cube(scores, classes)
    argmax = probs.argmax(axis=-1)  # (M, N)
    unanimous = (argmax == argmax[0]).all(axis=0)
    label = argmax[0]
    score = probs[:, np.arange(len(ids)), label].mean(axis=0)
    names = np.asarray(classes, dtype=object)
    return pd.DataFrame(
        {
            "particle_id": ids[unanimous],
            "label": names[label[unanimous]],
            "score": score[unanimous],
        }
    ).reset_index(drop=True)


def rank_descending(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Competition ranks (1 = highest; equal values share the lowest rank) along ``axis``."""
    return rankdata(-np.asarray(values, dtype=np.float64), method="min", axis=axis).astype(np.int64)


def order_proposals(frame: pd.DataFrame, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Sort proposals by class order (``classes`` or sorted names), then rank, then id."""
    order = list(classes) if classes is not None else sorted(frame["proposed_label"].unique())
    unknown = sorted(set(frame["proposed_label"]) - set(order))
    if unknown:
        raise ValueError(f"proposed label(s) not in the class list: {unknown}")
    position = frame["proposed_label"].map({c: i for i, c in enumerate(order)})
    keyed = frame.assign(_cls=position.to_numpy())
    keyed = keyed.sort_values(["_cls", "rank", "particle_id"], kind="stable")
    return keyed.drop(columns="_cls").reset_index(drop=True)[list(PROPOSAL_COLUMNS)]


def top_k_per_class(
    consensus: pd.DataFrame, k: int = 1000, classes: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per class the ``k`` highest-scoring consensus particles, ties at the cut kept.

    Returns ``particle_id``, ``proposed_label``, ``score``, ``rank`` (1 = highest score
    within the class; tied scores share a rank, the next rank skips: 1, 2, 2, 4).
    Every particle whose rank is ``<= k`` is kept, so a tie at the cut keeps them all.
    Rows are ordered by class (``classes`` order, else alphabetical), rank, particle_id.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    frame = pd.DataFrame(
        {
            "particle_id": consensus["particle_id"].astype(str).to_numpy(),
            "proposed_label": consensus["label"].astype(str).to_numpy(),
            "score": consensus["score"].to_numpy(dtype=np.float64),
        }
    )
    rank = frame.groupby("proposed_label", sort=False)["score"].rank(method="min", ascending=False)
    frame["rank"] = rank.to_numpy(dtype=np.int64) if len(frame) else np.zeros(0, np.int64)
    return order_proposals(frame[frame["rank"] <= k], classes)
