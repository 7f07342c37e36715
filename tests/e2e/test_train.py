"""plankflux-train end to end: Hydra run and multirun write what a run must write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

# The console script a user types, installed beside this interpreter.
TRAIN = [str(Path(sys.executable).parent / "plankflux-train")]


def _train(tmp_path: Path, *overrides: str, multirun: bool = False) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "PLANKFLUX_DATA_DIR": str(tmp_path / "data"),
        "PLANKFLUX_LOG_DIR": str(tmp_path / "logs"),
    }
    result = subprocess.run(
        [*TRAIN, *(["-m"] if multirun else []), "debug=tiny", *overrides],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def _check_run_dir(run: Path) -> dict:
    config = (run / ".hydra" / "config.yaml").read_text()
    assert "target_domain: RR" in config and "???" not in config
    assert (run / "checkpoints" / "best.ckpt").is_file()
    # A finished run keeps the lean best.ckpt (no optimiser state) and drops last.ckpt.
    assert not (run / "checkpoints" / "last.ckpt").exists()
    import torch

    best = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True, map_location="cpu")
    assert "optimizer_states" not in best and {"state_dict", "hyper_parameters"} <= set(best)
    assert "trainer.max_epochs: 2" in (run / "settings.yaml").read_text()
    metrics = pd.read_csv(run / "csv" / "metrics.csv")
    for column in (
        "train/loss",
        "val/loss",
        "val/recall_aggregate",
        "val/precision_noise",
        "test/acc",
        "test/recall_macro",
    ):
        assert column in metrics.columns, column
    assert metrics["val/loss"].notna().sum() == 2  # two epochs validated
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["best_checkpoint"].endswith("best.ckpt")
    assert 0.0 <= summary["test"]["test/acc"] <= 1.0
    assert summary["best_val_loss"] == pytest.approx(metrics["val/loss"].min(), rel=1e-5)
    return summary


def test_single_run_with_csv_and_offline_wandb(tmp_path):
    result = _train(tmp_path, "logger=many", "seed=5")
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    assert f"plankflux train: run folder {run}; best val/loss" in result.stdout
    assert "on RR: accuracy" in result.stdout
    summary = _check_run_dir(run)
    assert summary["seed"] == 5
    assert list((run / "wandb").glob("offline-run-*")), "wandb did not log offline"
    # The synthetic campaign was generated on first use, complete, under the data dir.
    assert (tmp_path / "data" / "synthetic_trap_tiny_seed0" / "samples.csv").is_file()


def test_multirun_over_seeds_gives_one_run_dir_each(tmp_path):
    _train(tmp_path, "seed=0,1", multirun=True)
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    runs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in runs] == ["0", "1"]
    seeds = [_check_run_dir(run)["seed"] for run in runs]
    assert seeds == [0, 1]
    weights = [(run / "checkpoints" / "best.ckpt").read_bytes() for run in runs]
    assert weights[0] != weights[1]


def test_last_checkpoint_is_the_last_epoch_and_a_crashed_run_resumes_from_it(tmp_path):
    # Keeping the *highest* training loss as "best" (the first epoch's: training loss falls
    # epoch after epoch, where the tiny val/loss may not) makes best and last epochs differ.
    worst = (
        "callbacks.model_checkpoint.monitor=train/loss",
        "callbacks.model_checkpoint.mode=max",
        "+callbacks.model_checkpoint.save_on_train_epoch_end=true",
        "callbacks.early_stopping=null",
    )
    _train(
        tmp_path,
        *worst,
        "trainer.max_epochs=3",
        "keep_last_checkpoint=true",  # kept as a crashed run would have left it
        "hydra.run.dir=" + str(tmp_path / "run"),
    )
    import torch

    checkpoints = tmp_path / "run" / "checkpoints"
    last = torch.load(checkpoints / "last.ckpt", weights_only=True, map_location="cpu")
    best = torch.load(checkpoints / "best.ckpt", weights_only=True, map_location="cpu")
    assert last["epoch"] == 2 and best["epoch"] < 2
    # Resume as after a crash: only the epochs not done yet are trained.
    _train(
        tmp_path,
        *worst,
        "trainer.max_epochs=4",
        f"ckpt_path={checkpoints / 'last.ckpt'}",
        "keep_last_checkpoint=true",
        "hydra.run.dir=" + str(tmp_path / "resumed"),
    )
    metrics = pd.read_csv(tmp_path / "resumed" / "csv" / "metrics.csv")
    trained = metrics.dropna(subset=["val/loss"])  # (test rows come after the last epoch)
    assert sorted(trained["epoch"].unique()) == [3]
    resumed = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == 3 and resumed["global_step"] > last["global_step"]
