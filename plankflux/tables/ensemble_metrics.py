"""Per-member and ensemble-summary test metrics of a finished ensemble.

Reads every member folder below a run or multirun folder (each with
``test_predictions.csv`` and ``class_counts.csv``) and writes, for the 14-class scheme
and for the original (grouped) scheme of docs/data_formats.md:

* ``metrics_<scheme>_per_member.csv``: ``member, class, precision, recall, f1, support``
  (rows: classes, ``macro``, ``weighted``; weighted by the member's training counts);
* ``metrics_<scheme>_summary.csv``: mean ± sd over members (``summarise_reports``);
* ``confusion_<scheme>_member<k>.csv``: rows true, columns predicted.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from plankflux.data.classes import ORIGINAL_CLASSES
from plankflux.errors import PlankfluxError
from plankflux.eval.metrics import (
    classification_report,
    confusion_matrix,
    report_in_original_scheme,
    summarise_reports,
    to_original_scheme_labels,
)
from plankflux.layout import CLASS_COUNTS_FILE, TEST_PREDICTIONS_FILE
from plankflux.utils.atomic import write_csv_atomic


def member_folders(run_dir: str | os.PathLike) -> list[Path]:
    """Folders below ``run_dir`` holding a member's test predictions, in natural order."""
    found = [p.parent for p in Path(run_dir).glob(f"**/{TEST_PREDICTIONS_FILE}")]
    found.sort(key=lambda p: [int(t) if t.isdigit() else t for t in p.parts])
    if not found:
        raise FileNotFoundError(f"no {TEST_PREDICTIONS_FILE} found under {run_dir}")
    return found


def write_ensemble_metrics(run_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    out = Path(out_dir)
    written: list[Path] = []
    per_scheme: dict[str, list[pd.DataFrame]] = {"14class": [], "original": []}
    for k, folder in enumerate(member_folders(run_dir)):
        frame = pd.read_csv(folder / TEST_PREDICTIONS_FILE, keep_default_na=False)
        if frame.empty or not {"label", "predicted"} <= set(frame.columns):
            raise PlankfluxError(
                f"{folder / TEST_PREDICTIONS_FILE}: no test predictions (label, predicted); "
                "was this member's run finished?"
            )
        counts = pd.read_csv(folder / CLASS_COUNTS_FILE, keep_default_na=False)
        train_counts = counts.set_index("class")["train"]
        classes = counts["class"].tolist()
        per_scheme["14class"].append(
            classification_report(frame["label"], frame["predicted"], classes, train_counts)
        )
        confusions = {"14class": confusion_matrix(frame["label"], frame["predicted"], classes)}
        try:  # a custom class list (not Paper A's) has no original scheme
            per_scheme["original"].append(
                report_in_original_scheme(frame["label"], frame["predicted"], train_counts)
            )
            confusions["original"] = confusion_matrix(
                to_original_scheme_labels(frame["label"]),
                to_original_scheme_labels(frame["predicted"]),
                ORIGINAL_CLASSES,
            )
        except ValueError:
            pass
        for scheme, matrix in confusions.items():
            path = out / f"confusion_{scheme}_member{k}.csv"
            write_csv_atomic(matrix.rename_axis("true").reset_index(), path)
            written.append(path)
    for scheme, reports in per_scheme.items():
        if not reports:
            continue
        long = pd.concat(
            [r.rename_axis("class").reset_index().assign(member=k) for k, r in enumerate(reports)],
            ignore_index=True,
        )
        long = long[["member", "class", "precision", "recall", "f1", "support"]]
        summary = summarise_reports(reports).rename_axis("class").reset_index()
        for name, table in (("per_member", long), ("summary", summary)):
            path = out / f"metrics_{scheme}_{name}.csv"
            write_csv_atomic(table, path)
            written.append(path)
    return written
