"""Offline metrics: every expected value below is worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from plankflux.data.classes import ORIGINAL_CLASSES
from plankflux.eval.metrics import (
    SUMMARY_COLUMNS,
    classification_report,
    confusion_matrix,
    report_in_original_scheme,
    summarise_reports,
    to_original_scheme_labels,
)

nan = float("nan")

# 3-class case. Confusion matrix (rows true, columns predicted):
#        a  b  c
#   a  [ 3, 1, 0 ]   support 4
#   b  [ 1, 2, 0 ]   support 3
#   c  [ 0, 1, 1 ]   support 2
#   predicted: a 4, b 4, c 1
CLASSES3 = ["a", "b", "c"]
TRUE3 = ["a", "a", "a", "a", "b", "b", "b", "c", "c"]
PRED3 = ["a", "a", "a", "b", "a", "b", "b", "b", "c"]


def _check_row(report: pd.DataFrame, row: str, p: float, r: float, f: float, n: int) -> None:
    got = report.loc[row]
    for name, want in (("precision", p), ("recall", r), ("f1", f)):
        if math.isnan(want):
            assert math.isnan(got[name]), f"{row}.{name} = {got[name]}, expected NaN"
        else:
            assert got[name] == pytest.approx(want, abs=1e-12), f"{row}.{name}"
    assert got["support"] == n


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(TRUE3, PRED3, CLASSES3)
    assert list(cm.index) == CLASSES3
    assert list(cm.columns) == CLASSES3
    assert cm.to_numpy().tolist() == [[3, 1, 0], [1, 2, 0], [0, 1, 1]]
    assert (cm.dtypes == np.int64).all()


def test_confusion_matrix_follows_class_order():
    cm = confusion_matrix(TRUE3, PRED3, ["c", "a", "b"])
    assert cm.to_numpy().tolist() == [[1, 0, 1], [0, 3, 1], [0, 1, 2]]


def test_report_three_classes_weighted_by_support():
    rep = classification_report(TRUE3, PRED3, CLASSES3)
    assert list(rep.index) == ["a", "b", "c", "macro", "weighted"]
    assert list(rep.columns) == ["precision", "recall", "f1", "support"]
    # P = TP / predicted, R = TP / support, F1 = 2PR / (P + R)
    _check_row(rep, "a", 3 / 4, 3 / 4, 3 / 4, 4)
    _check_row(rep, "b", 2 / 4, 2 / 3, 4 / 7, 3)
    _check_row(rep, "c", 1 / 1, 1 / 2, 2 / 3, 2)
    # macro: (0.75 + 0.5 + 1) / 3; (0.75 + 2/3 + 0.5) / 3; (3/4 + 4/7 + 2/3) / 3
    _check_row(rep, "macro", 0.75, 23 / 36, 167 / 252, 9)
    # weighted by test support 4, 3, 2 (of 9); recall then equals accuracy 6/9
    _check_row(rep, "weighted", 13 / 18, 2 / 3, 127 / 189, 9)
    assert rep.attrs["weighted_by"] == "test_support"
    assert rep["support"].dtype == np.int64


def test_report_three_classes_weighted_by_train_counts():
    rep = classification_report(TRUE3, PRED3, CLASSES3, train_counts={"a": 10, "b": 30, "c": 60})
    # weights 0.1, 0.3, 0.6:
    # P = .075 + .15 + .6; R = .075 + .2 + .3; F1 = .075 + .3*4/7 + .4
    _check_row(rep, "weighted", 0.825, 0.575, 0.475 + 1.2 / 7, 9)
    assert rep.attrs["weighted_by"] == "train_counts"
    # macro and per-class rows do not depend on train_counts
    _check_row(rep, "macro", 0.75, 23 / 36, 167 / 252, 9)


# Absent / never-predicted case:
#        a  b  c  d
#   a  [ 2, 0, 0, 1 ]   support 3
#   b  [ 1, 1, 0, 0 ]   support 2
#   c  [ 2, 0, 0, 0 ]   support 2  (c never predicted)
#   d  [ 0, 0, 0, 0 ]   support 0  (d absent, predicted once)
CLASSES4 = ["a", "b", "c", "d"]
TRUE4 = ["a", "a", "a", "b", "b", "c", "c"]
PRED4 = ["a", "a", "d", "b", "a", "a", "a"]


def test_absent_and_never_predicted_classes():
    rep = classification_report(TRUE4, PRED4, CLASSES4)
    _check_row(rep, "a", 2 / 5, 2 / 3, 0.5, 3)
    _check_row(rep, "b", 1.0, 1 / 2, 2 / 3, 2)
    _check_row(rep, "c", 0.0, 0.0, 0.0, 2)  # never predicted, present: precision 0, f1 0
    _check_row(rep, "d", 0.0, nan, nan, 0)  # absent but falsely predicted: precision 0
    # macro ignores NaN: precision over 4 classes (d's 0.0 counts), recall/f1 over 3
    _check_row(rep, "macro", 1.4 / 4, 7 / 18, 7 / 18, 7)
    # by support 3, 2, 2, 0
    _check_row(rep, "weighted", 3.2 / 7, 3 / 7, 17 / 42, 7)


def test_absent_class_weighted_by_train_counts_renormalises():
    rep = classification_report(
        TRUE4, PRED4, CLASSES4, train_counts={"a": 1, "b": 1, "c": 2, "d": 4}
    )
    # precision has no NaN: (0.4*1 + 1*1 + 0*2 + 0*4) / 8
    # recall/f1: d is NaN, so weights 1, 1, 2 renormalised over 4
    _check_row(rep, "weighted", 1.4 / 8, 7 / 24, 7 / 24, 7)


def test_absent_never_predicted_class_is_all_nan_and_ignored():
    rep = classification_report(
        ["a", "b", "b"], ["a", "b", "b"], ["a", "b", "e"], train_counts={"a": 1, "b": 1, "e": 1000}
    )
    _check_row(rep, "e", nan, nan, nan, 0)
    _check_row(rep, "macro", 1.0, 1.0, 1.0, 3)
    _check_row(rep, "weighted", 1.0, 1.0, 1.0, 3)


def test_class_missing_from_train_counts_weighs_zero():
    rep = classification_report(TRUE3, PRED3, CLASSES3, train_counts={"a": 1, "c": 1})
    _check_row(rep, "weighted", (0.75 + 1.0) / 2, (0.75 + 0.5) / 2, (0.75 + 2 / 3) / 2, 9)


def test_train_counts_unknown_class_raises():
    with pytest.raises(ValueError, match="zzz"):
        classification_report(TRUE3, PRED3, CLASSES3, train_counts={"a": 1, "zzz": 2})


def test_unknown_labels_error_names_them_with_counts():
    with pytest.raises(ValueError) as err:
        confusion_matrix(["a", "x", "x", "y"], ["a", "a", "a", "a"], CLASSES3)
    msg = str(err.value)
    assert "y_true" in msg
    assert "'x': 2" in msg
    assert "'y': 1" in msg
    with pytest.raises(ValueError, match="y_pred.*'q': 1"):
        classification_report(["a"], ["q"], CLASSES3)


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="length"):
        confusion_matrix(["a", "b"], ["a"], CLASSES3)


def test_many_labels_vectorised():
    rng = np.random.default_rng(0)
    classes = [f"k{i}" for i in range(14)]
    names = np.array(classes, dtype=object)
    t = names[rng.integers(0, 14, 1_000_000)]
    p = names[rng.integers(0, 14, 1_000_000)]
    cm = confusion_matrix(t, p, classes)
    assert int(cm.to_numpy().sum()) == 1_000_000
    assert int(np.trace(cm.to_numpy())) == int((t == p).sum())
    assert int(cm.loc["k3", "k5"]) == int(((t == "k3") & (p == "k5")).sum())


# --------------------------------------------------------------------- original scheme


def test_to_original_scheme_labels():
    got = to_original_scheme_labels(
        ["phyto_dino", "fiber_blur", "bubble", "dense_detritus", "copepod", "aggregate"]
    )
    assert list(got) == [
        "phytoplankton",
        "fiber",
        "unidentifiable",
        "aggregate",
        "swimmer",
        "aggregate",
    ]
    with pytest.raises(ValueError, match="nonsense"):
        to_original_scheme_labels(["aggregate", "nonsense"])


def test_report_in_original_scheme():
    y_true = ["phyto_round", "fiber_blur", "dense_detritus", "noise", "aggregate", "copepod"]
    y_pred = ["phyto_dino", "fiber_sharp", "aggregate", "bubble", "long_pellet", "swimmer"]
    train = {
        "aggregate": 10,
        "phyto_dino": 5,
        "phyto_round": 5,
        "fiber_blur": 2,
        "fiber_sharp": 3,
        "bubble": 1,
        "noise": 4,
        "swimmer": 20,
        "long_pellet": 50,
    }
    rep = report_in_original_scheme(y_true, y_pred, train_counts=train)
    assert list(rep.index) == [*ORIGINAL_CLASSES, "macro", "weighted"]
    # phyto_dino for phyto_round, fiber_sharp for fiber_blur, bubble for noise: correct
    _check_row(rep, "phytoplankton", 1.0, 1.0, 1.0, 1)
    _check_row(rep, "fiber", 1.0, 1.0, 1.0, 1)
    _check_row(rep, "unidentifiable", 1.0, 1.0, 1.0, 1)
    _check_row(rep, "swimmer", 1.0, 1.0, 1.0, 1)  # copepod -> swimmer
    # dense_detritus -> aggregate (correct), aggregate predicted long_pellet (wrong)
    _check_row(rep, "aggregate", 1.0, 0.5, 2 / 3, 2)
    _check_row(rep, "long_pellet", 0.0, nan, nan, 0)
    _check_row(rep, "rhizaria", nan, nan, nan, 0)
    # grouped train counts: aggregate 10, long_pellet 50, phytoplankton 10, swimmer 20,
    # fiber 5, unidentifiable 5 (total 100).
    # recall (long_pellet NaN, left out): (10*0.5 + 10 + 20 + 5 + 5) / 50
    # precision (long_pellet 0.0 with weight 50): (10 + 10 + 20 + 5 + 5) / 100
    # f1: (10*2/3 + 10 + 20 + 5 + 5) / 50
    _check_row(rep, "weighted", 0.5, 0.9, (20 / 3 + 40) / 50, 6)
    # macro: precision over 6 classes incl. long_pellet 0.0; recall/f1 over 5
    _check_row(rep, "macro", 5 / 6, 4.5 / 5, (2 / 3 + 4) / 5, 6)


def test_report_in_original_scheme_without_train_counts():
    rep = report_in_original_scheme(["fiber_blur", "fiber_sharp"], ["fiber_sharp", "noise"])
    _check_row(rep, "fiber", 1.0, 0.5, 2 / 3, 2)
    _check_row(rep, "unidentifiable", 0.0, nan, nan, 0)
    _check_row(rep, "weighted", 1.0, 0.5, 2 / 3, 2)
    assert rep.attrs["weighted_by"] == "test_support"


# --------------------------------------------------------------------- summaries


def _report(rows: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame.from_dict(
        {k: {"precision": v[0], "recall": v[1], "f1": v[2], "support": 1} for k, v in rows.items()},
        orient="index",
    )


def test_summarise_two_reports_by_hand():
    r1 = _report({"a": (0.5, 1.0, 0.2), "b": (0.0, nan, nan), "macro": (0.25, 1.0, 0.2)})
    r2 = _report({"a": (0.7, 0.6, 0.4), "b": (0.4, 0.8, 0.5), "macro": (0.55, 0.7, 0.45)})
    s = summarise_reports([r1, r2])
    assert list(s.columns) == list(SUMMARY_COLUMNS)
    assert list(s.index) == ["a", "b", "macro"]
    root2 = math.sqrt(2)
    # two values x, y: mean (x + y) / 2, sd (ddof=1) |x - y| / sqrt(2)
    assert s.loc["a", "precision_mean"] == pytest.approx(0.6)
    assert s.loc["a", "precision_sd"] == pytest.approx(0.2 / root2)
    assert s.loc["a", "recall_mean"] == pytest.approx(0.8)
    assert s.loc["a", "recall_sd"] == pytest.approx(0.4 / root2)
    assert s.loc["a", "f1_mean"] == pytest.approx(0.3)
    assert s.loc["a", "f1_sd"] == pytest.approx(0.2 / root2)
    assert s.loc["a", "n"] == 2
    # b: recall/f1 NaN in r1 -> mean of the one value, sd NaN, n 1
    assert s.loc["b", "precision_mean"] == pytest.approx(0.2)
    assert s.loc["b", "precision_sd"] == pytest.approx(0.4 / root2)
    assert s.loc["b", "recall_mean"] == pytest.approx(0.8)
    assert math.isnan(s.loc["b", "recall_sd"])
    assert s.loc["b", "f1_mean"] == pytest.approx(0.5)
    assert math.isnan(s.loc["b", "f1_sd"])
    assert s.loc["b", "n"] == 1
    assert s.loc["macro", "recall_mean"] == pytest.approx(0.85)
    assert s.loc["macro", "recall_sd"] == pytest.approx(0.3 / root2)


def test_summarise_realigns_rows_and_single_report_has_nan_sd():
    r1 = _report({"a": (0.5, 1.0, 0.2), "b": (0.1, 0.2, 0.3)})
    r2 = _report({"b": (0.3, 0.4, 0.5), "a": (0.5, 1.0, 0.2)})
    s = summarise_reports([r1, r2])
    assert list(s.index) == ["a", "b"]
    assert s.loc["a", "precision_sd"] == pytest.approx(0.0)
    assert s.loc["b", "precision_mean"] == pytest.approx(0.2)
    one = summarise_reports([r1])
    assert one["precision_sd"].isna().all()
    assert one["f1_sd"].isna().all()
    assert (one["n"] == 1).all()
    assert one.loc["b", "recall_mean"] == pytest.approx(0.2)


def test_summarise_all_nan_and_mismatched_rows():
    r = _report({"a": (nan, nan, nan)})
    s = summarise_reports([r, r])
    assert math.isnan(s.loc["a", "precision_mean"])
    assert s.loc["a", "n"] == 0
    with pytest.raises(ValueError, match="rows"):
        summarise_reports([_report({"a": (1, 1, 1)}), _report({"b": (1, 1, 1)})])
    with pytest.raises(ValueError):
        summarise_reports([])


def test_summarise_real_reports():
    # second run predicts perfectly: every per-class value 1.0
    reps = [
        classification_report(TRUE3, PRED3, CLASSES3),
        classification_report(TRUE3, TRUE3, CLASSES3),
    ]
    s = summarise_reports(reps)
    assert list(s.index) == ["a", "b", "c", "macro", "weighted"]
    assert (s["n"] == 2).all()
    assert s.loc["a", "precision_mean"] == pytest.approx((0.75 + 1.0) / 2)
    assert s.loc["c", "recall_sd"] == pytest.approx(0.5 / math.sqrt(2))
