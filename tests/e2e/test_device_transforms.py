"""The GPU-fed input path from the command line: train and predict with uint8 batches
made ready on the device, channels-last members and torch.compile, on the CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

PLANKFLUX = str(Path(sys.executable).parent / "plankflux")


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "PLANKFLUX_DATA_DIR": str(tmp_path / "data"),
        "PLANKFLUX_LOG_DIR": str(tmp_path / "logs"),
    }
    result = subprocess.run(
        [PLANKFLUX, *args], env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def test_train_and_predict_through_the_batched_path(tmp_path):
    cache = f"data.cache_dir={tmp_path / 'cache'}"
    fast = ("data.device_transforms=true", "model.channels_last=true")
    _run(tmp_path, "train", "debug=tiny", cache, *fast)
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    assert (run / "checkpoints" / "best.ckpt").is_file()
    metrics = pd.read_csv(run / "csv" / "metrics.csv")
    assert metrics["train/loss"].notna().sum() == 2 and metrics["val/loss"].notna().sum() == 2
    # The speed switches are not training settings: a rerun may change them.
    assert "device_transforms" not in (run / "settings.yaml").read_text()

    scores = {}
    for name, options in {
        "per_item": (),
        "batched": (cache, *fast),
        "compiled": (*fast, "model.compile=true"),
    }.items():
        _run(tmp_path, "predict", f"checkpoints={run}", "data=synthetic_tiny", *options)
        newest = max((tmp_path / "logs" / "predict" / "runs").iterdir())
        scores[name] = pd.read_parquet(newest / "scores.parquet")
    reference = scores.pop("per_item")
    assert len(reference) > 50
    for frame in scores.values():
        assert frame["particle_id"].tolist() == reference["particle_id"].tolist()
        # The same pixels and weights; only the kernels (NHWC, compiled) differ.
        np.testing.assert_allclose(
            frame.iloc[:, 2:].to_numpy(), reference.iloc[:, 2:].to_numpy(), atol=1e-5
        )
