"""Claims: Welch's t by hand, verdicts, and the printed lines."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from plankflux.eval.claims import compare, descriptive, format_claims, welch


def test_welch_by_hand():
    # a = 1, 2, 3 and b = 4, 5, 6: both variances 1, so t = -3 / sqrt(1/3 + 1/3) and
    # df = (2/3)^2 / (2 · (1/3)^2 / 2) = 4.
    out = welch([1, 2, 3], [4, 5, 6])
    assert out["t"] == pytest.approx(-3 / math.sqrt(2 / 3), rel=1e-12)
    assert out["df"] == pytest.approx(4.0, rel=1e-12)
    assert out["p"] == pytest.approx(2 * stats.t.sf(3 / math.sqrt(2 / 3), 4), rel=1e-9)
    assert welch([1], [2, 3])["p"] is None  # one value: undefined
    assert welch([1, 1], [2, 2])["p"] is None  # no spread: undefined


def test_a_significant_claim_needs_direction_and_p():
    holds = compare(
        "OOD < +verify", "ood", [0.2, 0.3, 0.25], "verify", [0.7, 0.8, 0.75], "<", "acc"
    )
    assert holds["holds"] is True and holds["p"] < 0.05
    assert holds["arms"]["ood"]["mean"] == pytest.approx(0.25)
    assert holds["arms"]["verify"]["sd"] == pytest.approx(0.05)
    wrong_way = compare("x", "ood", [0.7, 0.8, 0.75], "verify", [0.2, 0.3, 0.25], "<", "acc")
    assert wrong_way["holds"] is False and wrong_way["p"] < 0.05
    noisy = compare("x", "ood", [0.1, 0.9, 0.5], "verify", [0.2, 0.8, 0.6], "<", "acc")
    assert noisy["holds"] is False and noisy["p"] > 0.05
    untested = compare("x", "ood", None, "verify", [0.5, 0.6], "<", "acc", note="no reference")
    assert untested["holds"] is None and untested["note"] == "no reference"


def test_at_least_claims_and_printing():
    tie = compare("InfoNCE >= Sigmoid", "InfoNCE", [0.5, 0.5], "Sigmoid", [0.5, 0.5], ">", "acc",
                  kind="at_least")  # fmt: skip
    assert tie["holds"] is True and tie["relation"] == "InfoNCE >= Sigmoid"
    lines = format_claims([tie, descriptive("effort", "fraction", 0.25, True, "25 of 100")])
    assert lines[0].startswith("  [HOLDS] InfoNCE >= Sigmoid: InfoNCE 0.500 ± 0.000 (n=2)")
    assert lines[1] == "  [HOLDS] effort: 0.250" and lines[2] == "      25 of 100"
