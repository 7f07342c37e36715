"""Offline classification metrics (NumPy/pandas only) for Paper A's tables.

Used by the ensemble evaluation, the pre-processing study tables (Figures S1–S3)
and the flux assessment (precision/recall against original human labels in the
original, grouped annotation scheme).

Conventions (docs/paper_a.md), stated once here and in each function:

* Per class, with TP the diagonal count, "predicted" the column sum and
  "support" the true count in *this* test set:

  - precision = TP / predicted. A class present in truth but never predicted has
    precision **0.0**. A class absent from the test set (support 0) has precision
    **0.0** if it was predicted anyway (all false positives) and **NaN** if it was
    never predicted either.
  - recall = TP / support; **NaN** when support is 0.
  - f1 = 2·P·R / (P + R); **0.0** when P + R = 0; **NaN** when support is 0.

* ``macro`` = arithmetic mean over classes of each column, ignoring NaN, so a class
  absent from the test set does not count in recall or f1 (nor in precision when
  it was never predicted). A falsely predicted absent class keeps precision 0.0
  and therefore does count in macro precision.
* ``weighted`` = mean of each column weighted by each class's abundance in the
  *training* data (``train_counts``), as the paper does. Without ``train_counts``
  it is weighted by test support instead (``report.attrs["weighted_by"]`` says
  which). Classes whose value is NaN are left out and the remaining weights
  renormalised; NaN if no weight remains.
* ``support`` of the ``macro`` and ``weighted`` rows is the total test count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from plankflux.data.classes import ORIGINAL_CLASSES, to_original_scheme

METRIC_COLUMNS: tuple[str, ...] = ("precision", "recall", "f1")
REPORT_COLUMNS: tuple[str, ...] = (*METRIC_COLUMNS, "support")
SUMMARY_COLUMNS: tuple[str, ...] = (
    "precision_mean",
    "precision_sd",
    "recall_mean",
    "recall_sd",
    "f1_mean",
    "f1_sd",
    "n",
)
MACRO = "macro"
WEIGHTED = "weighted"

__all__ = [
    "MACRO",
    "METRIC_COLUMNS",
    "REPORT_COLUMNS",
    "SUMMARY_COLUMNS",
    "WEIGHTED",
    "classification_report",
    "confusion_matrix",
    "report_in_original_scheme",
    "summarise_reports",
    "to_original_scheme_labels",
]


# --------------------------------------------------------------------------- helpers


def _check_classes(classes: Iterable[str]) -> list[str]:
    classes = list(classes)
    if not classes:
        raise ValueError("classes must not be empty")
    dupes = sorted({c for c in classes if classes.count(c) > 1})
    if dupes:
        raise ValueError(f"classes must be unique; repeated: {dupes}")
    reserved = {MACRO, WEIGHTED} & set(classes)
    if reserved:
        raise ValueError(f"class names clash with summary rows: {sorted(reserved)}")
    return classes


def _as_1d(labels: Any, name: str) -> np.ndarray:
    arr = np.asarray(labels, dtype=object)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _encode(labels: np.ndarray, classes: list[str], name: str) -> np.ndarray:
    """Integer codes of ``labels`` in ``classes``; ValueError naming unknown labels."""
    codes = pd.Index(classes, dtype=object).get_indexer(labels)
    bad = codes < 0
    if bad.any():
        counts = pd.Series(labels[bad], dtype=object).value_counts(dropna=False)
        listed = ", ".join(f"{label!r}: {int(n)}" for label, n in counts.items())
        raise ValueError(
            f"{name} has {int(bad.sum())} label(s) not in classes "
            f"(label: count) {{{listed}}}; classes are {classes}"
        )
    return codes.astype(np.int64)


def _confusion_counts(y_true: Any, y_pred: Any, classes: list[str]) -> np.ndarray:
    t = _as_1d(y_true, "y_true")
    p = _as_1d(y_pred, "y_pred")
    if len(t) != len(p):
        raise ValueError(f"y_true and y_pred differ in length: {len(t)} vs {len(p)}")
    k = len(classes)
    tc = _encode(t, classes, "y_true")
    pc = _encode(p, classes, "y_pred")
    return np.bincount(tc * k + pc, minlength=k * k).reshape(k, k).astype(np.int64)


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan, dtype=float)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def _nanmean(values: np.ndarray) -> float:
    ok = ~np.isnan(values)
    return float(values[ok].mean()) if ok.any() else float("nan")


def _nan_weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    ok = ~np.isnan(values)
    total = weights[ok].sum()
    if total <= 0:
        return float("nan")
    return float((values[ok] * weights[ok]).sum() / total)


def _weights_from_counts(train_counts: Mapping[str, float], classes: list[str]) -> np.ndarray:
    counts = dict(train_counts.items())
    unknown = sorted(set(counts) - set(classes), key=str)
    if unknown:
        raise ValueError(f"train_counts has class(es) not in classes: {unknown}")
    weights = np.array([float(counts.get(c, 0)) for c in classes], dtype=float)
    if np.isnan(weights).any() or (weights < 0).any():
        raise ValueError(f"train_counts must be non-negative numbers, got {counts}")
    return weights


# --------------------------------------------------------------------------- public API


def confusion_matrix(y_true: Any, y_pred: Any, classes: Sequence[str]) -> pd.DataFrame:
    """Counts with rows = true class, columns = predicted class, both in ``classes`` order.

    int64 counts; vectorised (``np.bincount`` on integer codes). Any label not in
    ``classes`` (in either input) raises ``ValueError`` naming the labels and their
    counts.
    """
    classes = _check_classes(classes)
    cm = _confusion_counts(y_true, y_pred, classes)
    index = pd.Index(classes, name="true")
    columns = pd.Index(classes, name="predicted")
    return pd.DataFrame(cm, index=index, columns=columns)


def classification_report(
    y_true: Any,
    y_pred: Any,
    classes: Sequence[str],
    train_counts: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Per-class precision, recall, f1 and support, then ``macro`` and ``weighted`` rows.

    Rows: each class in ``classes`` order, then ``"macro"``, then ``"weighted"``.
    Columns: ``precision, recall, f1`` (float) and ``support`` (int64: the true count
    of the class in this test set; the total test count for ``macro``/``weighted``).

    Conventions:

    * never predicted but present in truth -> precision 0.0;
    * absent from the test set (support 0) -> recall and f1 NaN; precision 0.0 if
      the class was predicted (false positives), NaN if never predicted either;
    * f1 is 0.0 when precision + recall is 0;
    * ``macro`` = arithmetic mean over classes of each column, ignoring NaN (absent
      classes do not count; a falsely predicted absent class counts with
      precision 0.0 in macro precision);
    * ``weighted`` = each column's mean weighted by ``train_counts`` (class -> count
      of the class in the *training* data, as in the paper; classes missing from the
      mapping weigh 0, unknown classes raise). Without ``train_counts`` the weights
      are the test support, and ``attrs["weighted_by"]`` says so
      (``"train_counts"`` or ``"test_support"``). Classes with a NaN value are left
      out of that column's weighted mean and the weights renormalised.
    """
    classes = _check_classes(classes)
    cm = _confusion_counts(y_true, y_pred, classes)
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)

    precision = _safe_divide(tp, predicted.astype(float))
    precision[(predicted == 0) & (support > 0)] = 0.0
    recall = _safe_divide(tp, support.astype(float))
    f1 = np.full(len(classes), np.nan)
    present = support > 0
    p, r = precision[present], recall[present]
    denom = p + r
    f1[present] = np.where(denom > 0, 2 * p * r / np.where(denom > 0, denom, 1.0), 0.0)

    if train_counts is None:
        weights = support.astype(float)
        weighted_by = "test_support"
    else:
        weights = _weights_from_counts(train_counts, classes)
        weighted_by = "train_counts"

    per_class = {"precision": precision, "recall": recall, "f1": f1}
    macro = [_nanmean(per_class[c]) for c in METRIC_COLUMNS]
    weighted = [_nan_weighted_mean(per_class[c], weights) for c in METRIC_COLUMNS]
    total = int(support.sum())

    report = pd.DataFrame(
        {
            "precision": [*precision, macro[0], weighted[0]],
            "recall": [*recall, macro[1], weighted[1]],
            "f1": [*f1, macro[2], weighted[2]],
            "support": np.array([*support, total, total], dtype=np.int64),
        },
        index=pd.Index([*classes, MACRO, WEIGHTED], name="class"),
    )
    report.attrs["weighted_by"] = weighted_by
    return report


