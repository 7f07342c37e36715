"""Flux tables on integer codes against a per-row Python reference, on odd inputs.

The tables are computed from factorized codes, per-particle carbon and bincounts (with a
shortcut when prediction ids repeat the particle ids in order); this reference loops
over prediction rows with dicts keyed by strings, as the definition reads.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from plankflux.data.classes import TRAP_CLASSES
from plankflux.flux import FLUX_BY_SAMPLE_COLUMNS, TABLE1, flux_by_sample, particle_carbon_mg
from plankflux.flux.predictions import _aligned_positions


def odd_campaign(n: int = 400, seed: int = 0):
    """Numeric-looking particle and sample ids, a sample without particles, a domain no
    prediction covers, unlabelled particles, and per-particle imaged areas for some."""
    rng = np.random.default_rng(seed)
    pid = np.array([str(i) for i in range(n)], dtype=object)
    pid[::7] = [f"0{p}" for p in pid[::7]]  # "00", "07", ... next to "0", "7"
    particles = pd.DataFrame(
        {
            "particle_id": pid,
            "domain": np.where(np.arange(n) % 10 == 9, "GB", "RR"),
            "sample_id": np.array(["1", "01", "2.0", "10"], dtype=object)[rng.integers(0, 4, n)],
            "esd_um": rng.lognormal(np.log(150), 0.5, n),
            "label": np.where(rng.random(n) < 0.5, "aggregate", ""),
            "imaged_area_m2": np.where(rng.random(n) < 0.3, rng.uniform(1e-4, 3e-4, n), np.nan),
        }
    )
    particles.loc[particles["domain"] == "GB", "sample_id"] = "G1"
    samples = pd.DataFrame(
        {
            "sample_id": ["1", "01", "2.0", "10", "EMPTY", "G1"],
            "domain": ["RR", "RR", "RR", "RR", "RR", "GB"],
            "depth_m": [100.0, 200.0, 300.0, 100.0, 50.0, 80.0],
            "imaged_area_m2": [2e-4, 1e-4, 3e-4, 2e-4, np.nan, 1e-4],
            "deployment_days": [2.0, 0.5, 1.0, 3.0, np.nan, 1.0],
        }
    )
    return particles, samples


def predictions_for(particles, members_miss: bool, seed: int = 1) -> pd.DataFrame:
    """Two treatments × 3 members; with ``members_miss`` each member predicts a random 70 %
    of the RR particles (rows then shuffled), else every particle in campaign order."""
    rng = np.random.default_rng(seed)
    names = np.asarray([*TRAP_CLASSES, "phytoplankton"], dtype=object)
    rr = particles.loc[particles["domain"] == "RR", "particle_id"].to_numpy()
    parts = []
    for treatment in ("B", "A"):  # first seen first, not alphabetical
        for member in (2, 0, 1):
            ids = rr[rng.random(len(rr)) < 0.7] if members_miss else particles["particle_id"]
            labels = names[rng.integers(0, len(names), len(ids))]
            parts.append(
                pd.DataFrame(
                    {"particle_id": ids, "treatment": treatment, "member": member, "label": labels}
                )
            )
    preds = pd.concat(parts, ignore_index=True)
    return preds.sample(frac=1.0, random_state=seed) if members_miss else preds


def reference(particles: pd.DataFrame, samples: pd.DataFrame, preds: pd.DataFrame) -> pd.DataFrame:
    """flux_by_sample by the definition, one prediction row at a time."""
    part = {r.particle_id: r for r in particles.itertuples()}
    smp = {r.sample_id: r for r in samples.itertuples()}
    domains = {part[p].domain for p in preds["particle_id"]}
    reported = [s for s in samples["sample_id"] if smp[s].domain in domains]
    groups = [g for g, *_ in TABLE1.rows]
    sums: dict = {}
    rows_in: dict = {}
    for p, t, m, label in preds[["particle_id", "treatment", "member", "label"]].itertuples(
        index=False
    ):
        particle = part[p]
        rows_in[(t, m, particle.sample_id)] = rows_in.get((t, m, particle.sample_id), 0) + 1
        carbon = float(particle_carbon_mg([label], [particle.esd_um])[0])
        if carbon == 0.0:
            continue
        group = next(g for g in groups if (label == g or _group_of(label) == g))
        own = particle.imaged_area_m2
        if not math.isnan(own) and own > 0:  # carbon over the particle's own area
            carbon *= smp[particle.sample_id].imaged_area_m2 / own
        for g in (group, "total"):
            key = (t, m, particle.sample_id, g)
            mg, mg2, count = sums.get(key, (0.0, 0.0, 0))
            sums[key] = (mg + carbon, mg2 + carbon**2, count + 1)
    treatments = list(dict.fromkeys(preds["treatment"]))
    records = []
    for t in treatments:
        for m in sorted(set(preds.loc[preds["treatment"] == t, "member"])):
            for s in reported:
                n_in = int((particles["sample_id"] == s).sum())
                coverage = rows_in.get((t, m, s), 0) / n_in if n_in else 1.0
                for g in [*groups, "total"]:
                    mg, mg2, count = sums.get((t, m, s, g), (0.0, 0.0, 0))
                    denom = 12.011 * smp[s].imaged_area_m2 * smp[s].deployment_days
                    records.append(
                        (s, smp[s].domain, smp[s].depth_m, t, m, g,
                         mg / denom if mg else 0.0, count,
                         math.sqrt(mg2) / denom if mg2 else 0.0, coverage)
                    )  # fmt: skip
    return pd.DataFrame.from_records(records, columns=list(FLUX_BY_SAMPLE_COLUMNS))


def _group_of(label: str) -> str | None:
    from plankflux.data.classes import FLUX_GROUP

    return FLUX_GROUP.get(label)


@pytest.mark.parametrize("members_miss", [False, True], ids=["aligned", "shuffled-subsets"])
def test_codes_match_a_per_row_reference(members_miss):
    particles, samples = odd_campaign()
    preds = predictions_for(particles, members_miss)
    ids = pd.Index(particles["particle_id"].astype(str))
    assert (_aligned_positions(preds["particle_id"], ids) is None) == members_miss
    got = flux_by_sample((particles, samples), preds)
    want = reference(particles, samples, preds)
    assert list(got.columns) == list(FLUX_BY_SAMPLE_COLUMNS)
    exact = ["sample_id", "domain", "treatment", "member", "class_group", "n_particles"]
    pd.testing.assert_frame_equal(
        got[exact].astype(object), want[exact].astype(object), check_dtype=False
    )
    assert got["member"].dtype == np.int64 and got["n_particles"].dtype == np.int64
    for column in ("depth_m", "flux_mmol_m2_d", "counting_sd_mmol_m2_d", "coverage"):
        np.testing.assert_allclose(got[column], want[column], rtol=1e-12, atol=0, err_msg=column)
    covered = {"1", "01", "2.0", "10", "EMPTY"} | (set() if members_miss else {"G1"})
    assert set(got["sample_id"]) == covered  # the domains the predictions cover
    empty = got[got["sample_id"] == "EMPTY"]
    assert (empty["flux_mmol_m2_d"] == 0).all() and (empty["coverage"] == 1.0).all()


def test_categorical_and_object_columns_give_the_same_table():
    particles, samples = odd_campaign()
    preds = predictions_for(particles, members_miss=False)
    base = flux_by_sample((particles, samples), preds)
    as_categories = preds.astype({"particle_id": "category", "label": "category"})
    as_objects = preds.astype({"particle_id": object, "treatment": object, "label": object})
    for other in (as_categories, as_objects):
        pd.testing.assert_frame_equal(flux_by_sample((particles, samples), other), base)


def test_a_repeated_particle_id_is_refused_on_the_aligned_path_too():
    particles, samples = odd_campaign()
    rr = particles[particles["domain"] == "RR"].reset_index(drop=True)
    rr.loc[len(rr) - 1, "particle_id"] = rr.loc[0, "particle_id"]  # "00" twice
    preds = predictions_for(rr, members_miss=False)  # ids repeat rr's, in order
    with pytest.raises(pd.errors.InvalidIndexError):  # as before the aligned shortcut
        flux_by_sample((rr, samples), preds)
