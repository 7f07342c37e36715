"""Voting: unanimous consensus and top-K per class, on score tables written by hand."""

from __future__ import annotations

import pandas as pd
import pytest
from hitl_helpers import score_table

from plankflux.hitl.voting import consensus, top_k_per_class

CLASSES = ["a", "b", "c"]


def test_consensus_keeps_unanimous_particles_with_mean_score_of_that_class():
    scores = score_table(
        {
            "p1": [[0.7, 0.2, 0.1], [0.8, 0.1, 0.1], [0.9, 0.05, 0.05]],  # all a
            "p2": [[0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]],  # member 2 says a
            "p3": [[0.3, 0.5, 0.2], [0.2, 0.6, 0.2], [0.3, 0.4, 0.3]],  # all b
            "p4": [[0.1, 0.3, 0.6], [0.2, 0.2, 0.6], [0.3, 0.1, 0.6]],  # all c
        },
        CLASSES,
    )
    result = consensus(scores, CLASSES)
    assert list(result.columns) == ["particle_id", "label", "score"]
    assert result["particle_id"].tolist() == ["p1", "p3", "p4"]  # p2 dropped
    assert result["label"].tolist() == ["a", "b", "c"]
    assert result["score"].tolist() == pytest.approx([0.8, 0.5, 0.6])


def test_consensus_does_not_depend_on_row_order():
    scores = score_table(
        {"p1": [[0.7, 0.3, 0.0], [0.6, 0.4, 0.0]], "p2": [[0.1, 0.2, 0.7], [0.0, 0.4, 0.6]]},
        CLASSES,
    )
    shuffled = scores.sample(frac=1.0, random_state=3)
    a = consensus(scores, CLASSES).sort_values("particle_id").reset_index(drop=True)
    b = consensus(shuffled, CLASSES).sort_values("particle_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert a["score"].tolist() == pytest.approx([0.65, 0.65])


def test_consensus_refuses_a_particle_missing_a_member():
    scores = score_table(
        {"p1": [[0.7, 0.3, 0.0], [0.6, 0.4, 0.0]], "p2": [[0.1, 0.2, 0.7], [0.0, 0.4, 0.6]]},
        CLASSES,
    )
    scores = scores.drop(index=scores.index[(scores.particle_id == "p2") & (scores.member == 1)])
    with pytest.raises(ValueError, match="'p2'"):
        consensus(scores, CLASSES)
    with pytest.raises(ValueError, match="lacks column"):
        consensus(scores, [*CLASSES, "d"])


def _consensus(rows):
    return pd.DataFrame(rows, columns=["particle_id", "label", "score"])


def test_top_k_keeps_ties_at_the_cut_and_ranks_within_class():
    table = _consensus(
        [
            ("a1", "a", 0.9),
            ("a3", "a", 0.8),
            ("a2", "a", 0.8),  # tied with a3 at the cut (k = 2): both kept
            ("a4", "a", 0.7),
            ("b1", "b", 0.5),
            ("c1", "c", 0.99),
        ]
    )
    result = top_k_per_class(table, k=2, classes=["c", "a", "b"])
    assert list(result.columns) == ["particle_id", "proposed_label", "score", "rank"]
    assert result["particle_id"].tolist() == ["c1", "a1", "a2", "a3", "b1"]
    assert result["proposed_label"].tolist() == ["c", "a", "a", "a", "b"]
    assert result["rank"].tolist() == [1, 1, 2, 2, 1]
    assert result["score"].tolist() == pytest.approx([0.99, 0.9, 0.8, 0.8, 0.5])


def test_top_k_tie_above_the_cut_is_not_extended():
    # ranks 1, 1, 3: with k = 2 the third (rank 3) is cut.
    table = _consensus([("x", "a", 0.9), ("y", "a", 0.9), ("z", "a", 0.8)])
    result = top_k_per_class(table, k=2, classes=CLASSES)
    assert result["particle_id"].tolist() == ["x", "y"]
    assert result["rank"].tolist() == [1, 1]


def test_top_k_is_k_per_class():
    rows = [(f"{c}{i}", c, 1.0 - i / 10) for c in CLASSES for i in range(5)]
    result = top_k_per_class(_consensus(rows), k=3, classes=CLASSES)
    assert result.groupby("proposed_label").size().to_dict() == {"a": 3, "b": 3, "c": 3}
    assert result["particle_id"].tolist() == ["a0", "a1", "a2", "b0", "b1", "b2", "c0", "c1", "c2"]
    assert result["rank"].tolist() == [1, 2, 3] * 3
    assert len(top_k_per_class(_consensus(rows), k=1000, classes=CLASSES)) == 15


def test_top_k_validates_k_and_labels():
    table = _consensus([("x", "a", 0.9)])
    with pytest.raises(ValueError, match="k must be"):
        top_k_per_class(table, k=0)
    with pytest.raises(ValueError, match="not in the class list"):
        top_k_per_class(table, k=1, classes=["b"])
    assert top_k_per_class(_consensus([]), k=5, classes=CLASSES).empty
