"""Fit the allometric A and B to measured bulk POC fluxes, as Paper A did (docs/paper_a.md).

Model total flux of sample s (mmol C m⁻² d⁻¹), from labelled particles:

    F_s(A, B) = [A · (Σ_aggregate V^B + Σ_pellets V^B_p) + Σ_other C] / 12.011 / (area · days)

with one ``A`` shared by aggregate and the long, short and mini pellets, ``B`` fitted
for aggregate only, pellet ``B_p`` and every other group's parameters fixed from the
table. ``scipy.optimize.minimize`` (L-BFGS-B, analytic gradient, over log A and B)
minimises Σ_s (log F_s − log measured_s)² over the samples with a positive measured
flux and positive model flux.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from plankflux.flux.allometry import (
    Allometry,
    carbon_for_rows,
    group_index,
    load_allometry,
    shape_dimensions,
)
from plankflux.flux.predictions import as_frames, check_predictions, human_predictions
from plankflux.flux.tables import MG_PER_MMOL_C, _sample_denominator

SHARED_A_GROUPS = ("aggregate", "long_pellet", "short_pellet", "mini_pellet")
B_GROUP = "aggregate"
B_BOUNDS = (0.1, 2.0)
RESIDUAL_COLUMNS = (
    "sample_id", "domain", "depth_m", "used", "measured_flux_mmol_m2_d",
    "model_flux_initial", "model_flux_fitted", "log_residual_initial", "log_residual_fitted",
)  # fmt: skip


@dataclass
class AllometryFit:
    """Fitted ``a`` (mg µm^-3B) and ``b``, the fitted table and per-sample residuals."""

    a: float
    b: float
    a_initial: float
    b_initial: float
    success: bool
    message: str
    objective: float  # Σ squared log residuals at the optimum
    allometry: Allometry
    residuals: pd.DataFrame  # columns RESIDUAL_COLUMNS

    def table(self) -> pd.DataFrame:
        """``parameter, groups, initial, fitted, n_samples, objective, success``."""
        n = int(self.residuals["used"].sum())
        common = {"n_samples": n, "objective": self.objective, "success": self.success}
        return pd.DataFrame(
            [
                {"parameter": "A", "groups": " ".join(SHARED_A_GROUPS),
                 "initial": self.a_initial, "fitted": self.a, **common},
                {"parameter": "B", "groups": B_GROUP,
                 "initial": self.b_initial, "fitted": self.b, **common},
            ]
        )  # fmt: skip


def fit_allometry(
    campaign_or_frames,
    labels: pd.DataFrame | None = None,
    allometry: Allometry | str | os.PathLike | Mapping | None = None,
    shared_groups: Sequence[str] = SHARED_A_GROUPS,
    b_group: str = B_GROUP,
) -> AllometryFit:
    """Fit shared A and aggregate B to the campaign's ``measured_flux_mmol_m2_d``.

    ``labels``: a predictions table with one treatment and member (default: the
    campaign's human labels). Starts from the ``allometry`` table's values (Table 1).
    Raises ``ValueError`` when fewer than two samples have both fluxes positive.
    """
    particles, samples = as_frames(campaign_or_frames)
    table = load_allometry(allometry)
    missing = [g for g in (*shared_groups, b_group) if g not in table.groups]
    if missing or b_group not in shared_groups:
        raise ValueError(
            f"cannot fit: groups {missing} not in the table, or {b_group!r} "
            f"not among the shared-A groups {list(shared_groups)}"
        )
    preds = human_predictions(particles) if labels is None else labels
    combos = preds[["treatment", "member"]].drop_duplicates()
    if len(combos) != 1:
        raise ValueError(f"labels must hold one treatment and member, got {len(combos)}")
    pos = check_predictions(preds, pd.Index(particles["particle_id"].astype(str)))
    row = group_index(preds["label"].astype(str).to_numpy(), table)
    esd = particles["esd_um"].to_numpy(dtype=np.float64)[pos]
    carbon = carbon_for_rows(row, esd, table, ids=preds["particle_id"].to_numpy())
    sample = pd.Index(samples["sample_id"].astype(str)).get_indexer(
        particles["sample_id"].astype(str).to_numpy()[pos]
    )
    if (sample < 0).any():
        raise ValueError("particles belong to samples missing from the samples table")
    n_s = len(samples)

    shared = np.isin(row, [table.groups.index(g) for g in shared_groups])
    fitted_b = row == table.groups.index(b_group)
    volume = np.zeros(len(row))
    for g in shared_groups:
        mask = row == table.groups.index(g)
        volume[mask] = shape_dimensions(table.params(g)[0], esd[mask])[2]
    log_v = np.log(np.where(fitted_b, volume, 1.0))[fitted_b]
    s_agg = sample[fitted_b]
    pellet = shared & ~fitted_b
    b_fixed = np.array([r[3] for r in table.rows])[row[pellet]]
    s_pellet = np.bincount(sample[pellet], volume[pellet] ** b_fixed, n_s)
    s_fixed = np.bincount(sample[~shared], carbon[~shared], n_s)

    measured = np.full(n_s, np.nan)
    if "measured_flux_mmol_m2_d" in samples.columns:
        measured = pd.to_numeric(samples["measured_flux_mmol_m2_d"], errors="coerce").to_numpy(
            dtype=np.float64
        )
    _, a0, b0 = table.params(b_group)
    has_carbon = np.bincount(sample, carbon, n_s) > 0
    denom = _sample_denominator(samples, has_carbon)

    def model_mg(log_a: float, b: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        vb = np.exp(b * log_v)
        sum_vb = np.bincount(s_agg, vb, n_s)
        sum_vb_logv = np.bincount(s_agg, vb * log_v, n_s)
        a = np.exp(log_a)
        return a * (sum_vb + s_pellet) + s_fixed, a * (sum_vb + s_pellet), a * sum_vb_logv

    used = np.isfinite(measured) & (measured > 0) & has_carbon & np.isfinite(denom)
    if used.sum() < 2:
        raise ValueError(
            f"A/B fit needs >= 2 samples with positive measured and model flux, "
            f"got {int(used.sum())}"
        )
    target = np.log(measured[used] * MG_PER_MMOL_C * denom[used])  # in mg per sample

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        mg, d_log_a, d_b = (x[used] for x in model_mg(*theta))
        r = np.log(mg) - target
        return float(r @ r), np.array([2 * r @ (d_log_a / mg), 2 * r @ (d_b / mg)])

    result = minimize(
        objective,
        x0=np.array([np.log(a0), b0]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(None, None), B_BOUNDS],
        options={"ftol": 1e-15, "gtol": 1e-12},
    )
    # Tolerances this tight can end in an "ABNORMAL" line search once the objective is
    # flat to machine precision (scipy >= 1.15 reports it as a failure): an optimum all
    # the same when the projected gradient is within scipy's default tolerance.
    converged = bool(result.success) or _projected_gradient_norm(result, B_BOUNDS) <= 1e-5
    a_fit, b_fit = float(np.exp(result.x[0])), float(result.x[1])
    fitted = table.with_params(
        **{g: (a_fit, b_fit if g == b_group else table.params(g)[2]) for g in shared_groups}
    )

    def flux(log_a: float, b: float) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.where(has_carbon, model_mg(log_a, b)[0] / MG_PER_MMOL_C / denom, 0.0)

    f0, f1 = flux(np.log(a0), b0), flux(*result.x)
    with np.errstate(divide="ignore", invalid="ignore"):
        residuals = pd.DataFrame({
            "sample_id": samples["sample_id"].to_numpy(), "domain": samples["domain"].to_numpy(),
            "depth_m": samples["depth_m"].to_numpy(), "used": used,
            "measured_flux_mmol_m2_d": measured, "model_flux_initial": f0,
            "model_flux_fitted": f1,
            "log_residual_initial": np.where(used, np.log(f0) - np.log(measured), np.nan),
            "log_residual_fitted": np.where(used, np.log(f1) - np.log(measured), np.nan),
        })  # fmt: skip
    return AllometryFit(
        a_fit,
        b_fit,
        float(a0),
        float(b0),
        converged,
        str(result.message),
        float(result.fun),
        fitted,
        residuals,
    )


def _projected_gradient_norm(result, b_bounds: tuple[float, float]) -> float:
    """Max |gradient| over (log A, B), ignoring B's component where B sits on a bound
    and the gradient pushes it outwards (L-BFGS-B's projected gradient)."""
    grad = np.array(result.jac, dtype=np.float64)
    b = result.x[1]
    if (b <= b_bounds[0] and grad[1] > 0) or (b >= b_bounds[1] and grad[1] < 0):
        grad[1] = 0.0
    return float(np.max(np.abs(grad)))
