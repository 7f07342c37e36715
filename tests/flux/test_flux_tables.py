"""Flux tables: units by hand, bad input, fixed labels, summaries and file formats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plankflux.data.campaign import load_campaign
from plankflux.flux import (
    FLUX_BY_SAMPLE_COLUMNS,
    FLUX_SUMMARY_COLUMNS,
    flux_by_sample,
    flux_tables,
    human_predictions,
    predictions_from_scores,
    read_predictions,
    write_flux_tables,
)

# Hand values (bc -l): mini_pellet ESD 50 carries 7.3958327053259716e-06 mg C and
# salp_pellet ESD 400 carries 3.1667253948185116e-04 mg C (see test_allometry.py).
# A: 2 mini pellets over 2e-4 m² × 2 d -> 2·C/12.011/4e-4; B: 1 salp over 1e-4 m² × 0.5 d.
FLUX_A = 0.0030787747503646539
COUNTING_SD_A = 0.0021770225037287668  # √2·C/12.011/4e-4
FLUX_B = 0.52730420361643686


def two_samples() -> tuple[pd.DataFrame, pd.DataFrame]:
    particles = pd.DataFrame(
        {
            "particle_id": ["a1", "a2", "a3", "b1"],
            "domain": "RR",
            "sample_id": ["A", "A", "A", "B"],
            "esd_um": [50.0, 50.0, np.nan, 400.0],
            "label": ["mini_pellet", "mini_pellet", "swimmer", "salp_pellet"],
            "label_original": "",
        }
    )
    samples = pd.DataFrame(
        {
            "sample_id": ["A", "B", "EMPTY"],
            "domain": "RR",
            "depth_m": [100.0, 200.0, 300.0],
            "imaged_area_m2": [2e-4, 1e-4, np.nan],  # EMPTY has no particles: area not needed
            "deployment_days": [2.0, 0.5, np.nan],
            "measured_flux_mmol_m2_d": [0.004, 0.5, np.nan],
        }
    )
    return particles, samples


def row(frame, sample, group, **match):
    sel = (frame["sample_id"] == sample) & (frame["class_group"] == group)
    for key, value in match.items():
        sel &= frame[key] == value
    assert sel.sum() == 1, (sample, group, match)
    return frame[sel].iloc[0]


def test_units_on_a_two_sample_case_by_hand():
    by_sample = flux_by_sample(two_samples())
    assert list(by_sample.columns) == list(FLUX_BY_SAMPLE_COLUMNS)
    a = row(by_sample, "A", "mini_pellet")
    assert a["flux_mmol_m2_d"] == pytest.approx(FLUX_A, rel=1e-12)
    assert a["counting_sd_mmol_m2_d"] == pytest.approx(COUNTING_SD_A, rel=1e-12)
    assert a["n_particles"] == 2
    assert row(by_sample, "A", "total")["flux_mmol_m2_d"] == pytest.approx(FLUX_A, rel=1e-12)
    assert row(by_sample, "B", "salp_pellet")["flux_mmol_m2_d"] == pytest.approx(FLUX_B, rel=1e-12)
    assert row(by_sample, "B", "aggregate")["flux_mmol_m2_d"] == 0.0
    # The empty sample is kept: one row per group, all zero, full coverage.
    empty = by_sample[by_sample["sample_id"] == "EMPTY"]
    assert len(empty) == 8 and (empty["flux_mmol_m2_d"] == 0).all()
    assert (empty["coverage"] == 1.0).all() and not empty.isna().any().any()
    assert set(by_sample["treatment"]) == {"human"} and set(by_sample["member"]) == {0}


def test_summary_over_members_and_references():
    particles, samples = two_samples()
    preds = pd.DataFrame(
        {
            "particle_id": ["a1", "a2", "b1", "a1", "a2", "b1"],
            "treatment": "OOD",
            "member": [0, 0, 0, 1, 1, 1],
            # member 1 calls one mini pellet noise: flux A halves
            "label": ["mini_pellet", "mini_pellet", "salp_pellet"] * 2,
        }
    )
    preds.loc[3, "label"] = "noise"
    by_sample, summary = flux_tables((particles, samples), preds)
    assert list(summary.columns) == list(FLUX_SUMMARY_COLUMNS)
    assert set(summary["treatment"]) == {"OOD", "human"}
    s = row(summary, "A", "total", treatment="OOD")
    assert s["n_members"] == 2
    assert s["flux_mean_mmol_m2_d"] == pytest.approx(0.75 * FLUX_A, rel=1e-12)
    sd = np.std([FLUX_A, FLUX_A / 2], ddof=1)
    assert s["flux_sd_members"] == pytest.approx(sd, rel=1e-12)
    one = FLUX_A / 2  # counting sd of one particle = its own flux
    counting = np.sqrt((COUNTING_SD_A**2 + one**2) / 2)
    assert s["counting_sd_mmol_m2_d"] == pytest.approx(counting, rel=1e-12)
    combined = np.hypot(sd, counting)
    assert s["combined_sd_mmol_m2_d"] == pytest.approx(combined, rel=1e-12)
    assert s["ci95_high"] == pytest.approx(0.75 * FLUX_A + 1.959964 * combined, rel=1e-9)
    assert s["ci95_low"] == 0.0  # clipped: a flux is not negative
    assert s["human_flux_mmol_m2_d"] == pytest.approx(FLUX_A, rel=1e-12)
    assert s["measured_flux_mmol_m2_d"] == 0.004
    assert np.isnan(row(summary, "A", "mini_pellet", treatment="OOD")["measured_flux_mmol_m2_d"])
    human = row(summary, "B", "total", treatment="human")
    assert np.isnan(human["flux_sd_members"])  # one member: undefined, not 0
    assert human["combined_sd_mmol_m2_d"] == pytest.approx(FLUX_B, rel=1e-12)  # counting only
    assert row(by_sample, "A", "total", treatment="OOD", member=1)["coverage"] == pytest.approx(
        2 / 3
    )


def test_fixed_labels_override_and_fill_in():
    particles, samples = two_samples()
    preds = pd.DataFrame(
        {"particle_id": ["a1", "b1"], "treatment": "T", "member": 0, "label": ["noise", "noise"]}
    )
    by_sample = flux_by_sample(
        (particles, samples), preds, fixed_labels={"a1": "mini_pellet", "a2": "mini_pellet"}
    )
    assert row(by_sample, "A", "mini_pellet")["flux_mmol_m2_d"] == pytest.approx(FLUX_A)
    assert row(by_sample, "B", "total")["flux_mmol_m2_d"] == 0.0
    per_treatment = pd.DataFrame({"particle_id": ["b1"], "label": ["salp_pellet"],
                                  "treatment": ["nope"]})  # fmt: skip
    with pytest.raises(ValueError, match="treatment.*nope"):
        flux_by_sample((particles, samples), preds, fixed_labels=per_treatment)


@pytest.mark.parametrize(
    ("column", "value"),
    [("imaged_area_m2", 0.0), ("imaged_area_m2", np.nan), ("deployment_days", -1.0)],
)
def test_bad_sample_metadata_names_sample_and_column(column, value):
    particles, samples = two_samples()
    samples.loc[samples["sample_id"] == "B", column] = value
    with pytest.raises(ValueError, match=f"sample 'B': {column}"):
        flux_by_sample((particles, samples))


def test_bad_predictions_are_refused_with_names():
    particles, samples = two_samples()
    missing_esd = particles.assign(esd_um=[50.0, np.nan, np.nan, 400.0])
    with pytest.raises(ValueError, match=r"1 flux-carrying particle.*particle_id\(s\): a2"):
        flux_by_sample((missing_esd, samples))
    cases = {
        "unknown class": {"label": ["aggregate", "fish"]},
        "not in the campaign: 'zz'": {"particle_id": ["a1", "zz"]},
        "duplicated": {"particle_id": ["a1", "a1"]},
        "member that is not an integer": {"member": [0, -1]},
        "empty label": {"label": ["aggregate", ""]},
    }
    for message, change in cases.items():
        preds = pd.DataFrame(
            {"particle_id": ["a1", "a2"], "treatment": "T", "member": 0, "label": "aggregate"}
        ).assign(**change)
        with pytest.raises(ValueError, match=message):
            flux_by_sample((particles, samples), preds)
    with pytest.raises(ValueError, match="lack column"):
        flux_by_sample((particles, samples), pd.DataFrame({"particle_id": ["a1"]}))
    orphan = particles.assign(sample_id=["A", "A", "A", "GONE"])
    with pytest.raises(ValueError, match="GONE"):
        flux_by_sample((orphan, samples))


def test_scores_and_files_round_trip(tmp_path):
    scores = pd.DataFrame(
        {"particle_id": ["a1", "b1"], "member": [0, 0], "aggregate": [0.9, 0.2],
         "salp_pellet": [0.1, 0.8]}
    )  # fmt: skip
    preds = predictions_from_scores(scores, "OOD")
    assert list(preds["label"]) == ["aggregate", "salp_pellet"]
    scores.to_parquet(tmp_path / "scores.parquet")
    with pytest.raises(ValueError, match="treatment"):
        read_predictions(tmp_path / "scores.parquet")
    pd.testing.assert_frame_equal(read_predictions(tmp_path / "scores.parquet", "OOD"), preds)
    preds.to_csv(tmp_path / "p.csv", index=False)
    pd.testing.assert_frame_equal(read_predictions(tmp_path / "p.csv"), preds, check_dtype=False)

    by_sample, summary = flux_tables(two_samples())
    paths = write_flux_tables(tmp_path / "out", by_sample, summary)
    header = [p.read_text().splitlines()[0].split(",") for p in paths]
    assert header == [list(FLUX_BY_SAMPLE_COLUMNS), list(FLUX_SUMMARY_COLUMNS)]


def test_tiny_campaign_human_flux(tiny_campaign):
    campaign = load_campaign(tiny_campaign, check_images="none")
    by_sample, summary = flux_tables(campaign)
    assert set(by_sample["sample_id"]) == set(campaign.samples["sample_id"])
    assert len(by_sample) == len(campaign.samples) * 8
    wide = by_sample.pivot(index="sample_id", columns="class_group", values="flux_mmol_m2_d")
    np.testing.assert_allclose(wide.drop(columns="total").sum(axis=1), wide["total"], rtol=1e-12)
    assert (wide["total"] > 0).all()
    # The human flux is the original annotation of every particle (Paper A, Figs. 5-7).
    assert (by_sample["coverage"] == 1.0).all()
    assert len(human_predictions(campaign.particles)) == len(campaign.particles)
    revised = human_predictions(campaign.particles, column="label")
    assert len(revised) == int((campaign.particles["label"] != "").sum())
    total = summary[summary["class_group"] == "total"]
    assert total["measured_flux_mmol_m2_d"].notna().all()


def two_aggregates(label_original: tuple[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two aggregates of ESD 300 µm in one sample (area 1e-4 m², 1 day); one relabelled."""
    particles = pd.DataFrame(
        {
            "particle_id": ["x1", "x2"],
            "domain": "RR",
            "sample_id": "S",
            "esd_um": 300.0,
            "label": ["aggregate", ""],
            "label_original": list(label_original),
        }
    )
    samples = pd.DataFrame(
        {"sample_id": ["S"], "domain": "RR", "depth_m": [100.0], "imaged_area_m2": [1e-4],
         "deployment_days": [1.0], "measured_flux_mmol_m2_d": [0.1]}
    )  # fmt: skip
    return particles, samples


