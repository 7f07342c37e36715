"""Flux assessment: MAE by hand, ANOVA/Tukey against scipy, P/R in the original scheme."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from plankflux.eval.flux_assessment import (
    ANOVA_COLUMNS,
    FILES,
    MAE_COLUMNS,
    TUKEY_COLUMNS,
    anova_tukey,
    assess_flux,
    flux_mae,
    human_reference,
    human_reference_note,
    precision_recall_anova,
    precision_recall_original,
    summarise_mae,
    write_assessment,
)
from plankflux.eval.metrics import report_in_original_scheme


def by_sample_frame() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two samples; human, and treatment T with two members; total and aggregate rows."""
    rows = []
    values = {  # (treatment, member) -> {sample: (aggregate, total)}
        ("human", 0): {"A": (1.0, 2.0), "B": (3.0, 4.0)},
        ("T", 0): {"A": (1.5, 2.5), "B": (2.0, 5.0)},
        ("T", 1): {"A": (1.0, 1.0), "B": (3.0, 4.0)},
    }
    for (treatment, member), per_sample in values.items():
        for sample, (agg, total) in per_sample.items():
            for group, flux in (("aggregate", agg), ("total", total)):
                rows.append((sample, "RR", 100.0, treatment, member, group, flux))
    columns = ["sample_id", "domain", "depth_m", "treatment", "member", "class_group",
               "flux_mmol_m2_d"]  # fmt: skip
    samples = pd.DataFrame({"sample_id": ["A", "B"], "measured_flux_mmol_m2_d": [3.0, np.nan]})
    return pd.DataFrame(rows, columns=columns).assign(coverage=1.0), samples


def mae_of(mae, treatment, member, reference, group):
    sel = (
        (mae["treatment"] == treatment)
        & (mae["member"] == member)
        & (mae["reference"] == reference)
        & (mae["class_group"] == group)
    )
    assert sel.sum() == 1
    return mae[sel].iloc[0]


def test_mae_by_hand():
    by_sample, samples = by_sample_frame()
    mae = flux_mae(by_sample, samples)
    assert list(mae.columns) == list(MAE_COLUMNS)
    # vs measured: only sample A has a value (3.0); totals 2.0 / 2.5 / 1.0
    assert mae_of(mae, "human", 0, "measured", "total")["mae_mmol_m2_d"] == 1.0
    assert mae_of(mae, "T", 0, "measured", "total")["mae_mmol_m2_d"] == 0.5
    assert mae_of(mae, "T", 1, "measured", "total")["n_samples"] == 1
    # vs human, over both samples: member 0 total |2.5-2| and |5-4| -> 0.75
    assert mae_of(mae, "T", 0, "human", "total")["mae_mmol_m2_d"] == 0.75
    assert mae_of(mae, "T", 0, "human", "aggregate")["mae_mmol_m2_d"] == 0.75
    assert mae_of(mae, "T", 1, "human", "total")["mae_mmol_m2_d"] == 0.5
    assert not ((mae["treatment"] == "human") & (mae["reference"] == "human")).any()
    assert not ((mae["reference"] == "measured") & (mae["class_group"] != "total")).any()
    summary = summarise_mae(mae)
    t = summary[(summary["treatment"] == "T") & (summary["reference"] == "human")]
    t = t[t["class_group"] == "total"].iloc[0]
    assert (t["n_members"], t["mae_mean"]) == (2, 0.625)
    assert t["mae_sd"] == pytest.approx(np.std([0.75, 0.5], ddof=1))


def constructed_mae(groups: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        (t, m, "measured", "total", 3, v) for t, vals in groups.items() for m, v in enumerate(vals)
    ]
    rows.append(("human", 0, "measured", "total", 3, 0.7))  # left out of the ANOVA
    return pd.DataFrame(rows, columns=list(MAE_COLUMNS))


