"""Figures S1–S3 of Paper A: the pre-processing, learning-rate and weight-decay studies.

A finished sweep folder holds one job folder per arm × seed, each with
``.hydra/config.yaml``, ``test_predictions.csv`` and ``class_counts.csv`` (written by
:class:`~plankflux.callbacks.test_predictions.TestPredictionWriter`). For every job
the per-class precision and recall on the test domain are computed offline, with the
weighted average weighted by the job's *training* class counts (as in the paper); then
mean ± sd over seeds per arm. Outputs: ``<figure>_<study>.csv`` (rows = classes,
macro, weighted; columns ``<arm>_<metric>_<mean|sd>``), ``.md`` (cells
``P mean ± sd / R mean ± sd``) and ``.png`` bar plots.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from plankflux.eval.metrics import classification_report, summarise_reports
from plankflux.layout import CLASS_COUNTS_FILE, TEST_PREDICTIONS_FILE
from plankflux.utils.atomic import atomic_open, atomic_path, write_csv_atomic

log = logging.getLogger(__name__)


def _arm_preprocess(cfg) -> str:
    pad = str(cfg.data.resize_mode).startswith("pad")
    norm = {"none": "", "dataset": "normdata", "imagenet": "normIN"}.get(
        str(cfg.data.normalize), f"norm({cfg.data.normalize})"
    )
    return ("pad" if pad else "") + norm or "base"


def _arm_by_value(path: str, names: dict[float, str]) -> Callable:
    def arm(cfg) -> str:
        value = float(OmegaConf.select(cfg, path))
        return next((n for v, n in names.items() if np.isclose(v, value)), f"{path}={value:g}")

    return arm


# study -> (paper figure, arm namer, arms in the paper's order)
STUDIES: dict[str, tuple[str, Callable, tuple[str, ...]]] = {
    "tune_preprocess": (
        "figure_S1",
        _arm_preprocess,
        ("base", "pad", "normdata", "normIN", "padnormdata", "padnormIN"),
    ),
    "tune_lr": (
        "figure_S2",
        _arm_by_value("model.optimizer.lr", {1e-3: "base", 1e-4: "lowLR", 1e-2: "highLR"}),
        ("base", "lowLR", "highLR"),
    ),
    "tune_wd": (
        "figure_S3",
        _arm_by_value(
            "model.optimizer.weight_decay", {1e-2: "base", 1e-3: "lowWD", 1e-1: "highWD"}
        ),
        ("base", "lowWD", "highWD"),
    ),
}


def collect_study(sweep_dir: str | os.PathLike, study: str) -> dict[str, list[pd.DataFrame]]:
    """Per-arm lists of per-seed classification reports from a sweep folder."""
    if study not in STUDIES:
        raise ValueError(f"unknown study {study!r}; known: {sorted(STUDIES)}")
    _, arm_of, _ = STUDIES[study]
    reports: dict[str, list[pd.DataFrame]] = {}
    incomplete = []
    job_of: dict[tuple[str, object], Path] = {}  # (arm, seed) -> job folder
    for config_file in sorted(Path(sweep_dir).glob("**/.hydra/config.yaml")):
        job = config_file.parent.parent
        predictions, counts = job / TEST_PREDICTIONS_FILE, job / CLASS_COUNTS_FILE
        if not (predictions.is_file() and counts.is_file()):
            incomplete.append(str(job))
            continue
        cfg = OmegaConf.load(config_file)
        counts = pd.read_csv(counts, keep_default_na=False)
        frame = pd.read_csv(predictions, keep_default_na=False)
        report = classification_report(
            frame["label"],
            frame["predicted"],
            counts["class"],
            train_counts=counts.set_index("class")["train"],
        )
        arm, seed = arm_of(cfg), cfg.get("seed")
        if (arm, seed) in job_of:  # an arm's jobs are its seeds: sd over them, or nothing
            raise ValueError(
                f"two jobs of arm {arm!r} with seed {seed}: {job_of[(arm, seed)]} and {job}. "
                f"A study's arms are replicated over seeds; pass the folder of one "
                f"{study} sweep (e.g. logs/{study}/multiruns/<date>)"
            )
        job_of[(arm, seed)] = job
        reports.setdefault(arm, []).append(report)
    if incomplete:
        log.warning(
            "%d job(s) without test predictions were left out: %s",
            len(incomplete),
            ", ".join(incomplete),
        )
    if not reports:
        raise FileNotFoundError(
            f"no finished jobs (with {TEST_PREDICTIONS_FILE}) under {sweep_dir}"
        )
    return reports


def study_table(reports: dict[str, list[pd.DataFrame]], arm_order=()) -> pd.DataFrame:
    """Wide table: rows = classes + macro + weighted; columns ``<arm>_<metric>_<stat>``."""
    arms = [a for a in arm_order if a in reports] + sorted(set(reports) - set(arm_order))
    columns = {}
    for arm in arms:
        summary = summarise_reports(reports[arm])
        for metric in ("precision", "recall"):
            for stat in ("mean", "sd"):
                columns[f"{arm}_{metric}_{stat}"] = summary[f"{metric}_{stat}"]
        columns[f"{arm}_n_seeds"] = pd.Series(len(reports[arm]), index=summary.index)
    table = pd.DataFrame(columns)
    table.index.name = "class"
    return table


def _cell(table: pd.DataFrame, row: str, arm: str) -> str:
    def fmt(metric: str) -> str:
        mean, sd = table.at[row, f"{arm}_{metric}_mean"], table.at[row, f"{arm}_{metric}_sd"]
        if np.isnan(mean):
            return "–"
        return f"{mean:.2f}" + ("" if np.isnan(sd) else f" ± {sd:.2f}")

    return f"P {fmt('precision')} / R {fmt('recall')}"


def to_markdown(table: pd.DataFrame, arms: list[str]) -> str:
    lines = ["| class | " + " | ".join(arms) + " |", "|---" * (len(arms) + 1) + "|"]
    for row in table.index:
        lines.append(f"| {row} | " + " | ".join(_cell(table, row, a) for a in arms) + " |")
    return "\n".join(lines) + "\n"


def bar_plot(table: pd.DataFrame, arms: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.7 * len(table)), 7), sharex=True)
    x = np.arange(len(table))
    width = 0.8 / len(arms)
    for ax, metric in zip(axes, ("precision", "recall"), strict=True):
        for i, arm in enumerate(arms):
            ax.bar(
                x + (i - (len(arms) - 1) / 2) * width,
                table[f"{arm}_{metric}_mean"],
                width,
                yerr=table[f"{arm}_{metric}_sd"].fillna(0),
                capsize=2,
                label=arm,
            )
        ax.set_ylabel(metric)
        ax.set_ylim(0, 1.05)
    axes[0].set_title(title)
    axes[0].legend(ncol=len(arms), fontsize="small")
    axes[1].set_xticks(x, table.index, rotation=45, ha="right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def write_study_tables(
    sweep_dir: str | os.PathLike, study: str, out_dir: str | os.PathLike
) -> dict[str, Path]:
    """Collect a sweep and write its table (CSV, Markdown) and bar plot (PNG)."""
    figure, _, arm_order = STUDIES[study]
    reports = collect_study(sweep_dir, study)
    table = study_table(reports, arm_order)
    arms = [c.removesuffix("_n_seeds") for c in table.columns if c.endswith("_n_seeds")]
    out = Path(out_dir)
    stem = out / f"{figure}_{study}"
    paths = {
        "csv": stem.with_suffix(".csv"),
        "md": stem.with_suffix(".md"),
        "png": stem.with_suffix(".png"),
    }
    write_csv_atomic(table.reset_index(), paths["csv"])
    with atomic_open(paths["md"]) as handle:
        handle.write(to_markdown(table, arms))
    bar_plot(table, arms, paths["png"], f"{figure.replace('_', ' ')}: {study}")
    return paths
