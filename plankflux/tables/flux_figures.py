"""Figures 3 and 5–8 of Paper A, each as PNG, PDF and the CSV it plots.

* Figure 3 ``fig3_labelled_counts``: labelled particles per class and domain (the
  revised ``label``), with a campaign only.
* Figure 5 ``fig5_human_vs_measured``: human-label total flux (the original
  annotation of every particle) vs measured bulk flux per sample, 1:1 line, MAE in the
  title; samples the human labels do not annotate in full are not plotted (the title
  says so).
* Figure 6 ``fig6_mae_by_treatment``: MAE (mean ± sd over members) by treatment,
  against measured flux and against human-label flux (total).
* Figure 7 ``fig7_precision_recall``: precision and recall by class against the
  original annotation of the whole target (original scheme: noise + bubble =
  unidentifiable) and treatment, mean ± sd over members; the relabelling agreement
  (revised vs original labels) as grey lines; ``*`` over a class where the one-way
  ANOVA across treatments gives p < 0.05 (Tukey HSD in ``precision_recall_tukey.csv``).
* Figure 8 ``fig8_flux_profiles``: flux vs depth per class group (columns) and domain
  (rows): model treatments (mean ± combined sd), human labels and measured flux.

:func:`make_flux_figures` takes either :class:`FluxInputs` (a campaign and predictions:
every flux and statistics table is computed and written too) or a folder already
holding those tables (``flux_summary.csv``, ``flux_mae_by_member.csv`` and optionally
``precision_recall_original.csv``). Plots use matplotlib's object API (no pyplot
state), so they work headless.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from plankflux.data.classes import TRAP_CLASSES
from plankflux.eval.flux_assessment import (
    FILES,
    assess_flux,
    human_reference_note,
    summarise_mae,
    write_assessment,
)
from plankflux.flux.predictions import HUMAN, REVISED, as_frames, with_fixed_labels
from plankflux.flux.tables import (
    FLUX_SUMMARY_FILE,
    FULL_COVERAGE,
    TOTAL,
    flux_tables,
    write_flux_tables,
)
from plankflux.utils.atomic import atomic_path, write_csv_atomic

UNITS = "mmol C m$^{-2}$ d$^{-1}$"


@dataclass
class FluxInputs:
    """What the figures are computed from: a campaign (Campaign, folder or frames) and
    a predictions table (``None``: human labels only), optional allometry and fixed labels."""

    campaign: object
    predictions: pd.DataFrame | None = None
    allometry: object = None
    fixed_labels: Mapping[str, str] | pd.DataFrame | None = None


def _save(fig: Figure, out_dir: Path, stem: str, table: pd.DataFrame) -> list[Path]:
    paths = []
    for fmt in ("png", "pdf"):
        path = out_dir / f"{stem}.{fmt}"
        # No creation date in the PDF: the same inputs give byte-identical figures, so a
        # resumed run can be checked against an uninterrupted one.
        metadata = {"CreationDate": None} if fmt == "pdf" else None
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight", metadata=metadata)
        paths.append(path)
    write_csv_atomic(table, out_dir / f"{stem}.csv")
    return [*paths, out_dir / f"{stem}.csv"]


def _colours(names) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def figure3(particles: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Labelled particles (revised ``label``) per class and domain, as Paper A's Fig. 3."""
    labelled = particles[particles["label"].astype(str) != ""]
    domains = list(dict.fromkeys(particles["domain"].astype(str)))
    known = [c for c in TRAP_CLASSES if c in set(labelled["label"])]
    classes = known + sorted(set(labelled["label"]) - set(known))
    table = (
        pd.crosstab(labelled["label"], labelled["domain"].astype(str))
        .reindex(index=classes, columns=domains, fill_value=0)
        .rename_axis(index="class", columns=None)
    )
    fig = Figure(figsize=(max(6.0, 0.55 * len(classes) + 2), 3.8))
    ax = fig.add_subplot()
    width = 0.8 / max(len(domains), 1)
    x = np.arange(len(classes))
    for j, domain in enumerate(domains):
        ax.bar(x - 0.4 + width * (j + 0.5), table[domain], width, label=domain)
    ax.set_xticks(x, classes, rotation=35, ha="right", fontsize=8)
    ax.set(ylabel="labelled particles", yscale="symlog")
    ax.legend(fontsize=7, ncols=len(domains))
    ax.set_title("Labelled particles per class and domain", fontsize=9)
    return _save(fig, out_dir, "fig3_labelled_counts", table.reset_index())


