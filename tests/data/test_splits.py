"""Stratified splits: proportions per group, determinism, disjointness."""

from __future__ import annotations

import numpy as np
import pytest

from plankflux.data.splits import stratified_split


def test_proportions_per_group_and_disjoint():
    groups = [("RR", "a")] * 50 + [("RR", "b")] * 10 + [("FC", "a")] * 5 + [("FC", "c")] * 1
    first, second = stratified_split(groups, 0.2, seed=0)
    assert len(np.intersect1d(first, second)) == 0
    assert sorted(np.concatenate([first, second]).tolist()) == list(range(66))
    picked = [groups[i] for i in second]
    assert picked.count(("RR", "a")) == 10
    assert picked.count(("RR", "b")) == 2
    assert picked.count(("FC", "a")) == 1
    assert picked.count(("FC", "c")) == 0  # a single row stays in training


def test_same_seed_same_split_other_seed_differs():
    groups = ["a"] * 40 + ["b"] * 40
    a1, b1 = stratified_split(groups, 0.2, seed=3)
    a2, b2 = stratified_split(groups, 0.2, seed=3)
    _, b3 = stratified_split(groups, 0.2, seed=4)
    assert b1.tolist() == b2.tolist() and a1.tolist() == a2.tolist()
    assert b1.tolist() != b3.tolist()


def test_groups_are_independent_of_other_groups():
    base = ["a"] * 20 + ["b"] * 20
    _, second = stratified_split(base, 0.25, seed=0)
    _, second_more = stratified_split(base + ["c"] * 8, 0.25, seed=0)
    assert second.tolist() == [i for i in second_more.tolist() if i < 40]


def test_bad_fraction():
    with pytest.raises(ValueError, match="fraction"):
        stratified_split(["a", "b"], 1.0, seed=0)
