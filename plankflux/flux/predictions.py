"""The predictions table that flux tables are computed from, and its helpers.

Format (CSV or Parquet), one row per particle per ensemble member per treatment:

============ ======= ==========================================================
column       type    meaning
============ ======= ==========================================================
particle_id  str     a ``particle_id`` of the campaign's ``particles.csv``
treatment    str     e.g. ``OOD``, ``+top1k``, ``+verify``, ``+minboost``, ``human``
member       int     ensemble member (0-based); ``human`` uses member 0
label        str     the class this member gives the particle (14-class or grouped)
============ ======= ==========================================================

A ``(particle_id, treatment, member)`` appears at most once. Particles absent for a
treatment/member simply add no carbon (see ``coverage`` in the flux tables). The
``human`` treatment is the campaign's *original* human annotation, as in Paper A's
Figures 5–7 (:func:`human_predictions`): ``label_original`` of every particle that has
one, in the original scheme; a campaign with no ``label_original`` at all falls back to
its ``label`` column. Its ``coverage`` says which fraction of a sample it annotates, and
a human reference that does not cover a whole sample is not compared (the flux
assessment says so). The revised labels (``label``) are what models train and are
tested on; as a treatment (``revised``) they are the relabelling reference of Figure 7.
Particles used in training keep their verified label: pass them as ``fixed_labels``
(:func:`with_fixed_labels`), which adds or overrides them for every member.
The ensemble's score table (``scores.parquet``: ``particle_id, member`` then one
score column per class) converts with :func:`predictions_from_scores`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from plankflux.data.campaign import Campaign, load_campaign
from plankflux.data.classes import to_original_scheme
from plankflux.layout import PREDICTION_COLUMNS

HUMAN = "human"
REVISED = "revised"
ORIGINAL_LABEL = "label_original"


def as_frames(campaign) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(particles, samples)`` from a Campaign, a campaign folder or such a pair."""
    if isinstance(campaign, Campaign):
        return campaign.particles, campaign.samples
    if isinstance(campaign, str | os.PathLike):
        loaded = load_campaign(campaign, check_images="none")
        return loaded.particles, loaded.samples
    particles, samples = campaign
    return particles, samples


def human_label_column(particles: pd.DataFrame) -> str:
    """The column the human reference comes from: ``label_original`` (Paper A's
    original annotation) when any particle has one, else ``label``."""
    if ORIGINAL_LABEL in particles.columns:
        if (particles[ORIGINAL_LABEL].fillna("").astype(str) != "").any():
            return ORIGINAL_LABEL
    return "label"


def human_predictions(
    particles: pd.DataFrame, treatment: str = HUMAN, column: str | None = None
) -> pd.DataFrame:
    """Human labels as a predictions table (member 0, annotated rows only).

    ``column``: ``label_original`` (mapped to the original scheme, old names included,
    so carbon can be looked up), ``label``, or ``None`` for :func:`human_label_column`.
    """
    column = column or human_label_column(particles)
    values = particles[column].fillna("").astype(str)
    annotated = particles[values != ""]
    labels = values[values != ""].tolist()
    if column == ORIGINAL_LABEL:
        labels = to_original_scheme(labels)
    return pd.DataFrame(
        {
            "particle_id": annotated["particle_id"].astype(str).to_numpy(),
            "treatment": treatment,
            "member": np.zeros(len(annotated), dtype=np.int64),
            "label": np.asarray(labels, dtype=object),
        }
    )


