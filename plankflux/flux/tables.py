"""POC flux per trap sample, class group, treatment and ensemble member (docs/paper_a.md).

flux (mmol C m⁻² d⁻¹) = Σ particle carbon (mg) / 12.011 / (imaged_area_m2 · deployment_days)

where a particle's own ``imaged_area_m2`` (the area imaged at its magnification)
replaces the sample's for that particle's carbon.

per ``class_group`` (the allometry table's groups, in its order) and ``total``.

Uncertainty. Three numbers are reported for every sample, class group and treatment:

* **Member spread** ``flux_sd_members``: sd (ddof=1) of the flux over ensemble
  members, i.e. classifier uncertainty. Empty with a single member (undefined).
* **Counting uncertainty** ``counting_sd_mmol_m2_d``: the imaged particles are a
  Poisson sample of what sank onto the gel. If particles of a group arrive as a
  Poisson process and each carries an independent carbon content C, the carbon
  total is compound Poisson with variance λ·E[C²], estimated without bias by
  Σ C_i² over the particles seen. So sd = √(Σ C_i²) / 12.011 / (area · days), per
  member; the total's uses all flux-carrying particles. The summary reports the
  root-mean-square over members (every member counts the same particles, so
  averaging members does not shrink it). A group with no particles gets 0, though
  an empty count is still consistent with up to 3 particles (95 %).
* **Combined** ``combined_sd_mmol_m2_d`` = √(flux_sd_members² + counting_sd²), the
  two being independent sources (which particles sank vs. how they are labelled);
  with one member only the counting part. ``ci95_low/high`` = mean ± 1.96 ·
  combined, the lower end clipped at 0 (a flux is not negative).

Allometric error (A, B) and bulk-flux error are not included.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from plankflux.flux.allometry import (
    Allometry,
    carbon_by_group,
    carbon_for_rows,
    group_index,
    load_allometry,
)
from plankflux.flux.predictions import (
    HUMAN,
    as_frames,
    code_predictions,
    combo_codes,
    human_label_column,
    human_predictions,
    row_slices,
    with_fixed_labels,
)
from plankflux.layout import FLUX_BY_SAMPLE_FILE, FLUX_SUMMARY_FILE
from plankflux.utils.atomic import write_csv_atomic

MG_PER_MMOL_C = 12.011
TOTAL = "total"
Z95 = 1.959964
FLUX_BY_SAMPLE_COLUMNS = (
    "sample_id", "domain", "depth_m", "treatment", "member", "class_group",
    "flux_mmol_m2_d", "n_particles", "counting_sd_mmol_m2_d", "coverage",
)  # fmt: skip
FLUX_SUMMARY_COLUMNS = (
    "sample_id", "domain", "depth_m", "treatment", "class_group", "n_members",
    "flux_mean_mmol_m2_d", "flux_sd_members", "n_particles_mean", "counting_sd_mmol_m2_d",
    "combined_sd_mmol_m2_d", "ci95_low", "ci95_high", "coverage",
    "human_flux_mmol_m2_d", "human_coverage", "measured_flux_mmol_m2_d", "measured_flux_sd",
)  # fmt: skip
#: A human reference is compared only on samples whose particles it annotates in full.
FULL_COVERAGE = 1.0 - 1e-9


def _sample_denominator(samples: pd.DataFrame, needed: np.ndarray) -> np.ndarray:
    """area · days per sample (S,); error naming each sample with flux but no valid metadata."""
    problems = []
    denom = np.ones(len(samples))
    for column in ("imaged_area_m2", "deployment_days"):
        if column not in samples.columns:
            raise ValueError(f"samples table lacks column {column!r}")
        value = pd.to_numeric(samples[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = needed & ~(np.isfinite(value) & (value > 0))
        for i in np.flatnonzero(bad):
            shown = samples[column].iat[i]
            problems.append(f"sample {samples['sample_id'].iat[i]!r}: {column} = {shown!r}")
        denom *= np.where(np.isfinite(value) & (value > 0), value, np.nan)
    if problems:
        raise ValueError(
            "flux-carrying particles in sample(s) whose imaged_area_m2/deployment_days "
            "is missing, zero or negative (must be > 0): " + "; ".join(problems)
        )
    return denom


def _area_ratio(
    particles: pd.DataFrame, report: pd.DataFrame, particle_sample: np.ndarray
) -> np.ndarray | None:
    """Per particle (N,): its sample's imaged area over its own (1 where it has none), so
    that carbon × ratio / sample area = carbon / particle area; ``None`` without an
    ``imaged_area_m2`` column in ``particles`` (every ratio 1)."""
    if "imaged_area_m2" not in particles.columns:
        return None
    own = pd.to_numeric(particles["imaged_area_m2"], errors="coerce").to_numpy(np.float64)
    sample = pd.to_numeric(report["imaged_area_m2"], errors="coerce").to_numpy(np.float64)
    of_row = np.where(particle_sample >= 0, sample[np.maximum(particle_sample, 0)], np.nan)
    usable = np.isfinite(own) & (own > 0) & np.isfinite(of_row)
    return np.where(usable, of_row / np.where(usable, own, 1.0), 1.0)


def flux_by_sample(
    campaign,
    predictions: pd.DataFrame | None = None,
    allometry: Allometry | str | os.PathLike | Mapping | None = None,
    fixed_labels: Mapping[str, str] | pd.DataFrame | None = None,
    sample_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Long flux table, columns :data:`FLUX_BY_SAMPLE_COLUMNS`.

    ``campaign``: a Campaign, folder or ``(particles, samples)``. ``predictions``:
    the table of :mod:`plankflux.flux.predictions` (default: the human labels).
    Reported samples: ``sample_ids``, or every sample of a domain that the
    predictions cover; one row per treatment × member × sample × class group (groups
    then ``total``), 0 where no particle falls, never dropped. ``n_particles`` counts
    the group's particles; ``coverage`` is the fraction of the sample's particles that
    got a label from this treatment/member (1 for an empty sample).

    Computed on integer codes: every string column is factorized once (its checks and
    lookups run on the distinct values), carbon is computed per particle and group, and
    the sums are ``bincount`` s over a (treatment × member, sample, group) code.
    """
    particles, samples = as_frames(campaign)
    table = load_allometry(allometry)
    preds = human_predictions(particles) if predictions is None else predictions
    preds = with_fixed_labels(preds, fixed_labels)
    ids = pd.Index(particles["particle_id"].astype(str))
    if len(preds) == 0:
        raise ValueError("no predictions (and no labelled particles): nothing to compute flux from")
    coded = code_predictions(preds, ids)
    pos = coded.position  # (R,) each prediction row's particle
    used = np.zeros(len(particles), dtype=bool)  # (N,) particles that some row predicts
    used[pos] = True

    if sample_ids is None:
        d_code, d_names = pd.factorize(particles["domain"])
        # np.unique of the codes as before (a missing domain, code -1, names the last one)
        present = np.bincount(d_code[used] + 1, minlength=len(d_names) + 1) > 0
        domains = set(d_names[np.flatnonzero(present) - 1])
        sample_ids = samples.loc[samples["domain"].isin(domains), "sample_id"].tolist()
    report = samples.set_index(samples["sample_id"].astype(str)).reindex(list(sample_ids))
    absent = [s for s, d in zip(sample_ids, report["domain"], strict=True) if pd.isna(d)]
    if absent:
        raise ValueError(f"sample_id(s) not in the samples table: {absent}")
    sample_index = pd.Index(report.index)
    # The particles' sample ids hold few distinct values: look those up, not 1e6 strings.
    p_code, p_samples = pd.factorize(particles["sample_id"].astype(str), use_na_sentinel=False)
    known = pd.Series(p_samples).isin(samples["sample_id"].astype(str)).to_numpy()
    orphan = ~known[p_code] & used
    if orphan.any():
        missing = sorted(set(particles["sample_id"].to_numpy()[orphan]))
        raise ValueError(f"particles belong to sample(s) missing from the samples table: {missing}")
    particle_sample = sample_index.get_indexer(p_samples)[p_code]  # (N,) -1: not reported

    group_of_label = group_index(coded.labels, table)  # (L,) allometry row, -1: no carbon
    esd = particles["esd_um"].to_numpy(dtype=np.float64)
    bad_esd = ~(np.isfinite(esd) & (esd > 0))
    if (bad_esd & used).any():  # raises, naming the flux-carrying rows with a bad ESD
        group = group_of_label[coded.label_code]
        carbon_for_rows(group, esd[pos], table, ids=preds["particle_id"])
    ratio = _area_ratio(particles, report, particle_sample)

    # Treatments as strings (two values equal as strings merge), codes by first appearance.
    t_remap, treatments = pd.factorize(pd.Series(coded.treatments).astype(str))
    n_m, combo_code, combo = coded.n_members, coded.combo_code, coded.combos
    if len(treatments) < len(coded.treatments):  # some merged: recode the combinations
        t_code = t_remap[coded.treatment_code]
        combo_code, combo = combo_codes(t_code, len(treatments), coded.member, n_m)
    n_k, n_s, n_g = len(combo), len(sample_index), len(table.groups)
    # One bin per (combo, sample, group + 1): group -1 (zero carbon) lands in group slot
    # 0, rows of unreported samples in one extra bin (``size``). Each bin adds its rows
    # in row order, as the per-group sums did, so the float sums are unchanged.
    size = n_k * n_s * (n_g + 1)
    sample_bin = np.where(particle_sample >= 0, particle_sample * (n_g + 1), size)  # (N,)
    bins = np.empty(len(pos), dtype=np.int64)  # (R,)
    carbon = np.empty(len(pos))  # (R,) mg C per prediction row
    # Carbon of each particle for each group some row gives it, once (not once per
    # member): (G + 1, N), row 0 zero carbon. Values as carbon_for_rows' per row.
    given = np.unique(group_of_label[group_of_label >= 0])
    per_particle = carbon_by_group(esd, table, given)
    if ratio is not None:
        per_particle[given + 1] *= ratio
    slot_of_label = group_of_label + 1  # (L,) the label's row in per_particle
    flat_of_label = slot_of_label * len(particles)  # (L,) where that row starts
    per_particle = per_particle.reshape(-1)
    for rows in row_slices(len(pos)):  # slice-sized temporaries (see ROW_CHUNK)
        p, label = pos[rows], coded.label_code[rows]
        np.take(per_particle, flat_of_label[label] + p, out=carbon[rows])
        b = np.multiply(combo_code[rows], n_s * (n_g + 1), dtype=np.int64)
        b += sample_bin[p]
        b += slot_of_label[label]
        np.minimum(b, size, out=bins[rows])  # an unreported sample's rows: bin ``size``
    count_all = np.bincount(bins, minlength=size + 1)[:size].reshape(n_k, n_s, n_g + 1)
    mg = np.bincount(bins, carbon, size + 1)[:size].reshape(n_k, n_s, n_g + 1)[..., 1:]
    np.square(carbon, out=carbon)
    mg2 = np.bincount(bins, carbon, size + 1)[:size].reshape(n_k, n_s, n_g + 1)[..., 1:]
    per_sample_rows = count_all.sum(-1)
    count = count_all[..., 1:]
    mg, mg2, count = (
        np.concatenate([x, x.sum(-1, keepdims=True)], -1)
        for x in (np.ascontiguousarray(y) for y in (mg, mg2, count))
    )

    denom = _sample_denominator(report, (mg > 0).any(axis=(0, 2)))
    scale = (1.0 / MG_PER_MMOL_C / denom)[None, :, None]
    with np.errstate(invalid="ignore"):  # NaN scale only meets zero carbon: set to 0 below
        flux = np.where(mg > 0, mg * scale, 0.0)
        sd = np.where(mg2 > 0, np.sqrt(mg2) * scale, 0.0)
    in_sample = np.bincount(particle_sample[particle_sample >= 0], minlength=n_s)
    coverage = np.where(in_sample > 0, per_sample_rows / np.maximum(in_sample, 1), 1.0)

    groups = [*table.groups, TOTAL]
    k, s, g = (
        a.ravel()
        for a in np.meshgrid(np.arange(n_k), np.arange(n_s), np.arange(len(groups)), indexing="ij")
    )
    out = pd.DataFrame(
        {
            "sample_id": sample_index.to_numpy()[s],
            "domain": report["domain"].to_numpy()[s],
            "depth_m": pd.to_numeric(report["depth_m"]).to_numpy(dtype=np.float64)[s],
            "treatment": np.asarray(treatments, dtype=object)[combo // n_m][k],
            "member": (combo % n_m)[k],
            "class_group": np.asarray(groups, dtype=object)[g],
            "flux_mmol_m2_d": flux.ravel(),
            "n_particles": count.ravel().astype(np.int64),
            "counting_sd_mmol_m2_d": sd.ravel(),
            "coverage": coverage[k, s],
        }
    )
    return out[list(FLUX_BY_SAMPLE_COLUMNS)]


def summarise_flux(by_sample: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """Per sample × treatment × class group over members: columns :data:`FLUX_SUMMARY_COLUMNS`.

    ``human_flux_mmol_m2_d`` is the ``human`` treatment's flux (mean over its members)
    where the table has one and it annotates every particle of the sample;
    ``human_coverage`` is the fraction it annotates (a partial human flux is reported on
    the ``human`` rows with its coverage, never set beside a model's).
    ``measured_flux_*`` (bulk POC) sit on ``total`` rows only.
    """
    keys = ["sample_id", "domain", "depth_m", "treatment", "class_group"]
    squared = by_sample.assign(counting_var=by_sample["counting_sd_mmol_m2_d"] ** 2)
    grouped = squared.groupby(keys, sort=False, dropna=False)
    out = grouped.agg(
        n_members=("member", "nunique"),
        flux_mean_mmol_m2_d=("flux_mmol_m2_d", "mean"),
        flux_sd_members=("flux_mmol_m2_d", "std"),  # ddof=1; NaN for one member
        n_particles_mean=("n_particles", "mean"),
        counting_var=("counting_var", "mean"),
        coverage=("coverage", "mean"),
    ).reset_index()
    out["counting_sd_mmol_m2_d"] = np.sqrt(out.pop("counting_var"))
    spread = out["flux_sd_members"].fillna(0.0)  # one member: no classifier spread known
    out["combined_sd_mmol_m2_d"] = np.sqrt(spread**2 + out["counting_sd_mmol_m2_d"] ** 2)
    half = Z95 * out["combined_sd_mmol_m2_d"]
    out["ci95_low"] = (out["flux_mean_mmol_m2_d"] - half).clip(lower=0.0)
    out["ci95_high"] = out["flux_mean_mmol_m2_d"] + half

    human = out[out["treatment"] == HUMAN].set_index(["sample_id", "class_group"])
    keys_index = pd.MultiIndex.from_frame(out[["sample_id", "class_group"]])
    coverage = keys_index.map(human["coverage"].to_dict().get).astype(np.float64)
    flux = keys_index.map(human["flux_mean_mmol_m2_d"].to_dict().get).astype(np.float64)
    out["human_coverage"] = coverage
    out["human_flux_mmol_m2_d"] = np.where(coverage >= FULL_COVERAGE, flux, np.nan)
    measured = samples.set_index(samples["sample_id"].astype(str))
    for column in ("measured_flux_mmol_m2_d", "measured_flux_sd"):
        values = measured[column] if column in measured.columns else pd.Series(dtype=float)
        mapped = out["sample_id"].map(pd.to_numeric(values, errors="coerce"))
        out[column] = mapped.where(out["class_group"] == TOTAL).astype(np.float64)
    return out[list(FLUX_SUMMARY_COLUMNS)]


def flux_tables(
    campaign,
    predictions: pd.DataFrame | None = None,
    allometry: Allometry | str | os.PathLike | Mapping | None = None,
    fixed_labels: Mapping[str, str] | pd.DataFrame | None = None,
    include_human: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(flux_by_sample, flux_summary)``; without predictions, human labels only.

    With ``include_human`` a ``human`` treatment (the original annotation of the same
    samples, :func:`~plankflux.flux.predictions.human_predictions`) is added when the
    predictions have none and any particle is annotated; its ``coverage`` says whether
    it annotates every particle of a sample.
    """
    particles, samples = as_frames(campaign)
    if predictions is None:
        by_sample = flux_by_sample((particles, samples), None, allometry)
        return by_sample, summarise_flux(by_sample, samples)
    by_sample = flux_by_sample((particles, samples), predictions, allometry, fixed_labels)
    # by_sample's treatments are the predictions' as strings (fewer rows to compare)
    if include_human and not (by_sample["treatment"] == HUMAN).any():
        # The human reference of the same samples, so every model row has its reference.
        column = human_label_column(particles)
        annotated = (particles[column].fillna("").astype(str) != "").to_numpy()
        reported = pd.unique(by_sample["sample_id"])
        if annotated.any():  # else no human rows: skip selecting the particles
            own = particles["sample_id"].astype(str).isin(reported)
            human = human_predictions(particles[own], column=column)
        else:
            human = ()
        if len(human):
            by_human = flux_by_sample((particles, samples), human, allometry, None, list(reported))
            by_sample = pd.concat([by_sample, by_human], ignore_index=True)
    return by_sample, summarise_flux(by_sample, samples)


def write_flux_tables(
    out_dir: str | os.PathLike, by_sample: pd.DataFrame, summary: pd.DataFrame
) -> tuple[Path, Path]:
    """Write ``flux_by_sample.csv`` and ``flux_summary.csv`` atomically into ``out_dir``."""
    out_dir = Path(out_dir)
    paths = out_dir / FLUX_BY_SAMPLE_FILE, out_dir / FLUX_SUMMARY_FILE
    write_csv_atomic(by_sample[list(FLUX_BY_SAMPLE_COLUMNS)], paths[0])
    write_csv_atomic(summary[list(FLUX_SUMMARY_COLUMNS)], paths[1])
    return paths
