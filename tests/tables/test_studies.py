"""Paper A's study tables from job folders: arms, seeds, and what is refused."""

from __future__ import annotations

import pandas as pd
import pytest

from plankflux.layout import CLASS_COUNTS_FILE, TEST_PREDICTIONS_FILE
from plankflux.tables.studies import collect_study


def _job(sweep, name: str, lr: float, seed: int, right: int) -> None:
    """A finished job: 4 test images of 2 classes, ``right`` of them predicted right."""
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text(
        f"task_name: tune_lr\nseed: {seed}\nmodel:\n  optimizer:\n    lr: {lr}\n"
    )
    truth = ["aggregate", "aggregate", "long_pellet", "long_pellet"]
    predicted = truth[:right] + [("long_pellet" if t == "aggregate" else "aggregate")
                                 for t in truth[right:]]  # fmt: skip
    pd.DataFrame({"label": truth, "predicted": predicted}).to_csv(job / TEST_PREDICTIONS_FILE)
    pd.DataFrame({"class": ["aggregate", "long_pellet"], "train": [10, 10]}).to_csv(
        job / CLASS_COUNTS_FILE, index=False
    )


def test_arms_collect_one_report_per_seed(tmp_path):
    for i, (lr, seed, right) in enumerate([(1e-3, 0, 4), (1e-3, 1, 2), (1e-4, 0, 3)]):
        _job(tmp_path, str(i), lr, seed, right)
    reports = collect_study(tmp_path, "tune_lr")
    assert {arm: len(r) for arm, r in reports.items()} == {"base": 2, "lowLR": 1}
    recalls = sorted(float(r.loc["macro", "recall"]) for r in reports["base"])
    assert recalls == [0.5, 1.0]


def test_two_jobs_of_one_arm_with_one_seed_are_refused(tmp_path):
    # e.g. unrelated runs, or two sweeps' folders given at once: no sd over seeds
    _job(tmp_path, "a", 1e-3, 0, 4)
    _job(tmp_path, "b", 1e-3, 0, 2)
    with pytest.raises(ValueError, match="two jobs of arm 'base' with seed 0"):
        collect_study(tmp_path, "tune_lr")
