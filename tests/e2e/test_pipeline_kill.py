"""A pipeline killed (SIGKILL) in the middle of a member's training, then rerun, ends
with byte-identical outputs to an uninterrupted run.

The kills land while the out-of-domain member trains and, after a restart, while the
retrained member trains (both after that member wrote a ``best.ckpt``, before it
finished). A temporary checkpoint file such as a kill during a write leaves behind is
planted too. Training is deterministic on the CPU, so a member restarted from scratch
retrains to the same weights; what the test guards is that the stale ``best.ckpt`` of
the killed run is replaced rather than kept beside a ``best-v1.ckpt``, and that no
partial file survives.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ARGS = [
    "experiment=pipeline_demo",
    "data=synthetic_tiny",
    "members=[0]",
    "trainer.max_epochs=3",
    "proposals.k=10",
    "minboost.min_verified=5",
    "minboost.k=30",
    "treatments=[verify]",
]
COMPARED = (
    "ood/scores.parquet",
    "proposals/manifest.csv",
    "verified.csv",
    "minboost/manifest.csv",
    "minboost_verified.csv",
    "labels_verify.csv",
    "retrain/verify/scores.parquet",
    "flux/flux_by_sample.csv",
    "flux/flux_summary.csv",
)


def _command(ws: Path) -> list[str]:
    return [str(BIN / "plankflux-pipeline"), *ARGS, f"hydra.run.dir={ws}"]


def _env(tmp: Path) -> dict:
    return {
        **os.environ,
        "WANDB_MODE": "offline",
        "PLANKFLUX_DATA_DIR": str(tmp / "data"),
        "PLANKFLUX_LOG_DIR": str(tmp / "logs"),
    }


def _run(tmp: Path, ws: Path) -> None:
    done = subprocess.run(_command(ws), env=_env(tmp), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]


def _kill_while_training(tmp: Path, ws: Path, member: Path) -> None:
    """Start the pipeline; SIGKILL it once ``member`` has a best.ckpt but no metrics.json."""
    process = subprocess.Popen(
        _command(ws),
        env=_env(tmp),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if (member / "checkpoints/best.ckpt").exists():
                break
            time.sleep(0.01)
        assert process.poll() is None, "the pipeline ended before it could be killed"
        assert not (member / "metrics.json").exists(), "the member finished before the kill"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_killed_in_member_training_resumes_to_identical_outputs(tmp_path):
    reference, killed = tmp_path / "logs/reference", tmp_path / "logs/killed"
    _run(tmp_path, reference)

    _kill_while_training(tmp_path, killed, killed / "ood/member_0")
    leftover = killed / "ood/member_0/checkpoints/.last.ckpt.4242.deadbeef.tmp"
    leftover.write_bytes(b"half a checkpoint")
    _kill_while_training(tmp_path, killed, killed / "retrain/verify/member_0")
    _run(tmp_path, killed)

    for name in COMPARED:
        assert (killed / name).read_bytes() == (reference / name).read_bytes(), name
    ours = json.loads((killed / "summary.json").read_text())
    theirs = json.loads((reference / "summary.json").read_text())
    ours.pop("flux_dir"), theirs.pop("flux_dir")
    assert ours == theirs
    checkpoints = sorted(p.name for p in killed.rglob("*.ckpt*"))
    assert checkpoints == ["best.ckpt", "best.ckpt"], checkpoints  # last.ckpt: removed when done
    assert not leftover.exists()
