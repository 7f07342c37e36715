"""Assessment of model fluxes (Paper A, docs/paper_a.md "Assessment"), as tables.

* MAE (mmol C m⁻² d⁻¹) per treatment and member, over samples, against the measured
  bulk flux (``total`` only) and against the human-label flux (every class group and
  ``total``): :func:`flux_mae`, summarised as mean ± sd (ddof=1) over members.
* One-way ANOVA across treatments of the per-member MAEs (``scipy.stats.f_oneway``),
  per reference and class group; Tukey HSD (``scipy.stats.tukey_hsd``) where
  p < ``alpha``: :func:`anova_tukey`. The ``human`` treatment is left out of both.
* Precision/recall against the older human labels (``label_original``) in the
  original annotation scheme (:func:`precision_recall_original`), per treatment and
  member, plus the ``human`` re-annotation (the campaign's current labels) as the
  reference a model can be held to.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from plankflux.eval.metrics import report_in_original_scheme, summarise_reports
from plankflux.flux.predictions import HUMAN, human_predictions
from plankflux.flux.tables import TOTAL
from plankflux.utils.atomic import write_csv_atomic

MAE_COLUMNS = ("treatment", "member", "reference", "class_group", "n_samples", "mae_mmol_m2_d")
MAE_SUMMARY_COLUMNS = ("treatment", "reference", "class_group", "n_members", "mae_mean", "mae_sd")
ANOVA_COLUMNS = (
    "reference", "class_group", "n_treatments", "n_values", "f_statistic", "p_value",
    "significant", "note",
)  # fmt: skip
TUKEY_COLUMNS = (
    "reference", "class_group", "treatment_a", "treatment_b", "mean_diff", "ci_low",
    "ci_high", "p_value", "significant",
)  # fmt: skip
PR_COLUMNS = ("treatment", "member", "class", "precision", "recall", "f1", "support")
FILES = {
    "mae": "flux_mae_by_member.csv",
    "mae_summary": "flux_mae_summary.csv",
    "anova": "flux_anova.csv",
    "tukey": "flux_tukey.csv",
    "precision_recall": "precision_recall_original.csv",
}


def flux_mae(by_sample: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """MAE per treatment × member × reference × class group; columns :data:`MAE_COLUMNS`.

    ``measured``: |total flux − measured bulk flux| averaged over the samples with a
    measured value. ``human``: |flux − human-label flux| over the samples the
    ``human`` treatment reports (model treatments only).
    """
    keys = ["treatment", "member", "reference", "class_group"]
    parts = []
    total = by_sample[by_sample["class_group"] == TOTAL]
    if "measured_flux_mmol_m2_d" in samples.columns:
        measured = pd.to_numeric(samples["measured_flux_mmol_m2_d"], errors="coerce")
        measured.index = samples["sample_id"].astype(str)
        ref = total["sample_id"].map(measured)
        ok = ref.notna()
        parts.append(
            total[ok].assign(reference="measured", err=(total["flux_mmol_m2_d"] - ref)[ok].abs())
        )
    human = by_sample[by_sample["treatment"] == HUMAN]
    if len(human):
        href = human.groupby(["sample_id", "class_group"])["flux_mmol_m2_d"].mean()
        model = by_sample[by_sample["treatment"] != HUMAN]
        ref = pd.Series(
            pd.MultiIndex.from_frame(model[["sample_id", "class_group"]]).map(href.to_dict().get),
            index=model.index,
            dtype=np.float64,
        )
        ok = ref.notna()
        parts.append(
            model[ok].assign(reference="human", err=(model["flux_mmol_m2_d"] - ref)[ok].abs())
        )
    if not parts:
        return pd.DataFrame(columns=list(MAE_COLUMNS))
    errors = pd.concat(parts, ignore_index=True)
    out = (
        errors.groupby(keys, sort=False)
        .agg(n_samples=("err", "size"), mae_mmol_m2_d=("err", "mean"))
        .reset_index()
    )
    return out[list(MAE_COLUMNS)]


def summarise_mae(mae: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd (ddof=1; empty with one member) of MAE over members."""
    out = mae.groupby(["treatment", "reference", "class_group"], sort=False).agg(
        n_members=("member", "nunique"), mae_mean=("mae_mmol_m2_d", "mean"),
        mae_sd=("mae_mmol_m2_d", lambda x: x.std(ddof=1) if len(x) > 1 else np.nan),
    ).reset_index()  # fmt: skip
    return out[list(MAE_SUMMARY_COLUMNS)]