def test_anova_and_tukey_equal_scipy_directly():
    groups = {
        "OOD": [3.4, 2.2, 4.6, 3.9, 2.9],
        "+top1k": [2.1, 2.6, 1.8, 2.4, 2.2],
        "+minboost": [1.0, 1.4, 0.7, 1.2, 0.9],
    }
    anova, tukey = anova_tukey(constructed_mae(groups))
    assert list(anova.columns) == list(ANOVA_COLUMNS)
    assert list(tukey.columns) == list(TUKEY_COLUMNS)
    expected = stats.f_oneway(*groups.values())
    a = anova.iloc[0]
    assert (a["n_treatments"], a["n_values"]) == (3, 15)
    assert a["f_statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert a["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    assert a["significant"] and expected.pvalue < 0.05

    hsd = stats.tukey_hsd(*groups.values())
    ci = hsd.confidence_interval(0.95)
    names = list(groups)
    assert len(tukey) == 3
    for _, r in tukey.iterrows():
        i, j = names.index(r["treatment_a"]), names.index(r["treatment_b"])
        assert r["mean_diff"] == pytest.approx(hsd.statistic[i, j], rel=1e-12)
        assert r["p_value"] == pytest.approx(hsd.pvalue[i, j], rel=1e-9, abs=1e-12)
        assert (r["ci_low"], r["ci_high"]) == pytest.approx((ci.low[i, j], ci.high[i, j]))
        assert r["significant"] == (hsd.pvalue[i, j] < 0.05)


def test_no_tukey_when_not_significant_and_notes_when_anova_cannot_run():
    same = {"A": [1.0, 1.2, 0.9], "B": [1.1, 0.95, 1.05]}
    anova, tukey = anova_tukey(constructed_mae(same))
    assert anova["p_value"].iat[0] == pytest.approx(stats.f_oneway(*same.values()).pvalue)
    assert not anova["significant"].iat[0] and tukey.empty
    anova, tukey = anova_tukey(constructed_mae({"only": [1.0, 2.0]}))
    assert "needs >= 2 treatments" in anova["note"].iat[0] and np.isnan(anova["p_value"].iat[0])


def test_precision_recall_in_original_scheme_matches_metrics():
    particles = pd.DataFrame(
        {
            "particle_id": [f"p{i}" for i in range(6)],
            "label": ["aggregate", "long_pellet", "fiber_blur", "noise", "phyto_dino", ""],
            "label_original": ["dense_detritus", "long_fecal_pellet", "fiber", "unidentifiable",
                               "phytoplankton", ""],
        }
    )  # fmt: skip
    preds = pd.DataFrame(
        {
            "particle_id": [f"p{i}" for i in range(6)],
            "treatment": "OOD",
            "member": 0,
            "label": ["aggregate", "short_pellet", "fiber_sharp", "bubble", "aggregate", "noise"],
        }
    )
    pr = precision_recall_original(particles, preds)
    ood = pr[pr["treatment"] == "OOD"].set_index("class")
    expected = report_in_original_scheme(
        particles["label_original"][:5], preds["label"][:5]
    )  # p5 has no original label
    pd.testing.assert_frame_equal(
        ood[["precision", "recall", "f1", "support"]], expected, check_names=False
    )
    # The relabelling reference: the revised labels against the original annotation.
    revised = pr[pr["treatment"] == "revised"].set_index("class")
    assert revised.loc["macro", "recall"] == 1.0 and revised.loc["macro", "support"] == 5
    assert "human" not in set(pr["treatment"])
    assert ood.loc["fiber", "recall"] == 1.0 and ood.loc["phytoplankton", "recall"] == 0.0


def test_assess_and_write(tmp_path):
    by_sample, samples = by_sample_frame()
    tables = assess_flux(by_sample, samples)
    assert set(tables) == {"mae", "mae_summary", "anova", "tukey", "human_reference"}
    paths = write_assessment(tmp_path, tables)
    assert sorted(p.name for p in paths) == sorted(FILES[k] for k in tables)
    assert all(p.stat().st_size > 0 for p in paths)


def test_a_partial_human_reference_is_reported_but_not_compared(caplog):
    """Sample B's original annotation covers half its particles: no MAE against it."""
    by_sample, samples = by_sample_frame()
    partial = (by_sample["treatment"] == "human") & (by_sample["sample_id"] == "B")
    by_sample.loc[partial, "coverage"] = 0.5
    reference = human_reference(by_sample)
    assert reference.set_index("sample_id")["compared"].to_dict() == {"A": True, "B": False}
    mae = flux_mae(by_sample, samples)
    # vs human, sample A only: member 0 total |2.5 - 2| = 0.5
    assert mae_of(mae, "T", 0, "human", "total")["mae_mmol_m2_d"] == 0.5
    assert mae_of(mae, "T", 0, "human", "total")["n_samples"] == 1
    note = human_reference_note(reference)
    assert "0.50" in note and "1 of 2 samples" in note and "not compared" in note
    assert "not compared" in caplog.text
    by_sample.loc[by_sample["treatment"] == "human", "coverage"] = 0.4
    mae = flux_mae(by_sample, samples)
    assert not (mae["reference"] == "human").any()


def test_precision_recall_anova_per_class_equals_scipy():
    """Fig. 7: one-way ANOVA across treatments of per-member precision, per class."""
    rows = []
    values = {"OOD": [0.2, 0.4, 0.3], "+verify": [0.7, 0.8, 0.75]}
    for treatment, precisions in values.items():
        for member, value in enumerate(precisions):
            rows.append((treatment, member, "aggregate", value, 0.5, 0.5, 10))
    rows.append(("revised", 0, "aggregate", 0.9, 0.9, 0.9, 10))  # the reference: left out
    pr = pd.DataFrame(rows, columns=["treatment", "member", "class", "precision", "recall",
                                     "f1", "support"])  # fmt: skip
    anova, tukey = precision_recall_anova(pr)
    row = anova[(anova["metric"] == "precision") & (anova["class"] == "aggregate")].iloc[0]
    expected = stats.f_oneway(*values.values())
    assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-9) and row["significant"]
    assert row["n_treatments"] == 2
    assert len(tukey) == 1 and tukey["metric"].iat[0] == "precision"
    recall = anova[anova["metric"] == "recall"].iloc[0]
    assert not recall["significant"]  # constant recall: undefined, not significant
