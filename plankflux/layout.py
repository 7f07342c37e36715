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
from collections.abc import Sequence
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
OPTIONAL_PARTICLE_COLUMNS = ("label_original", "ambiguous", "magnification")
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


def read_scores(path: str | os.PathLike, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """A score table from Parquet (as written) or CSV, its columns checked."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise PlankfluxError(f"score table not found: {path}")
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as err:  # pyarrow and pandas raise many kinds for a damaged file
        raise PlankfluxError(f"cannot read score table {path}: {err}") from err
    try:
        score_classes(frame, classes)
    except PlankfluxError as err:
        raise PlankfluxError(f"{path}: {err}") from None
    return frame


def read_verified(path: str | os.PathLike) -> pd.DataFrame:
    """A verified table (``particle_id, label, action``), all text, columns checked."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise PlankfluxError(f"verified table not found: {path}")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in VERIFIED_COLUMNS if c not in frame.columns]
    if missing:
        raise PlankfluxError(f"{path}: missing column(s) {missing}; expected {VERIFIED_COLUMNS}")
    bad = sorted(set(frame["action"]) - set(ACTIONS))
    if bad:
        raise PlankfluxError(f"{path}: unknown action(s) {bad}; expected one of {ACTIONS}")
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