def to_original_scheme_labels(labels: Any) -> np.ndarray:
    """Map 14-class names (or original-scheme names, or old aliases) to the original scheme.

    Thin wrapper around :func:`plankflux.data.classes.to_original_scheme` that maps
    each distinct label once, so it stays fast for millions of labels. Returns an
    object array of original-scheme names; unknown or missing labels raise
    ``ValueError``.
    """
    arr = _as_1d(labels, "labels")
    codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    if (codes < 0).any():
        raise ValueError(f"labels has {int((codes < 0).sum())} missing value(s)")
    mapped = np.asarray(to_original_scheme(list(uniques)), dtype=object)
    return mapped[codes] if len(arr) else np.empty(0, dtype=object)


def report_in_original_scheme(
    y_true_14_or_original: Any,
    y_pred_14: Any,
    train_counts: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """:func:`classification_report` over ``ORIGINAL_CLASSES`` after mapping both sides.

    The truth may be 14-class names, original-scheme names or old aliases (e.g.
    ``dense_detritus`` -> ``aggregate``); predictions are 14-class names (original
    names are accepted too). ``train_counts`` keys are mapped the same way and their
    counts summed per original class (e.g. ``fiber_blur`` + ``fiber_sharp`` ->
    ``fiber``).
    """
    y_true = to_original_scheme_labels(y_true_14_or_original)
    y_pred = to_original_scheme_labels(y_pred_14)
    grouped: dict[str, float] | None = None
    if train_counts is not None:
        items = list(dict(train_counts.items()).items())
        keys = to_original_scheme([k for k, _ in items])
        grouped = {}
        for key, (_, count) in zip(keys, items, strict=True):
            grouped[key] = grouped.get(key, 0) + count
    return classification_report(y_true, y_pred, ORIGINAL_CLASSES, train_counts=grouped)


def summarise_reports(reports: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Mean and sd over reports (ensemble members or seeds), row by row.

    Columns: ``precision_mean, precision_sd, recall_mean, recall_sd, f1_mean, f1_sd,
    n``. Rows in the order of the first report; all reports must have the same rows
    (in any order). Means ignore NaN; sd uses ddof=1 and is NaN with fewer than two
    non-NaN values. ``n`` is the number of reports contributing a non-NaN value to
    the row's recall (equivalently f1: those whose test set holds the class);
    precision can rest on more reports when an absent class was falsely predicted.
    """
    reports = list(reports)
    if not reports:
        raise ValueError("summarise_reports needs at least one report")
    index = reports[0].index
    if index.has_duplicates:
        raise ValueError("report rows must be unique")
    aligned = []
    for i, rep in enumerate(reports):
        missing = [c for c in METRIC_COLUMNS if c not in rep.columns]
        if missing:
            raise ValueError(f"report {i} lacks column(s) {missing}")
        if rep.index.has_duplicates or set(rep.index) != set(index):
            raise ValueError(
                f"report {i} has rows {list(rep.index)}, expected the rows {list(index)}"
            )
        aligned.append(rep.loc[index, list(METRIC_COLUMNS)].to_numpy(dtype=float))
    stack = np.stack(aligned)  # (n_reports, n_rows, n_metrics)

    ok = ~np.isnan(stack)
    count = ok.sum(axis=0)
    filled = np.where(ok, stack, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, filled.sum(axis=0) / np.maximum(count, 1), np.nan)
        sq = np.where(ok, (stack - mean[None]) ** 2, 0.0).sum(axis=0)
        sd = np.where(count > 1, np.sqrt(sq / np.maximum(count - 1, 1)), np.nan)

    out = pd.DataFrame(index=index.copy())
    for j, col in enumerate(METRIC_COLUMNS):
        out[f"{col}_mean"] = mean[:, j]
        out[f"{col}_sd"] = sd[:, j]
    out["n"] = count[:, METRIC_COLUMNS.index("recall")].astype(np.int64)
    return out[list(SUMMARY_COLUMNS)]
