"""Assessment of model fluxes (Paper A, docs/paper_a.md "Assessment"), as tables.

* MAE (mmol C m⁻² d⁻¹) per treatment and member, over samples, against the measured
  bulk flux (``total`` only) and against the human-label flux (every class group and
  ``total``): :func:`flux_mae`, summarised as mean ± sd (ddof=1) over members. The
  human-label flux is Paper A's: the original annotation of *every* particle of the
  target. A sample whose particles it does not all annotate is not compared
  (:func:`human_reference` lists the coverage; :func:`human_reference_note` says why).
* One-way ANOVA across treatments of the per-member MAEs (``scipy.stats.f_oneway``),
  per reference and class group; Tukey HSD (``scipy.stats.tukey_hsd``) where
  p < ``alpha``: :func:`anova_tukey`. The ``human`` treatment is left out of both.
* Figure 7: precision/recall per class against the original annotation
  (``label_original``) of the whole target in the original scheme (noise + bubble =
  unidentifiable): :func:`precision_recall_original`, per treatment and member (each
  particle a treatment trained on counts with its training label), plus the
  ``revised`` labels (the relabelling experiment: ``label`` against
  ``label_original``) as the reference lines; one-way ANOVA and Tukey HSD across
  treatments per class and metric: :func:`precision_recall_anova`.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from plankflux.eval.metrics import (
    report_in_original_scheme,
    summarise_reports,
    to_original_scheme_labels,
)
from plankflux.flux.predictions import HUMAN, ORIGINAL_LABEL, REVISED, human_predictions
from plankflux.flux.tables import FULL_COVERAGE, TOTAL
from plankflux.utils.atomic import write_csv_atomic

log = logging.getLogger(__name__)

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
PR_ANOVA_COLUMNS = ("metric", "class", *ANOVA_COLUMNS[2:])
PR_TUKEY_COLUMNS = ("metric", "class", *TUKEY_COLUMNS[2:])
HUMAN_REFERENCE_COLUMNS = ("sample_id", "coverage", "compared")
ACCURACY_COLUMNS = ("treatment", "member", "n_particles", "accuracy")
FILES = {
    "mae": "flux_mae_by_member.csv",
    "mae_summary": "flux_mae_summary.csv",
    "anova": "flux_anova.csv",
    "tukey": "flux_tukey.csv",
    "human_reference": "human_reference.csv",
    "accuracy_original": "accuracy_original.csv",
    "precision_recall": "precision_recall_original.csv",
    "pr_anova": "precision_recall_anova.csv",
    "pr_tukey": "precision_recall_tukey.csv",
}


def human_reference(by_sample: pd.DataFrame) -> pd.DataFrame:
    """Per sample of the ``human`` treatment: the fraction of its particles the human
    reference annotates and whether it is compared (only a full annotation is).
    Columns :data:`HUMAN_REFERENCE_COLUMNS`; empty without a ``human`` treatment."""
    human = by_sample[(by_sample["treatment"] == HUMAN) & (by_sample["class_group"] == TOTAL)]
    coverage = human.groupby("sample_id", sort=False)["coverage"].mean()
    return pd.DataFrame(
        {
            "sample_id": coverage.index.astype(str),
            "coverage": coverage.to_numpy(dtype=np.float64),
            "compared": (coverage >= FULL_COVERAGE).to_numpy(),
        },
        columns=list(HUMAN_REFERENCE_COLUMNS),
    )


def human_reference_note(reference: pd.DataFrame) -> str:
    """One sentence on the human reference: compared, or why (part of it) is not."""
    if reference.empty:
        return "no human annotation: model fluxes are compared with the measured flux only"
    partial = reference[~reference["compared"]]
    if partial.empty:
        return f"human labels annotate every particle of all {len(reference)} samples: compared"
    low, high = partial["coverage"].min(), partial["coverage"].max()
    span = f"{low:.2f}" if np.isclose(low, high) else f"{low:.2f}-{high:.2f}"
    return (
        f"human labels annotate only a fraction ({span}) of the particles of "
        f"{len(partial)} of {len(reference)} samples: their flux is reported with its "
        "coverage but not compared there, since a flux summed over part of a sample "
        "is not that sample's flux (Paper A's reference is the original annotation "
        f"of every particle, column {ORIGINAL_LABEL})"
    )


def flux_mae(by_sample: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """MAE per treatment × member × reference × class group; columns :data:`MAE_COLUMNS`.

    ``measured``: |total flux − measured bulk flux| averaged over the samples with a
    measured value. ``human``: |flux − human-label flux| over the samples whose every
    particle the ``human`` treatment annotates (model treatments only; a partially
    annotated sample is skipped with a warning, see :func:`human_reference_note`).
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
    reference = human_reference(by_sample)
    if len(reference) and not reference["compared"].all():
        log.warning("%s", human_reference_note(reference))
    human = human[
        human["sample_id"].astype(str).isin(reference.loc[reference["compared"], "sample_id"])
    ]
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
    model = mae[mae["treatment"] != HUMAN]
    return _anova_tukey(model, ["reference", "class_group"], "mae_mmol_m2_d", alpha)


