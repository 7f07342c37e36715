"""Minboost: intersection of every member's top-K, short classes only, each on its own."""

from __future__ import annotations

import pandas as pd
import pytest
from hitl_helpers import score_table

from plankflux.hitl.minboost import minboost_candidates, read_shown_ids, short_classes

CLASSES = ["a", "b", "c"]

# Per particle: member 0 and member 1 scores for (a, b, c).
SCORES = score_table(
    {
        "p1": [[0.9, 0.9, 0.0], [0.9, 0.5, 0.0]],
        "p2": [[0.8, 0.8, 0.0], [0.8, 0.9, 0.0]],
        "p3": [[0.0, 0.7, 0.3], [0.0, 0.6, 0.2]],
        "p4": [[0.0, 0.2, 0.5], [0.0, 0.1, 0.6]],
        "p5": [[0.0, 0.1, 0.3], [0.0, 0.0, 0.7]],
    },
    CLASSES,
)
# b top-2: member 0 {p1, p2}, member 1 {p2, p3} -> {p2}, mean 0.85.
# c top-2: member 0 {p4 (0.5), p3 and p5 (0.3, tied at the cut)}, member 1 {p5, p4}
#          -> {p4 (mean 0.55), p5 (mean 0.5)}.
# a top-2 would be {p1, p2}, but a has enough verified images.
VERIFIED = pd.DataFrame(
    {
        "particle_id": ["v1", "v2", "v3", "v4", "v5", "v6"],
        "label": ["a", "a", "a", "b", "", "c"],
        "action": ["confirmed", "relabelled", "confirmed", "relabelled", "rejected", "rejected"],
    }
)


def test_short_classes_count_confirmed_and_relabelled_only():
    assert short_classes(VERIFIED, CLASSES, min_verified=2) == ["b", "c"]
    assert short_classes(VERIFIED, CLASSES, min_verified=1) == ["c"]
    assert short_classes(VERIFIED, CLASSES, min_verified=4) == CLASSES


def test_candidates_are_in_every_members_top_k():
    result = minboost_candidates(SCORES, VERIFIED, [], CLASSES, min_verified=2, k=2)
    assert list(result.columns) == ["particle_id", "proposed_label", "score", "rank"]
    assert result["particle_id"].tolist() == ["p2", "p4", "p5"]
    assert result["proposed_label"].tolist() == ["b", "c", "c"]
    assert result["score"].tolist() == pytest.approx([0.85, 0.55, 0.5])
    assert result["rank"].tolist() == [1, 1, 2]


def test_only_particles_verified_as_that_class_are_excluded():
    """Paper A: minus the images already verified *as that class*; a deleted one (or one
    verified as another class) may be proposed again."""
    verified = pd.concat(
        [
            VERIFIED,
            pd.DataFrame(
                {
                    "particle_id": ["p4", "p5", "p2"],
                    "label": ["c", "a", ""],
                    "action": ["confirmed", "relabelled", "rejected"],
                }
            ),
        ]
    )
    result = minboost_candidates(SCORES, verified, [], CLASSES, min_verified=3, k=2)
    # b: p2 (rejected before: proposed again); c: p4 verified as c is left out, p5
    # (verified as a) stays.
    assert result["particle_id"].tolist() == ["p2", "p5"]
    assert result["proposed_label"].tolist() == ["b", "c"]
    assert result["rank"].tolist() == [1, 1]  # p5 is now first of c


def test_shown_ids_optionally_leave_particles_out_of_every_class():
    result = minboost_candidates(SCORES, VERIFIED, {"p4"}, CLASSES, min_verified=2, k=2)
    assert result["particle_id"].tolist() == ["p2", "p5"]


def test_no_short_class_gives_no_candidates():
    result = minboost_candidates(SCORES, VERIFIED, [], CLASSES, min_verified=0, k=2)
    assert result.empty and list(result.columns) == ["particle_id", "proposed_label", "score",
                                                    "rank"]  # fmt: skip


def test_a_particle_qualifying_for_two_classes_is_proposed_in_both():
    """Each minority class on its own (Paper A: sub-folders named by minority class)."""
    scores = score_table(
        {"q1": [[0.0, 0.6, 0.3], [0.0, 0.5, 0.5]], "q2": [[0.0, 0.1, 0.1], [0.0, 0.0, 0.0]]},
        CLASSES,
    )
    verified = VERIFIED.iloc[:1]  # one verified a: only b and c are short
    result = minboost_candidates(scores, verified, [], CLASSES, min_verified=1, k=1)
    assert result["particle_id"].tolist() == ["q1", "q1"]
    assert result["proposed_label"].tolist() == ["b", "c"]
    assert result["score"].tolist() == pytest.approx([0.55, 0.4])
    assert result["rank"].tolist() == [1, 1]


def test_read_shown_ids(tmp_path):
    pd.DataFrame({"particle_id": ["x", "y"], "image": ["a/x", "a/y"]}).to_csv(
        tmp_path / "m1.csv", index=False
    )
    pd.DataFrame({"particle_id": ["y", "007"]}).to_csv(tmp_path / "m2.csv", index=False)
    assert read_shown_ids([tmp_path / "m1.csv", tmp_path / "m2.csv"]) == {"x", "y", "007"}
