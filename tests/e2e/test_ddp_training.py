"""Paper B training under DDP: 2 CPU processes (gloo), through `plankflux train` and its
older alias `plankflux-train` (DDP re-runs the command in each new process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("command", "debug", "task"),
    [(["plankflux", "train"], "clip_tiny", "clip"), (["plankflux-train"], "dino_tiny", "dino")],
)
def test_two_process_training_evaluates_once_on_rank_zero(tmp_path, command, debug, task):
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "PLANKFLUX_DATA_DIR": str(tmp_path / "data"),
        "PLANKFLUX_LOG_DIR": str(tmp_path / "logs"),
        "OMP_NUM_THREADS": "1",
    }
    # SyncBatchNorm (conf/trainer/ddp.yaml) needs GPUs: off for gloo on CPU.
    result = subprocess.run(
        [
            str(BIN / command[0]),
            *command[1:],
            f"debug={debug}",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.sync_batchnorm=false",
            "trainer.max_epochs=1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    (run,) = (tmp_path / "logs" / task / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["best_val_loss"]) and metrics["epochs_trained"] == 1
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert not (run / "checkpoints" / "last.ckpt").exists()  # removed once finished
    (evaluation,) = (run / "knn").iterdir()
    embeddings = np.load(evaluation / "embeddings.npz")
    assert sorted(embeddings["index"]) == list(range(60))  # every pair, once (rank 0)