def anova_tukey(mae: pd.DataFrame, alpha: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One-way ANOVA of per-member MAE across model treatments; Tukey HSD where p < alpha.

    Per (reference, class group). Rows where ANOVA cannot run (fewer than two
    treatments, or no treatment with two members) carry a ``note`` and empty values.
    """
    anova_rows, tukey_rows = [], []
    model = mae[mae["treatment"] != HUMAN]
    for (reference, group), part in model.groupby(["reference", "class_group"], sort=False):
        treatments = list(dict.fromkeys(part["treatment"]))
        samples = [part.loc[part["treatment"] == t, "mae_mmol_m2_d"].to_numpy() for t in treatments]
        row = {"reference": reference, "class_group": group, "n_treatments": len(treatments),
               "n_values": int(sum(map(len, samples))), "f_statistic": np.nan,
               "p_value": np.nan, "significant": False, "note": ""}  # fmt: skip
        if len(treatments) < 2 or max(map(len, samples)) < 2:
            row["note"] = "needs >= 2 treatments and a treatment with >= 2 members"
            anova_rows.append(row)
            continue
        with warnings.catch_warnings():  # constant input: scipy warns and returns NaN
            warnings.simplefilter("ignore")
            result = stats.f_oneway(*samples)
        row.update(f_statistic=float(result.statistic), p_value=float(result.pvalue))
        if not np.isfinite(row["p_value"]):
            row["note"] = "undefined (no variation within or between treatments)"
        row["significant"] = bool(row["p_value"] < alpha)
        anova_rows.append(row)
        if row["significant"] and min(map(len, samples)) >= 1:
            hsd = stats.tukey_hsd(*samples)
            ci = hsd.confidence_interval(confidence_level=1 - alpha)
            for i in range(len(treatments)):
                for j in range(i + 1, len(treatments)):
                    tukey_rows.append({
                        "reference": reference, "class_group": group,
                        "treatment_a": treatments[i], "treatment_b": treatments[j],
                        "mean_diff": float(hsd.statistic[i, j]),
                        "ci_low": float(ci.low[i, j]), "ci_high": float(ci.high[i, j]),
                        "p_value": float(hsd.pvalue[i, j]),
                        "significant": bool(hsd.pvalue[i, j] < alpha),
                    })  # fmt: skip
    return (
        pd.DataFrame(anova_rows, columns=list(ANOVA_COLUMNS)),
        pd.DataFrame(tukey_rows, columns=list(TUKEY_COLUMNS)),
    )


def precision_recall_original(
    particles: pd.DataFrame, predictions: pd.DataFrame | None, train_counts=None
) -> pd.DataFrame:
    """P/R/F1 in the original scheme against ``label_original``; columns :data:`PR_COLUMNS`.

    Per treatment × member over the particles that have a ``label_original`` and a
    prediction; the ``human`` treatment (added from the campaign's labels when
    absent) is the re-annotation reference. Class rows, then ``macro`` and ``weighted``.
    """
    original = particles.set_index(particles["particle_id"].astype(str))["label_original"]
    original = original[original.astype(str) != ""]
    preds = human_predictions(particles) if predictions is None else predictions
    if HUMAN not in set(preds["treatment"]):
        preds = pd.concat([preds, human_predictions(particles)], ignore_index=True)
    preds = preds[preds["particle_id"].astype(str).isin(original.index)]
    frames = []
    for (treatment, member), part in preds.groupby(["treatment", "member"], sort=False):
        truth = original.loc[part["particle_id"].astype(str)].to_numpy()
        report = report_in_original_scheme(truth, part["label"].to_numpy(), train_counts)
        report = report.reset_index().rename(columns={report.index.name or "index": "class"})
        frames.append(report.assign(treatment=treatment, member=member))
    if not frames:
        return pd.DataFrame(columns=list(PR_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(PR_COLUMNS)]


def summarise_precision_recall(pr: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd over members per treatment and class (``plankflux.eval.metrics``)."""
    frames = []
    for treatment, part in pr.groupby("treatment", sort=False):
        reports = [g.set_index("class") for _, g in part.groupby("member", sort=True)]
        frames.append(summarise_reports(reports).reset_index().assign(treatment=treatment))
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    return out[["treatment", *[c for c in out.columns if c != "treatment"]]]


def assess_flux(by_sample, samples, particles=None, predictions=None, alpha=0.05) -> dict:
    """Every assessment table, keyed like :data:`FILES` (P/R only with ``particles``)."""
    mae = flux_mae(by_sample, samples)
    anova, tukey = anova_tukey(mae, alpha)
    tables = {"mae": mae, "mae_summary": summarise_mae(mae), "anova": anova, "tukey": tukey}
    if particles is not None and (particles["label_original"].astype(str) != "").any():
        tables["precision_recall"] = precision_recall_original(particles, predictions)
    return tables


def write_assessment(out_dir: str | os.PathLike, tables: dict) -> list[Path]:
    """Write each table of :func:`assess_flux` atomically under its :data:`FILES` name."""
    paths = []
    for key, frame in tables.items():
        paths.append(Path(out_dir) / FILES[key])
        write_csv_atomic(frame, paths[-1])
    return paths
