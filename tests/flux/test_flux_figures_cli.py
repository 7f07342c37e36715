"""Figures 3 and 5–8 and the ``plankflux flux`` commands on the synthetic tiny campaign."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plankflux.cli.main import main
from plankflux.data.campaign import load_campaign
from plankflux.data.classes import TRAP_CLASSES
from plankflux.eval.flux_assessment import FILES
from plankflux.flux import FLUX_BY_SAMPLE_COLUMNS, FLUX_SUMMARY_COLUMNS
from plankflux.synthetic.trap import TRUTH_FILE
from plankflux.tables.flux_figures import FluxInputs, make_flux_figures

FIGURES = ("fig5_human_vs_measured", "fig6_mae_by_treatment", "fig7_precision_recall",
           "fig8_flux_profiles")  # fmt: skip


@pytest.fixture(scope="module")
def predictions(tiny_campaign) -> pd.DataFrame:
    """RR and JC particles, 2 treatments × 3 members: true labels with deliberate errors."""
    truth = pd.read_csv(tiny_campaign / TRUTH_FILE, dtype=str)
    truth = truth[truth["particle_id"].str[:2].isin(["RR", "JC"])]
    rng = np.random.default_rng(0)
    frames = []
    for treatment, error_rate in (("OOD", 0.4), ("+minboost", 0.1)):
        for member in range(3):
            labels = truth["true_label"].to_numpy().copy()
            wrong = rng.random(len(labels)) < error_rate
            labels[wrong] = rng.choice(TRAP_CLASSES, int(wrong.sum()))
            frames.append(truth[["particle_id"]].assign(treatment=treatment, member=member,
                                                        label=labels))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def test_figures_and_tables_from_a_tiny_workspace(tiny_campaign, predictions, tmp_path):
    campaign = load_campaign(tiny_campaign, check_images="none")
    paths = make_flux_figures(FluxInputs(campaign, predictions), tmp_path / "out")
    names = {p.name for p in paths}
    figures = ("fig3_labelled_counts", *FIGURES)  # Figure 3 needs the campaign
    assert names == {f"{f}.{ext}" for f in figures for ext in ("png", "pdf", "csv")}
    for name in [*names, "flux_by_sample.csv", "flux_summary.csv", *FILES.values()]:
        assert (tmp_path / "out" / name).stat().st_size > 0, name
    assert (tmp_path / "out" / "fig5_human_vs_measured.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "out" / "fig8_flux_profiles.pdf").read_bytes()[:4] == b"%PDF"
    summary = pd.read_csv(tmp_path / "out" / "flux_summary.csv")
    assert set(summary["treatment"]) == {"OOD", "+minboost", "human"}
    assert set(summary["domain"]) == {"RR", "JC"}
    anova = pd.read_csv(tmp_path / "out" / FILES["anova"])
    assert {"measured", "human"} <= set(anova["reference"])
    fig6 = pd.read_csv(tmp_path / "out" / "fig6_mae_by_treatment.csv")
    assert set(fig6["treatment"]) >= {"OOD", "+minboost"}
    # The synthetic campaign's original annotation covers every particle: compared.
    reference = pd.read_csv(tmp_path / "out" / FILES["human_reference"])
    assert set(reference["sample_id"]) == set(summary["sample_id"])
    assert (reference["coverage"] == 1.0).all() and reference["compared"].all()
    # Figure 7: per class, the relabelling reference and an ANOVA per class and metric.
    fig7 = pd.read_csv(tmp_path / "out" / "fig7_precision_recall.csv", keep_default_na=False)
    assert {"OOD", "+minboost", "revised"} == set(fig7["treatment"])
    assert "unidentifiable" in set(fig7["class"]) and "noise" not in set(fig7["class"])
    pr_anova = pd.read_csv(tmp_path / "out" / FILES["pr_anova"], keep_default_na=False)
    assert set(pr_anova["metric"]) == {"precision", "recall"}
    assert "unidentifiable" in set(pr_anova["class"])
    fig3 = pd.read_csv(tmp_path / "out" / "fig3_labelled_counts.csv")
    assert list(fig3.columns) == ["class", "RR", "FC", "FO", "SR", "JC"]
    assert (
        fig3[["RR", "FC", "FO", "SR", "JC"]].to_numpy().sum()
        == (campaign.particles["label"] != "").sum()
    )

    # Re-drawn from the written tables alone (Figure 3 needs the campaign).
    again = make_flux_figures(tmp_path / "out", tmp_path / "again")
    assert {p.name for p in again} == {n for n in names if not n.startswith("fig3")}
    with pytest.raises(FileNotFoundError, match="flux_summary.csv"):
        make_flux_figures(tmp_path / "again", tmp_path / "nope")


def test_cli_tables_fit_figures(tiny_campaign, predictions, tmp_path, capsys):
    # Human labels only: a user with labels and no model still gets flux tables.
    assert main(["flux", "tables", str(tiny_campaign), "--out", str(tmp_path / "h")]) == 0
    by_sample = pd.read_csv(tmp_path / "h" / "flux_by_sample.csv")
    assert list(by_sample.columns) == list(FLUX_BY_SAMPLE_COLUMNS)
    assert set(by_sample["treatment"]) == {"human"}
    header = (tmp_path / "h" / "flux_summary.csv").read_text().splitlines()[0]
    assert header == ",".join(FLUX_SUMMARY_COLUMNS)

    assert main(["flux", "fit", str(tiny_campaign), "--out", str(tmp_path / "fit")]) == 0
    fitted = tmp_path / "fit" / "allometry_fitted.csv"
    assert "A = " in capsys.readouterr().out
    assert main(["flux", "tables", str(tiny_campaign), "--out", str(tmp_path / "h2"),
                 "--allometry", str(fitted)]) == 0  # fmt: skip
    refit = pd.read_csv(tmp_path / "h2" / "flux_by_sample.csv")
    assert not np.allclose(refit["flux_mmol_m2_d"], by_sample["flux_mmol_m2_d"])

    preds = tmp_path / "predictions.csv"
    predictions.to_csv(preds, index=False)
    fixed = tmp_path / "fixed.csv"
    pd.DataFrame(
        {"particle_id": [predictions["particle_id"].iat[0]], "label": ["aggregate"]}
    ).to_csv(fixed, index=False)
    args = ["flux", "figures", "--campaign", str(tiny_campaign), "--predictions", str(preds),
            "--fixed-labels", str(fixed), "--out", str(tmp_path / "figs")]  # fmt: skip
    assert main(args) == 0
    assert all((tmp_path / "figs" / f"{f}.png").stat().st_size > 0 for f in FIGURES)


def test_cli_reports_bad_input(tiny_campaign, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"particle_id": ["nope"], "treatment": ["T"], "member": [0],
                  "label": ["aggregate"]}).to_csv(bad, index=False)  # fmt: skip
    code = main(["flux", "tables", str(tiny_campaign), "--predictions", str(bad),
                 "--out", str(tmp_path / "o")])  # fmt: skip
    assert code == 1
    assert "particle_id(s) not in the campaign: 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "o" / "flux_by_sample.csv").exists()


def test_cli_tables_warn_when_predictions_cover_part_of_a_sample(
    tiny_campaign, predictions, tmp_path, capsys
):
    first = predictions["particle_id"].iat[0]
    sample = load_campaign(tiny_campaign).particles.set_index("particle_id").at[first, "sample_id"]
    partial = tmp_path / "partial.csv"
    predictions[predictions["particle_id"] != first].to_csv(partial, index=False)
    args = ["flux", "tables", str(tiny_campaign), "--out", str(tmp_path / "p")]
    assert main([*args, "--predictions", str(partial)]) == 0
    err = capsys.readouterr().err
    assert f"of sample {sample}'s particles: its flux counts only those" in err
    full = tmp_path / "full.csv"
    predictions.to_csv(full, index=False)
    assert main([*args[:-1], str(tmp_path / "full"), "--predictions", str(full)]) == 0
    assert "counts only those" not in capsys.readouterr().err
