"""DDP (2 CPU processes, gloo) reports the metrics one process reports for the same weights.

Each DDP run trains for 2 epochs in its own subprocess; then this (single) process loads
the run's checkpoints and evaluates them on the whole val and test splits. The values
the DDP run logged and decided on (val/loss per epoch, the best epoch, test metrics)
must equal these within float tolerance: a metric from rank 0's share of the data
alone, or counted with the DistributedSampler's repeated items, would differ.

Training itself cannot match one process bit for bit: BatchNorm normalises each rank's
half batch (SyncBatchNorm needs GPUs) and the shuffled order differs; one-process
training is compared only for the same number of epochs trained.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import hydra
import lightning as L
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf, open_dict

BIN = Path(sys.executable).parent
DDP = [
    "trainer=ddp",
    "trainer.accelerator=cpu",
    "trainer.devices=2",
    "trainer.sync_batchnorm=false",
    "trainer.max_epochs=2",
    "keep_last_checkpoint=true",  # the tests evaluate the last epoch's weights
]


def _env(tmp_path: Path) -> dict:
    return {
        **os.environ,
        "WANDB_MODE": "offline",
        "PLANKFLUX_DATA_DIR": str(tmp_path / "data"),
        "PLANKFLUX_LOG_DIR": str(tmp_path / "logs"),
        "OMP_NUM_THREADS": "1",
    }


def _train(tmp_path: Path, run: Path, *overrides: str) -> dict:
    result = subprocess.run(
        [str(BIN / "plankflux-train"), *overrides, f"hydra.run.dir={run}"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads((run / "metrics.json").read_text())


def _one_process(run: Path, monkeypatch, **data_overrides):
    """The run's data and model, a one-process CPU trainer."""
    monkeypatch.setenv("PLANKFLUX_DATA_DIR", str(run.parent / "data"))
    cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    with open_dict(cfg):
        cfg.paths.output_dir = str(run)
        cfg.data.update(data_overrides)
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    model = hydra.utils.instantiate(
        cfg.model, class_names=list(datamodule.class_names), _convert_="all"
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return trainer, model, datamodule


def _epoch_values(run: Path, key: str) -> list[float]:
    metrics = pd.read_csv(run / "csv" / "metrics.csv")
    return metrics.dropna(subset=[key]).sort_values("epoch")[key].tolist()


def test_paper_a_ddp_val_and_test_metrics_equal_one_process(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    (tmp_path / "data").mkdir()
    ddp_run = tmp_path / "ddp"
    ddp = _train(tmp_path, ddp_run, "debug=tiny", *DDP, "data.augment=false")

    trainer, model, datamodule = _one_process(ddp_run, monkeypatch)
    ckpts = ddp_run / "checkpoints"
    logged = _epoch_values(ddp_run, "val/loss")
    assert len(logged) == 2  # one synchronised value per epoch
    (last_val,) = trainer.validate(model, datamodule=datamodule, ckpt_path=ckpts / "last.ckpt")
    assert last_val["val/loss"] == pytest.approx(logged[-1], rel=1e-5)
    (best_val,) = trainer.validate(model, datamodule=datamodule, ckpt_path=ckpts / "best.ckpt")
    assert best_val["val/loss"] == pytest.approx(min(logged), rel=1e-5)
    assert ddp["best_val_loss"] == pytest.approx(min(logged), rel=1e-6)
    best_epoch = torch.load(ckpts / "best.ckpt", weights_only=True, map_location="cpu")["epoch"]
    assert best_epoch == logged.index(min(logged))
    assert last_val["val/acc"] == pytest.approx(_epoch_values(ddp_run, "val/acc")[-1], abs=1e-6)

    (test,) = trainer.test(model, datamodule=datamodule, ckpt_path=ckpts / "best.ckpt")
    for key in ("test/loss", "test/acc", "test/recall_macro", "test/precision_macro"):
        assert ddp["test"][key] == pytest.approx(test[key], rel=1e-5, abs=1e-7), key
    # Every test image scored once (no DistributedSampler repeats), by one rank or the other.
    predictions = pd.read_csv(ddp_run / "test_predictions.csv")
    assert len(predictions) == len(datamodule.splits["test"])
    assert predictions["particle_id"].is_unique

    # One process training on the same data for the same epochs ends at the same point.
    one = _train(tmp_path, tmp_path / "one", "debug=tiny", "data.augment=false")
    assert one["epochs_trained"] == ddp["epochs_trained"] == 2
    assert len(_epoch_values(tmp_path / "one", "val/loss")) == 2


def test_clip_ddp_val_loss_equals_one_process(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    (tmp_path / "data").mkdir()
    ddp_run = tmp_path / "ddp"
    # Per-rank batch 8: each global batch is the 16 pairs one process sees with batch 16.
    _train(
        tmp_path,
        ddp_run,
        "debug=clip_tiny",
        *DDP,
        "data.batch_size=8",
        "callbacks.knn_evaluation=null",
        "test=false",
    )
    trainer, model, datamodule = _one_process(ddp_run, monkeypatch, batch_size=16)
    datamodule.setup("validate")
    n_val = len(datamodule.splits["val"])
    logged = _epoch_values(ddp_run, "val/loss")
    assert len(logged) == 2
    (last_val,) = trainer.validate(
        model, datamodule=datamodule, ckpt_path=ddp_run / "checkpoints" / "last.ckpt"
    )
    # The tiny val split is one batch, split evenly: no DistributedSampler repeats.
    assert n_val <= 16 and n_val % 2 == 0, n_val
    assert last_val["val/loss"] == pytest.approx(logged[-1], rel=1e-5)
