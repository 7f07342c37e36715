"""A job killed mid-training resumes from last.ckpt to the result of an uninterrupted run
(CPU, tiny scale): the shuffle order and the random draws of every epoch depend only on
the seed and the epoch (plankflux.datamodules.loading.EpochShuffle)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

BIN = Path(sys.executable).parent
EPOCHS = "trainer.max_epochs=4"


def _command(run: Path, *overrides: str) -> list[str]:
    return [str(BIN / "plankflux-train"), "debug=tiny", EPOCHS, f"hydra.run.dir={run}", *overrides]


def _env(tmp_path: Path) -> dict:
    return {
        **os.environ,
        "PLANKFLUX_DATA_DIR": str(tmp_path / "data"),
        "PLANKFLUX_LOG_DIR": str(tmp_path / "logs"),
        "OMP_NUM_THREADS": "1",
    }


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    env = _env(tmp_path)
    full = tmp_path / "full"
    subprocess.run(_command(full), env=env, check=True, capture_output=True, timeout=600)

    killed = tmp_path / "killed"
    last = killed / "checkpoints" / "last.ckpt"
    process = subprocess.Popen(
        _command(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert not (killed / "metrics.json").exists(), "the run finished before it was killed"
    stopped_at = torch.load(last, weights_only=True, map_location="cpu")["epoch"]
    assert stopped_at < 3

    subprocess.run(
        _command(killed, f"ckpt_path={last}"), env=env, check=True, capture_output=True, timeout=600
    )
    expected = json.loads((full / "metrics.json").read_text())
    resumed = json.loads((killed / "metrics.json").read_text())
    assert resumed["epochs_trained"] == expected["epochs_trained"]
    assert resumed["best_val_loss"] == pytest.approx(expected["best_val_loss"], rel=1e-6)
    for key, value in expected["test"].items():
        assert resumed["test"][key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