def figure5(summary: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Human-label vs measured total flux, one point per fully annotated sample."""
    rows = summary[(summary["treatment"] == HUMAN) & (summary["class_group"] == TOTAL)]
    table = rows[
        [
            "sample_id",
            "domain",
            "depth_m",
            "flux_mean_mmol_m2_d",
            "counting_sd_mmol_m2_d",
            "coverage",
            "measured_flux_mmol_m2_d",
            "measured_flux_sd",
        ]
    ]
    table = table.rename(
        columns={
            "flux_mean_mmol_m2_d": "human_flux_mmol_m2_d",
            "counting_sd_mmol_m2_d": "human_counting_sd",
        }
    )
    table = table[table["measured_flux_mmol_m2_d"].notna()]
    reference = pd.DataFrame(
        {"sample_id": table["sample_id"], "coverage": table["coverage"],
         "compared": table["coverage"] >= FULL_COVERAGE}
    )  # fmt: skip
    partial = not reference["compared"].all()
    table = table[reference["compared"].to_numpy()]
    fig = Figure(figsize=(4.8, 4.5))
    ax = fig.add_subplot()
    for domain, part in table.groupby("domain", sort=False):
        ax.errorbar(
            part["measured_flux_mmol_m2_d"],
            part["human_flux_mmol_m2_d"],
            xerr=part["measured_flux_sd"].fillna(0),
            yerr=part["human_counting_sd"],
            fmt="o",
            capsize=2,
            label=domain,
        )
    top = (
        float(
            np.nanmax(
                table[["measured_flux_mmol_m2_d", "human_flux_mmol_m2_d"]].to_numpy(), initial=1.0
            )
        )
        * 1.1
    )
    ax.plot([0, top], [0, top], "k--", lw=0.8, label="1:1")
    ax.set(
        xlim=(0, top),
        ylim=(0, top),
        xlabel=f"measured flux ({UNITS})",
        ylabel=f"human-label flux ({UNITS})",
    )
    mae = (table["human_flux_mmol_m2_d"] - table["measured_flux_mmol_m2_d"]).abs().mean()
    title = f"Human labels vs measured: MAE {mae:.2f} (n = {len(table)})"
    if partial:
        title += f"\n{human_reference_note(reference)}"
    ax.set_title(title, fontsize=9 if not partial else 5, wrap=True)
    ax.legend(fontsize=7)
    return _save(fig, out_dir, "fig5_human_vs_measured", table)


def figure6(mae: pd.DataFrame, out_dir: Path) -> list[Path]:
    """MAE of the total flux by treatment, mean ± sd over members, vs measured and vs human."""
    table = summarise_mae(mae)
    table = table[table["class_group"] == TOTAL].reset_index(drop=True)
    fig = Figure(figsize=(8, 3.6))
    for i, reference in enumerate(("measured", "human")):
        ax = fig.add_subplot(1, 2, i + 1)
        part = table[(table["reference"] == reference) & (table["treatment"] != HUMAN)]
        x = np.arange(len(part))
        ax.bar(x, part["mae_mean"], yerr=part["mae_sd"].fillna(0), capsize=3, color="tab:blue")
        ax.set_xticks(x, part["treatment"], rotation=30, ha="right", fontsize=8)
        human = table[(table["reference"] == reference) & (table["treatment"] == HUMAN)]
        if len(human):
            ax.axhline(human["mae_mean"].iat[0], color="k", ls="--", lw=0.8, label="human labels")
            ax.legend(fontsize=7)
        ax.set(ylabel=f"MAE ({UNITS})", title=f"total flux vs {reference} flux")
        ax.title.set_fontsize(9)
    return _save(fig, out_dir, "fig6_mae_by_treatment", table)


def figure7(
    pr: pd.DataFrame | None, out_dir: Path, anova: pd.DataFrame | None = None
) -> list[Path]:
    """Precision and recall by original-scheme class and treatment (Paper A's Fig. 7)."""
    if pr is None or pr.empty:
        pr = pd.DataFrame(columns=["treatment", "member", "class", "precision", "recall"])
    stats = pr.groupby(["treatment", "class"], sort=False).agg(
        precision_mean=("precision", "mean"), precision_sd=("precision", "std"),
        recall_mean=("recall", "mean"), recall_sd=("recall", "std"),
        n_members=("member", "nunique")).reset_index()  # fmt: skip
    if anova is not None and not anova.empty:
        for metric in ("precision", "recall"):
            part = anova[anova["metric"] == metric].set_index("class")
            stats[f"{metric}_anova_p"] = stats["class"].map(part["p_value"]).astype(float)
    classes = list(dict.fromkeys(pr["class"]))
    treatments = [t for t in dict.fromkeys(pr["treatment"]) if t not in (HUMAN, REVISED)]
    colours = _colours(treatments)
    fig = Figure(figsize=(max(6.0, 0.7 * len(classes) + 2), 6))
    width = 0.8 / max(len(treatments), 1)
    x = np.arange(len(classes))
    for row, metric in enumerate(("precision", "recall")):
        ax = fig.add_subplot(2, 1, row + 1)
        for j, treatment in enumerate(treatments):
            part = stats[stats["treatment"] == treatment].set_index("class").reindex(classes)
            ax.bar(x - 0.4 + width * (j + 0.5), part[f"{metric}_mean"], width,
                   yerr=part[f"{metric}_sd"].fillna(0), capsize=1.5, label=treatment,
                   color=colours[treatment])  # fmt: skip
        revised = stats[stats["treatment"] == REVISED].set_index("class").reindex(classes)
        if revised[f"{metric}_mean"].notna().any():
            ax.hlines(
                revised[f"{metric}_mean"], x - 0.45, x + 0.45, colors="0.5", lw=1.5, zorder=3,
                label="relabelling (revised vs original)",
            )  # fmt: skip
        if f"{metric}_anova_p" in stats.columns:
            p_values = stats.drop_duplicates("class").set_index("class")[f"{metric}_anova_p"]
            for i, cls in enumerate(classes):
                if p_values.get(cls, np.nan) < 0.05:
                    ax.text(i, 1.0, "*", ha="center", va="bottom", fontsize=10)
        ax.set_xticks(
            x, classes if row else [""] * len(classes), rotation=35, ha="right", fontsize=8
        )
        ax.set(ylim=(0, 1.1), ylabel=metric)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncols=min(6, len(labels) or 1), fontsize=7)
    fig.suptitle(
        "vs original annotation of the whole target (original scheme); * ANOVA p < 0.05",
        fontsize=9, y=0.93,
    )  # fmt: skip
    return _save(fig, out_dir, "fig7_precision_recall", stats)


def figure8(summary: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Flux vs depth per class group and domain: model treatments, human labels, measured."""
    table = summary[
        [
            "sample_id",
            "domain",
            "depth_m",
            "treatment",
            "class_group",
            "flux_mean_mmol_m2_d",
            "combined_sd_mmol_m2_d",
            "measured_flux_mmol_m2_d",
            "measured_flux_sd",
        ]
    ].copy()
    domains = list(dict.fromkeys(table["domain"]))
    groups = list(dict.fromkeys(table["class_group"]))
    treatments = list(dict.fromkeys(table["treatment"]))
    colours = _colours([t for t in treatments if t != HUMAN])
    colours[HUMAN] = (0, 0, 0, 1)
    fig = Figure(figsize=(2.1 * len(groups), 2.3 * len(domains) + 0.6))
    axes = fig.subplots(len(domains), len(groups), squeeze=False, sharey="row")
    for r, domain in enumerate(domains):
        for c, group in enumerate(groups):
            ax = axes[r, c]
            cell = table[(table["domain"] == domain) & (table["class_group"] == group)]
            for treatment in treatments:
                part = cell[cell["treatment"] == treatment].sort_values("depth_m")
                line = part.groupby("depth_m")["flux_mean_mmol_m2_d"].mean()
                ax.plot(line.to_numpy(), line.index, color=colours[treatment], lw=0.8)
                ax.errorbar(
                    part["flux_mean_mmol_m2_d"],
                    part["depth_m"],
                    xerr=part["combined_sd_mmol_m2_d"],
                    fmt="o",
                    ms=3,
                    capsize=1.5,
                    color=colours[treatment],
                    label=treatment if r == c == 0 else None,
                )
            if group == TOTAL:
                meas = cell.drop_duplicates("sample_id").dropna(subset=["measured_flux_mmol_m2_d"])
                ax.errorbar(
                    meas["measured_flux_mmol_m2_d"],
                    meas["depth_m"],
                    xerr=meas["measured_flux_sd"].fillna(0),
                    fmt="s",
                    ms=4,
                    mfc="none",
                    color="tab:red",
                    label="measured" if r == 0 else None,
                )
            if r == 0:
                ax.set_title(group, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{domain}\ndepth (m)")
            ax.tick_params(labelsize=7)
            ax.set_xlim(left=0)
        axes[r, 0].invert_yaxis()
    for ax in axes[-1]:
        ax.set_xlabel(f"flux ({UNITS})", fontsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    more = axes[0, -1].get_legend_handles_labels()
    fig.legend(handles + more[0], labels + more[1], loc="upper center", ncols=6, fontsize=7)
    fig.subplots_adjust(top=1 - 0.5 / fig.get_figheight(), hspace=0.35)
    return _save(fig, out_dir, "fig8_flux_profiles", table)


def compute_flux_outputs(inputs: FluxInputs, out_dir: str | os.PathLike) -> dict:
    """Compute and write the flux tables and every assessment table into ``out_dir``."""
    particles, samples = as_frames(inputs.campaign)
    by_sample, summary = flux_tables(
        (particles, samples), inputs.predictions, inputs.allometry, inputs.fixed_labels
    )
    write_flux_tables(out_dir, by_sample, summary)
    predictions = inputs.predictions
    if predictions is not None:  # every target particle: predicted or its training label
        predictions = with_fixed_labels(predictions, inputs.fixed_labels)
    tables = assess_flux(by_sample, samples, particles, predictions)
    write_assessment(out_dir, tables)
    return {"by_sample": by_sample, "summary": summary, "particles": particles, **tables}


def _read(path: Path) -> pd.DataFrame:
    # Only empty cells are missing: a domain or class named "NA" stays a name.
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def make_flux_figures(
    workspace_or_inputs: FluxInputs | str | os.PathLike, out_dir: str | os.PathLike
) -> list[Path]:
    """Draw Figures 3 (with a campaign) and 5–8 into ``out_dir``; return every file
    written (PNG, PDF, CSV)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(workspace_or_inputs, FluxInputs):
        tables = compute_flux_outputs(workspace_or_inputs, out_dir)
    else:
        folder = Path(workspace_or_inputs)
        needed = [FLUX_SUMMARY_FILE, FILES["mae"]]
        missing = [name for name in needed if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{folder} lacks {missing}; run `plankflux flux figures`")
        optional = {}
        for key in ("precision_recall", "pr_anova"):
            path = folder / FILES[key]
            optional[key] = _read(path) if path.is_file() else None
        tables = {
            "summary": _read(folder / FLUX_SUMMARY_FILE),
            "mae": _read(folder / FILES["mae"]),
            **optional,
        }
    particles = tables.get("particles")
    return [
        *(figure3(particles, out_dir) if particles is not None else []),
        *figure5(tables["summary"], out_dir),
        *figure6(tables["mae"], out_dir),
        *figure7(tables.get("precision_recall"), out_dir, tables.get("pr_anova")),
        *figure8(tables["summary"], out_dir),
    ]