def test_human_flux_is_the_original_annotation_of_every_particle():
    """Paper A's way: 2 × 1.13e-10·(4/3·π·150³)^0.81 / 12.011 / 1e-4 = 0.11650 (bc -l);
    the revised label of the one relabelled particle alone gave half of it (0.05825)."""
    one = 0.058249581510308616  # one aggregate of ESD 300 over 1e-4 m² · 1 d
    by_sample = flux_by_sample(two_aggregates(("aggregate", "dense_detritus")))
    total = row(by_sample, "S", "total", treatment="human")
    assert total["flux_mmol_m2_d"] == pytest.approx(2 * one, rel=1e-12)
    assert round(total["flux_mmol_m2_d"], 5) == 0.11650
    assert total["coverage"] == 1.0
    relabelled = human_predictions(two_aggregates(("", ""))[0], column="label")
    revised = flux_by_sample(two_aggregates(("aggregate", "dense_detritus")), relabelled)
    assert round(row(revised, "S", "total")["flux_mmol_m2_d"], 5) == 0.05825
    assert row(revised, "S", "total")["coverage"] == 0.5


def test_a_partial_original_annotation_is_reported_with_its_coverage_not_compared():
    particles, samples = two_aggregates(("aggregate", ""))
    preds = pd.DataFrame({"particle_id": ["x1", "x2"], "treatment": "OOD", "member": 0,
                          "label": "aggregate"})  # fmt: skip
    _, summary = flux_tables((particles, samples), preds)
    human = row(summary, "S", "total", treatment="human")
    assert human["coverage"] == 0.5 and human["flux_mean_mmol_m2_d"] > 0
    model = row(summary, "S", "total", treatment="OOD")
    assert model["human_coverage"] == 0.5 and np.isnan(model["human_flux_mmol_m2_d"])
    _, full = flux_tables(two_aggregates(("aggregate", "aggregate")), preds)
    model = row(full, "S", "total", treatment="OOD")
    assert model["human_coverage"] == 1.0
    assert model["human_flux_mmol_m2_d"] == pytest.approx(model["flux_mean_mmol_m2_d"])
