"""``plankflux flux tables|fit|figures``: POC flux tables, A/B fitting and Figures 3, 5–8.

* ``flux tables CAMPAIGN --out DIR [--predictions FILE]``: ``flux_by_sample.csv`` and
  ``flux_summary.csv``; without predictions from the campaign's human labels only (the
  original annotation ``label_original``, else ``label``).
* ``flux fit CAMPAIGN --out DIR``: fit the shared A and aggregate B to the measured
  bulk flux; writes ``allometry_fit.csv``, ``allometry_fitted.csv`` (usable as
  ``--allometry``) and ``fit_residuals.csv``.
* ``flux figures --campaign DIR [--predictions FILE] --out DIR`` (or ``--tables DIR``):
  the flux tables, MAE / ANOVA / Tukey / precision-recall tables and Figures 3 (with a
  campaign) and 5–8.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _common(parser: argparse.ArgumentParser, predictions_help: str) -> None:
    parser.add_argument("--predictions", help=predictions_help)
    parser.add_argument(
        "--treatment",
        help="treatment name for a score table (scores.parquet) or a predictions file "
        "without a treatment column",
    )
    parser.add_argument("--allometry", help="allometry table (CSV group,shape,A,B or YAML)")
    parser.add_argument(
        "--fixed-labels",
        help="CSV particle_id,label[,treatment]: particles used in training keep this label",
    )


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "flux",
        help="POC flux tables, allometry fitting and the flux figures (Paper A)",
        description="Carbon per particle (Table 1) and POC flux per trap sample.",
    )
    kinds = parser.add_subparsers(dest="flux_command", required=True, metavar="ACTION")
    predictions_help = (
        "predictions (CSV/Parquet: particle_id,treatment,member,label) or an ensemble "
        "score table; default: the campaign's human labels only"
    )

    tables = kinds.add_parser("tables", help="flux_by_sample.csv and flux_summary.csv")
    tables.add_argument("campaign", help="campaign folder")
    tables.add_argument("--out", required=True, help="output folder")
    _common(tables, predictions_help)
    tables.set_defaults(func=run_tables)

    fit = kinds.add_parser("fit", help="fit shared A and aggregate B to measured bulk flux")
    fit.add_argument("campaign", help="campaign folder (samples.csv needs measured fluxes)")
    fit.add_argument("--out", required=True, help="output folder")
    _common(fit, "labels to fit from (one treatment and member); default: human labels")
    fit.set_defaults(func=run_fit)

    figures = kinds.add_parser("figures", help="Figures 5-8 and every statistics table")
    source = figures.add_mutually_exclusive_group(required=True)
    source.add_argument("--campaign", help="campaign folder")
    source.add_argument("--tables", help="folder of tables already written by this command")
    figures.add_argument("--out", required=True, help="output folder")
    _common(figures, predictions_help)
    figures.set_defaults(func=run_figures)


def _inputs(args: argparse.Namespace, campaign: str):
    from plankflux.data.campaign import load_campaign
    from plankflux.flux.allometry import load_allometry
    from plankflux.flux.predictions import read_fixed_labels, read_predictions
    from plankflux.utils.paths import check_output

    check_output(args.out, campaign=campaign)
    loaded = load_campaign(campaign, check_images="none")
    predictions = None
    if args.predictions:
        predictions = read_predictions(args.predictions, args.treatment)
    fixed = read_fixed_labels(args.fixed_labels) if args.fixed_labels else None
    return loaded, predictions, load_allometry(args.allometry), fixed


def run_tables(args: argparse.Namespace) -> int:
    from plankflux.flux.tables import flux_tables, write_flux_tables

    campaign, predictions, allometry, fixed = _inputs(args, args.campaign)
    by_sample, summary = flux_tables(campaign, predictions, allometry, fixed)
    paths = write_flux_tables(args.out, by_sample, summary)
    treatments = ", ".join(dict.fromkeys(by_sample["treatment"]))
    n_samples = by_sample["sample_id"].nunique()
    print(f"wrote {paths[0]} and {paths[1]}: {n_samples} samples; treatments {treatments}")
    partial = by_sample[(by_sample["treatment"] != "human") & (by_sample["coverage"] < 1)]
    for (treatment, sample), rows in partial.groupby(["treatment", "sample_id"], sort=False):
        print(
            f"warning: {treatment}: the predictions cover {rows['coverage'].min():.0%} of "
            f"sample {sample}'s particles: its flux counts only those (column coverage)",
            file=sys.stderr,
        )
    return 0


def run_fit(args: argparse.Namespace) -> int:
    from plankflux.flux.fit_ab import fit_allometry
    from plankflux.utils.atomic import write_csv_atomic

    campaign, predictions, allometry, fixed = _inputs(args, args.campaign)
    if predictions is not None and fixed is not None:
        from plankflux.flux.predictions import with_fixed_labels

        predictions = with_fixed_labels(predictions, fixed)
    fit = fit_allometry(campaign, predictions, allometry)
    out = Path(args.out)
    write_csv_atomic(fit.table(), out / "allometry_fit.csv")
    write_csv_atomic(fit.allometry.to_frame(), out / "allometry_fitted.csv")
    write_csv_atomic(fit.residuals, out / "fit_residuals.csv")
    status = "converged" if fit.success else f"did NOT converge ({fit.message})"
    print(
        f"A = {fit.a:.4g} (from {fit.a_initial:.4g}), B = {fit.b:.4f} (from {fit.b_initial}) "
        f"over {int(fit.residuals['used'].sum())} samples, {status}; wrote {out}"
    )
    return 0 if fit.success else 1


def run_figures(args: argparse.Namespace) -> int:
    from plankflux.tables.flux_figures import FluxInputs, make_flux_figures

    if args.tables:
        source = args.tables
    else:
        campaign, predictions, allometry, fixed = _inputs(args, args.campaign)
        source = FluxInputs(campaign, predictions, allometry, fixed)
    paths = make_flux_figures(source, args.out)
    tables = "" if args.tables else " and the flux and statistics tables"
    print(f"wrote {len(paths)} figure files (PNG, PDF, CSV){tables} to {args.out}")
    return 0
