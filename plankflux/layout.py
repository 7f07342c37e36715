"""Every file plankflux reads or writes, by name and columns, in one place.

Readers and writers both import their contracts from here, so a column added to a
table is added once. Grouped by where the file lives:

* a **trap campaign** (``particles.csv``, ``samples.csv``, ``classes.txt``) and a
  **CytoSense pair data set** (``annotations.csv``): the user's data, never rewritten;
* a **run folder** of ``plankflux train`` / ``predict``: ``metrics.json``,
  ``checkpoints/{best,last}.ckpt``, ``test_predictions.csv``, ``scores.parquet`` ...;
* a **proposal folder** (``<class>/`` sub-folders and ``manifest.csv``) and the
  verdicts read from it (``verified.csv``);
* a **pipeline workspace** (:class:`Workspace`).

The methods behind each table are described in ``docs/paper_a.md`` and
``docs/paper_b.md``; the formats in ``docs/data_formats.md``.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from plankflux.errors import PlankfluxError

if TYPE_CHECKING:  # pandas is imported where a table is read: `plankflux --help` stays fast
    import pandas as pd

#: The Hydra configs, shipped inside the package so an installed wheel can run.
CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")

# ---------------------------------------------------------------- trap campaign
PARTICLES_FILE = "particles.csv"
SAMPLES_FILE = "samples.csv"
CLASSES_FILE = "classes.txt"
PARTICLE_COLUMNS = ("particle_id", "image", "domain", "sample_id", "esd_um", "label")
#: ``imaged_area_m2`` on a particle: the gel area imaged at its magnification, where it
#: differs from the sample's (Paper A divides each particle's carbon by it).
OPTIONAL_PARTICLE_COLUMNS = (
    "label_original", "ambiguous", "magnification", "label_predicted", "imaged_area_m2",
)  # fmt: skip
SAMPLE_COLUMNS = ("sample_id", "domain", "depth_m", "imaged_area_m2", "deployment_days")
OPTIONAL_SAMPLE_COLUMNS = ("measured_flux_mmol_m2_d", "measured_flux_sd", "deployment", "date")
#: Known true labels of a synthetic campaign (``particle_id, label, ambiguous``): the
#: simulated expert's answers.
TRUTH_FILE = "synthetic_truth.csv"

# ------------------------------------------------------------ CytoSense pairs
ANNOTATIONS_FILE = "annotations.csv"
PAIR_COLUMNS = ("image", "profile", "class")

# ----------------------------------------------------------------- run folder
METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = "checkpoints"
BEST_CHECKPOINT = "best.ckpt"
LAST_CHECKPOINT = "last.ckpt"
#: The settings that shaped a finished run (what ``members=[...]`` compares on rerun).
RUN_SETTINGS_FILE = "settings.yaml"
TEST_PREDICTIONS_FILE = "test_predictions.csv"
CLASS_COUNTS_FILE = "class_counts.csv"
SKIPPED_IMAGES_FILE = "skipped_images.csv"
#: Per-member softmax scores: ``particle_id``, ``member`` (0..M-1), one column per class.
SCORES_FILE = "scores.parquet"
SCORES_INFO_FILE = "scores.json"
SCORE_KEYS = ("particle_id", "member")
#: Per-member predicted labels (argmax of the scores, or training labels kept).
PREDICTIONS_FILE = "predictions.csv"
PREDICTION_COLUMNS = ("particle_id", "treatment", "member", "label")
FLUX_BY_SAMPLE_FILE = "flux_by_sample.csv"
FLUX_SUMMARY_FILE = "flux_summary.csv"
#: k-NN gallery evaluation of a CLIP/DINO run, one per evaluated data set.
EVALUATION_FILE = "evaluation.json"

# ------------------------------------------------------------ proposal folder
MANIFEST_FILE = "manifest.csv"
MANIFEST_COLUMNS = ("particle_id", "image", "proposed_label", "score", "rank")
VERIFIED_COLUMNS = ("particle_id", "label", "action")
#: What the expert did with a proposal: left it, moved it to another class, deleted it.
ACTIONS = ("confirmed", "relabelled", "rejected")
#: The verdicts whose label is kept for retraining.
KEPT_ACTIONS = ("confirmed", "relabelled")
#: The two review rounds: ``verify`` (move wrong images) and ``minboost`` (delete them).
REVIEW_MODES = ("verify", "minboost")
#: ``plankflux review`` keeps its decisions beside the proposal folder (never inside it)
#: as ``<proposal_dir>.review.json``, and holds ``<proposal_dir>.review.lock`` while it
#: serves the folder, so a second server on the same folder is refused.
REVIEW_STATE_SUFFIX = ".review.json"
REVIEW_LOCK_SUFFIX = ".review.lock"
#: What a person can say about one image on the review page; ``wrong`` and ``undecided``
#: both end as ``rejected`` in ``verified.csv`` (the folder workflow's deleted file).
REVIEW_VERDICTS = ("confirmed", "relabelled", "wrong", "undecided")


def score_classes(scores: pd.DataFrame, classes: Sequence[str] | None = None) -> list[str]:
    """The class columns of a score table: ``classes`` (checked present), or every
    column but :data:`SCORE_KEYS`. Raises :class:`PlankfluxError` naming missing columns."""
    if classes is None:
        return [c for c in scores.columns if c not in SCORE_KEYS]
    classes = list(classes)
    missing = [c for c in (*SCORE_KEYS, *classes) if c not in scores.columns]
    if missing:
        raise PlankfluxError(f"score table lacks column(s) {missing}")
    return classes


def read_scores(
    path: str | os.PathLike, classes: Sequence[str] | None = None, require_rows: bool = False
) -> pd.DataFrame:
    """A score table from Parquet (as written) or CSV: its columns checked, every score a
    number in [0, 1]; with ``require_rows`` a table without rows is refused too."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise PlankfluxError(f"score table not found: {path}")
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as err:  # pyarrow and pandas raise many kinds for a damaged file
        raise PlankfluxError(f"cannot read score table {path}: {err}") from err
    try:
        columns = score_classes(frame, classes)
    except PlankfluxError as err:
        raise PlankfluxError(f"{path}: {err}") from None
    if require_rows and frame.empty:
        raise PlankfluxError(f"{path}: the score table has no rows: nothing to propose from")
    import numpy as np

    values = frame[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(values) & (values >= 0) & (values <= 1))
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        raise PlankfluxError(
            f"{path}: {int(bad.sum())} score(s) are not numbers in [0, 1], e.g. row {row + 1} "
            f"(particle_id {frame['particle_id'].iat[row]!r}), column {columns[col]!r}: "
            f"{frame[columns[col]].iat[row]!r}"
        )
    return frame