def _anova_tukey(
    frame: pd.DataFrame, by: list[str], value: str, alpha: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One-way ANOVA of ``value`` across treatments per ``by`` group; Tukey HSD where
    p < alpha. Columns: ``by`` then :data:`ANOVA_COLUMNS` / :data:`TUKEY_COLUMNS` after
    their first two. Missing values (e.g. an undefined precision) are left out."""
    anova_rows, tukey_rows = [], []
    frame = frame[frame[value].notna()]
    for key, part in frame.groupby(by, sort=False):
        key = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
        treatments = list(dict.fromkeys(part["treatment"]))
        samples = [part.loc[part["treatment"] == t, value].to_numpy(float) for t in treatments]
        row = {**key, "n_treatments": len(treatments),
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
            with warnings.catch_warnings():  # no spread within treatments: inf statistics
                warnings.simplefilter("ignore")
                hsd = stats.tukey_hsd(*samples)
            ci = hsd.confidence_interval(confidence_level=1 - alpha)
            for i in range(len(treatments)):
                for j in range(i + 1, len(treatments)):
                    tukey_rows.append({
                        **key, "treatment_a": treatments[i], "treatment_b": treatments[j],
                        "mean_diff": float(hsd.statistic[i, j]),
                        "ci_low": float(ci.low[i, j]), "ci_high": float(ci.high[i, j]),
                        "p_value": float(hsd.pvalue[i, j]),
                        "significant": bool(hsd.pvalue[i, j] < alpha),
                    })  # fmt: skip
    return (
        pd.DataFrame(anova_rows, columns=[*by, *ANOVA_COLUMNS[2:]]),
        pd.DataFrame(tukey_rows, columns=[*by, *TUKEY_COLUMNS[2:]]),
    )


def precision_recall_original(
    particles: pd.DataFrame, predictions: pd.DataFrame | None, train_counts=None
) -> pd.DataFrame:
    """Figure 7: P/R/F1 per class in the original scheme against ``label_original``.

    Per treatment × member over the predicted particles that have a
    ``label_original`` (pass the predictions with the training labels fixed, so the
    whole target counts); columns :data:`PR_COLUMNS`, class rows then ``macro`` and
    ``weighted``. The ``revised`` treatment (the campaign's revised ``label`` against
    the original annotation, on the particles that have both and lie in the predicted
    domains) is the relabelling reference; a ``human`` treatment (the original
    annotation itself) is left out.
    """
    original = particles.set_index(particles["particle_id"].astype(str))[ORIGINAL_LABEL]
    original = original[original.fillna("").astype(str) != ""]
    preds = pd.DataFrame(columns=["particle_id", "treatment", "member", "label"])
    if predictions is not None:
        preds = predictions[~predictions["treatment"].isin([HUMAN, REVISED])]
    predicted = set(preds["particle_id"].astype(str))
    in_scope = particles
    if predicted and "domain" in particles.columns:
        domains = set(particles.loc[particles["particle_id"].astype(str).isin(predicted), "domain"])
        in_scope = particles[particles["domain"].isin(domains)]
    revised = human_predictions(in_scope, REVISED, column="label")
    preds = pd.concat([preds, revised], ignore_index=True)
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


def accuracy_original(particles: pd.DataFrame, predictions: pd.DataFrame | None) -> pd.DataFrame:
    """Accuracy in the original scheme against ``label_original`` per treatment × member,
    over the predicted particles that have an original annotation (pass predictions
    with the training labels fixed: the labels each treatment gives the whole target,
    as in Figure 7 and the flux). Columns :data:`ACCURACY_COLUMNS`; ``human`` and
    ``revised`` are left out."""
    if predictions is None or predictions.empty:
        return pd.DataFrame(columns=list(ACCURACY_COLUMNS))
    original = particles.set_index(particles["particle_id"].astype(str))[ORIGINAL_LABEL]
    original = original[original.fillna("").astype(str) != ""]
    preds = predictions[~predictions["treatment"].isin([HUMAN, REVISED])]
    preds = preds[preds["particle_id"].astype(str).isin(original.index)]
    truth = to_original_scheme_labels(original.loc[preds["particle_id"].astype(str)].to_numpy())
    correct = to_original_scheme_labels(preds["label"].to_numpy()) == truth
    out = (
        preds.assign(correct=correct)
        .groupby(["treatment", "member"], sort=False)["correct"]
        .agg(n_particles="size", accuracy="mean")
        .reset_index()
    )
    return out[list(ACCURACY_COLUMNS)]


def precision_recall_anova(
    pr: pd.DataFrame, alpha: float = 0.05
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One-way ANOVA across model treatments of per-member precision and of recall,
    per class (Fig. 7), then Tukey HSD where p < alpha. Columns
    :data:`PR_ANOVA_COLUMNS`, :data:`PR_TUKEY_COLUMNS`; the ``revised`` reference is
    left out."""
    model = pr[~pr["treatment"].isin([HUMAN, REVISED])]
    long = model.melt(
        id_vars=["treatment", "member", "class"], value_vars=["precision", "recall"],
        var_name="metric", value_name="value",
    )  # fmt: skip
    return _anova_tukey(long, ["metric", "class"], "value", alpha)


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
    """Every assessment table, keyed like :data:`FILES` (P/R only with ``particles``).

    ``predictions``: the model predictions with the training labels already fixed
    (:func:`~plankflux.flux.predictions.with_fixed_labels`), for Figure 7.
    """
    mae = flux_mae(by_sample, samples)
    anova, tukey = anova_tukey(mae, alpha)
    tables = {"mae": mae, "mae_summary": summarise_mae(mae), "anova": anova, "tukey": tukey,
              "human_reference": human_reference(by_sample)}  # fmt: skip
    if particles is not None and (particles[ORIGINAL_LABEL].astype(str) != "").any():
        tables["accuracy_original"] = accuracy_original(particles, predictions)
        pr = precision_recall_original(particles, predictions)
        tables["precision_recall"] = pr
        tables["pr_anova"], tables["pr_tukey"] = precision_recall_anova(pr, alpha)
    return tables


def write_assessment(out_dir: str | os.PathLike, tables: dict) -> list[Path]:
    """Write each table of :func:`assess_flux` atomically under its :data:`FILES` name."""
    paths = []
    for key, frame in tables.items():
        paths.append(Path(out_dir) / FILES[key])
        write_csv_atomic(frame, paths[-1])
    return paths
