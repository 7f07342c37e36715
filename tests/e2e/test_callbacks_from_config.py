"""Voting proposals and flux tables switched on from the command line, in training and
in prediction (``callbacks=[...]``, ``flux=true``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from wandb_offline import offline_runs

BIN = Path(sys.executable).parent


def _run(tmp_path: Path, verb: str, *overrides: str) -> None:
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "PLANKFLUX_DATA_DIR": str(tmp_path / "data"),
        "PLANKFLUX_LOG_DIR": str(tmp_path / "logs"),
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run(
        [str(BIN / "plankflux"), verb, *overrides],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]


def _check_outputs(run: Path, n_particles: int) -> None:
    scores = pd.read_parquet(run / "scores.parquet")
    assert len(scores) == n_particles
    manifest = pd.read_csv(run / "proposals" / "manifest.csv")
    assert len(manifest) > 0 and set(manifest["particle_id"]) <= set(scores["particle_id"])
    for image in manifest["image"]:
        assert (run / "proposals" / image).is_file()
    predictions = pd.read_csv(run / "flux" / "predictions.csv")
    assert len(predictions) == n_particles
    summary = pd.read_csv(run / "flux" / "flux_summary.csv")
    assert set(summary["treatment"]) == {"human", "model"} and "total" in set(
        summary["class_group"]
    )


def test_training_and_prediction_emit_proposals_and_flux_tables(tmp_path):
    train = tmp_path / "train"
    _run(
        tmp_path,
        "train",
        "debug=tiny",
        "trainer.max_epochs=1",
        "callbacks=[default,voting_proposals,flux_tables]",
        "logger=wandb",
        f"hydra.run.dir={train}",
    )
    n_target = 100  # every RR particle of the tiny synthetic campaign
    _check_outputs(train, n_target)
    # With W&B on, the tables and sample proposals are logged too.
    (run,) = offline_runs(train)
    kinds = {key: run["metrics"].get(f"{key}/_type", [None])[-1] for key in
             ("test/per_class", "flux/summary", "proposals")}  # fmt: skip
    assert kinds == {
        "test/per_class": "table-file",
        "flux/summary": "table-file",
        "proposals": "images/separated",
    }
    assert run["metrics"]["proposals/count"][-1] > 0

    predict = tmp_path / "predict"
    _run(
        tmp_path,
        "predict",
        f"checkpoints={train}",
        "data=synthetic_tiny",
        "callbacks=voting_proposals",
        "flux=true",
        f"hydra.run.dir={predict}",
    )
    _check_outputs(predict, n_target)


def test_knn_tables_are_logged_to_wandb(tmp_path):
    run_dir = tmp_path / "clip"
    _run(tmp_path, "train", "debug=clip_tiny", "trainer.max_epochs=1", "logger=wandb",
         f"hydra.run.dir={run_dir}")  # fmt: skip
    (run,) = offline_runs(run_dir)
    tables = [k for k, v in run["metrics"].items() if k.startswith("knn/") and v == ["table-file"]]
    assert tables, sorted(run["metrics"])
