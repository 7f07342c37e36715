"""Carbon and flux (Paper A): Table 1 allometry, flux tables, A/B fitting."""

from plankflux.flux.allometry import TABLE1, Allometry, load_allometry, particle_carbon_mg
from plankflux.flux.predictions import (
    HUMAN,
    PREDICTION_COLUMNS,
    human_predictions,
    predictions_from_scores,
    read_predictions,
    with_fixed_labels,
)
from plankflux.flux.tables import (
    FLUX_BY_SAMPLE_COLUMNS,
    FLUX_SUMMARY_COLUMNS,
    flux_by_sample,
    flux_tables,
    summarise_flux,
    write_flux_tables,
)

__all__ = [
    "FLUX_BY_SAMPLE_COLUMNS",
    "FLUX_SUMMARY_COLUMNS",
    "HUMAN",
    "PREDICTION_COLUMNS",
    "TABLE1",
    "Allometry",
    "flux_by_sample",
    "flux_tables",
    "human_predictions",
    "load_allometry",
    "particle_carbon_mg",
    "predictions_from_scores",
    "read_predictions",
    "summarise_flux",
    "with_fixed_labels",
    "write_flux_tables",
]