def read_verified(
    path: str | os.PathLike,
    particle_ids: Collection[str] | None = None,
    classes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """A verified table (``particle_id, label, action``), all text, checked: its columns
    and actions, a label exactly for kept actions and on at most one row per particle,
    and, where given, particles of the campaign (``particle_ids``) and labels of
    ``classes``."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise PlankfluxError(f"verified table not found: {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except Exception as err:  # pandas raises several types for a damaged file
        raise PlankfluxError(f"{path}: cannot be read as CSV ({err})") from err
    missing = [c for c in VERIFIED_COLUMNS if c not in frame.columns]
    if missing:
        raise PlankfluxError(f"{path}: missing column(s) {missing}; expected {VERIFIED_COLUMNS}")
    problems = []
    for line, (pid, label, action) in enumerate(
        zip(frame["particle_id"], frame["label"], frame["action"], strict=True), start=2
    ):
        if action not in ACTIONS:
            problems.append(f"line {line}: unknown action {action!r} (expected one of {ACTIONS})")
        elif (action in KEPT_ACTIONS) != bool(label):
            problems.append(f"line {line}: action {action!r} with label {label!r}")
        if particle_ids is not None and pid not in particle_ids:
            problems.append(f"line {line}: particle_id {pid!r} is not in the campaign")
        if classes is not None and label and label not in classes:
            problems.append(f"line {line}: label {label!r} is not a class")
    # A particle proposed for two minboost classes has a row per class; at most one of
    # them may keep a label.
    kept = frame[frame["action"].isin(KEPT_ACTIONS)]
    for pid in sorted(set(kept.loc[kept["particle_id"].duplicated(), "particle_id"])):
        problems.append(f"particle_id {pid!r} keeps a label on more than one row")
    if problems:
        shown = "\n  ".join(problems[:25])
        more = f"\n  ... and {len(problems) - 25} more" if len(problems) > 25 else ""
        raise PlankfluxError(f"{path}: {len(problems)} problem(s):\n  {shown}{more}")
    return frame


@dataclass(frozen=True)
class Workspace:
    """The folder of one ``plankflux pipeline`` run (Paper A's steps 1–7 for one target).

    Each stage writes its own files and is skipped when they exist, so rerunning the
    same command resumes a stopped run.
    """

    root: Path

    def ensemble(self, treatment: str) -> Path:
        """``ood/`` for the out-of-domain ensemble, ``retrain/<treatment>/`` otherwise."""
        return self.root / "ood" if treatment == "ood" else self.root / "retrain" / treatment

    @property
    def proposals(self) -> Path:
        return self.root / "proposals"

    @property
    def verified(self) -> Path:
        return self.root / "verified.csv"

    @property
    def minboost(self) -> Path:
        return self.root / "minboost"

    @property
    def minboost_verified(self) -> Path:
        return self.root / "minboost_verified.csv"

    def labels(self, treatment: str) -> Path:
        """``particle_id, label`` of the target particles a treatment retrains with."""
        return self.root / f"labels_{treatment}.csv"

    @property
    def flux(self) -> Path:
        return self.root / "flux"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"