def predictions_from_scores(
    scores: pd.DataFrame, treatment: str, class_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Argmax labels from a score table (``particle_id, member``, one column per class)."""
    if class_names is None:
        class_names = [c for c in scores.columns if c not in ("particle_id", "member")]
    missing = [c for c in ("particle_id", "member", *class_names) if c not in scores.columns]
    if missing:
        raise ValueError(f"score table lacks column(s) {missing}")
    probs = scores[list(class_names)].to_numpy(dtype=np.float64)
    return pd.DataFrame(
        {
            "particle_id": scores["particle_id"].astype(str).to_numpy(),
            "treatment": treatment,
            "member": scores["member"].to_numpy(dtype=np.int64),
            "label": np.asarray(class_names, dtype=object)[probs.argmax(axis=1)],
        }
    )


def read_predictions(path: str | os.PathLike, treatment: str | None = None) -> pd.DataFrame:
    """Read a predictions table (CSV/Parquet), or a score table converted by argmax.

    A score table (no ``label`` column) needs ``treatment``; a predictions table
    without a ``treatment`` column takes ``treatment`` too.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file not found: {path}")
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(
            path, dtype={"particle_id": str, "label": str, "treatment": str}, keep_default_na=False
        )
    if "label" not in frame.columns and "member" in frame.columns:
        if treatment is None:
            raise ValueError(f"{path} is a score table: give the treatment it belongs to")
        return predictions_from_scores(frame, treatment)
    if "treatment" not in frame.columns and treatment is not None:
        frame.insert(1, "treatment", treatment)
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {PREDICTION_COLUMNS}")
    return frame[list(PREDICTION_COLUMNS)]


def read_fixed_labels(path: str | os.PathLike) -> pd.DataFrame:
    """``particle_id, label[, treatment]`` CSV of particles whose verified label is kept."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    missing = [c for c in ("particle_id", "label") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    return frame


def with_fixed_labels(
    predictions: pd.DataFrame, fixed_labels: Mapping[str, str] | pd.DataFrame | None
) -> pd.DataFrame:
    """Give the ``fixed_labels`` particles their verified label for every member.

    ``fixed_labels``: ``{particle_id: label}`` (every treatment except ``human``) or a
    frame ``particle_id, label`` with an optional ``treatment`` column restricting a
    row to one treatment. Fixed particles missing from a treatment/member (the
    pipeline does not predict training images) are added; present ones overridden.
    """
    if fixed_labels is None or len(fixed_labels) == 0:
        return predictions
    if isinstance(fixed_labels, pd.DataFrame):
        fixed = fixed_labels.astype({"particle_id": str, "label": str})
    else:
        fixed = pd.DataFrame(
            {"particle_id": list(map(str, fixed_labels)), "label": list(fixed_labels.values())}
        )
    combos = predictions[["treatment", "member"]].drop_duplicates()
    combos = combos[~combos["treatment"].isin([HUMAN, REVISED])]
    if "treatment" in fixed.columns:
        unknown = sorted(set(fixed["treatment"]) - set(combos["treatment"]))
        if unknown:
            raise ValueError(f"fixed_labels name treatment(s) not in the predictions: {unknown}")
        rows = fixed.merge(combos, on="treatment")
    else:
        rows = fixed.merge(combos, how="cross")
    rows = rows[list(PREDICTION_COLUMNS)]
    key = ["particle_id", "treatment", "member"]
    merged = pd.concat([rows, predictions[list(PREDICTION_COLUMNS)]], ignore_index=True)
    return merged.drop_duplicates(key, keep="first").reset_index(drop=True)


def check_predictions(predictions: pd.DataFrame, particle_ids: pd.Index) -> np.ndarray:
    """Validate a predictions table; return each row's position in ``particle_ids``.

    Raises ``ValueError`` naming the missing columns, unknown particle ids, empty
    treatments/labels, non-integer or negative members, or duplicated rows.
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(f"predictions lack column(s) {missing}; expected {PREDICTION_COLUMNS}")
    problems = []
    member = pd.to_numeric(predictions["member"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(member) | (member < 0) | (member != np.round(member))
    if bad.any():
        problems.append(
            f"{int(bad.sum())} row(s) with a member that is not an integer >= 0 "
            f"(first at row {int(np.flatnonzero(bad)[0])})"
        )
    for column in ("treatment", "label"):
        empty = predictions[column].isna().to_numpy() | (predictions[column].astype(str) == "")
        if empty.any():
            problems.append(
                f"{int(empty.sum())} row(s) with an empty {column} "
                f"(first at row {int(np.flatnonzero(empty)[0])})"
            )
    # Map each distinct id once: predictions repeat every particle once per member.
    id_code, id_uniques = pd.factorize(predictions["particle_id"].astype(str))
    position = particle_ids.get_indexer(id_uniques)[id_code]
    if (position < 0).any():
        unknown = pd.unique(predictions["particle_id"].to_numpy()[position < 0])
        shown = ", ".join(map(repr, unknown[:20])) + (" ..." if len(unknown) > 20 else "")
        problems.append(f"{len(unknown)} particle_id(s) not in the campaign: {shown}")
    elif not bad.any():
        t_code, t_uniques = pd.factorize(predictions["treatment"])
        n_m = int(member.max()) + 1 if len(member) else 1
        key = (id_code.astype(np.int64) * len(t_uniques) + t_code) * n_m + member.astype(np.int64)
        dup = pd.Series(key).duplicated().to_numpy()
        if dup.any():
            first = predictions[dup].iloc[0]
            problems.append(
                f"{int(dup.sum())} duplicated (particle_id, treatment, member) row(s), "
                f"e.g. {tuple(first[['particle_id', 'treatment', 'member']])}"
            )
    if problems:
        raise ValueError("bad predictions table: " + "; ".join(problems))
    return position
