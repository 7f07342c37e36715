"""Ensembles: members in one process, resume, ensemble prediction, refusal, determinism."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from plankflux.data.classes import TRAP_CLASSES
from plankflux.models.ensemble import EnsemblePredictor, find_member_checkpoints

BIN = Path(sys.executable).parent


def _cli(tmp_path: Path, command: str, *args: str, ok: bool = True):
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "PLANKFLUX_DATA_DIR": str(tmp_path / "data"),
        "PLANKFLUX_LOG_DIR": str(tmp_path / "logs"),
    }
    result = subprocess.run(
        [str(BIN / command), *args], env=env, capture_output=True, text=True, timeout=600
    )
    if ok:
        assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("ensemble")
    run_dir = tmp / "logs" / "ens"
    _cli(tmp, "plankflux-train", "debug=tiny", "members=[0,1]", f"hydra.run.dir={run_dir}")
    return tmp, run_dir


def test_members_train_one_after_another(ensemble_run):
    _, run_dir = ensemble_run
    for seed in (0, 1):
        member = run_dir / f"member_{seed}"
        assert (member / "checkpoints" / "best.ckpt").is_file()
        predictions = pd.read_csv(member / "test_predictions.csv", keep_default_na=False)
        assert list(predictions.columns[:3]) == ["particle_id", "label", "predicted"]
        assert set(predictions["predicted"]) <= set(TRAP_CLASSES)
        counts = pd.read_csv(member / "class_counts.csv")
        assert list(counts["class"]) == list(TRAP_CLASSES)
        assert counts["test"].sum() == len(predictions)
    assert find_member_checkpoints(run_dir) == [
        run_dir / "member_0" / "checkpoints" / "best.ckpt",
        run_dir / "member_1" / "checkpoints" / "best.ckpt",
    ]


def test_rerun_skips_complete_members(ensemble_run):
    tmp, run_dir = ensemble_run
    before = (run_dir / "member_1" / "checkpoints" / "best.ckpt").stat().st_mtime_ns
    result = _cli(tmp, "plankflux-train", "debug=tiny", "members=[0,1]", f"hydra.run.dir={run_dir}")
    assert result.stderr.count("is complete") + result.stdout.count("is complete") == 2
    assert (run_dir / "member_1" / "checkpoints" / "best.ckpt").stat().st_mtime_ns == before


def test_predict_writes_per_member_scores(ensemble_run):
    tmp, run_dir = ensemble_run
    out = tmp / "logs" / "pred"
    _cli(
        tmp,
        "plankflux-predict",
        f"checkpoints={run_dir}",
        "data=synthetic_tiny",
        "trainer=cpu",
        f"hydra.run.dir={out}",
    )
    scores = pd.read_parquet(out / "scores.parquet")
    assert list(scores.columns) == ["particle_id", "member", *TRAP_CLASSES]
    particles = pd.read_csv(
        tmp / "data" / "synthetic_trap_tiny_seed0" / "particles.csv", keep_default_na=False
    )
    rr = particles.loc[particles["domain"] == "RR", "particle_id"].tolist()
    assert scores["member"].tolist() == [0] * len(rr) + [1] * len(rr)
    assert scores["particle_id"].tolist() == rr * 2  # campaign order, unlabelled included
    assert scores[list(TRAP_CLASSES)].sum(axis=1).to_numpy() == pytest.approx(1.0, abs=1e-5)
    # Member 0's argmax equals what member 0 predicted for the labelled test particles.
    test = pd.read_csv(run_dir / "member_0" / "test_predictions.csv", keep_default_na=False)
    member0 = scores[scores["member"] == 0].set_index("particle_id")[list(TRAP_CLASSES)]
    assert (
        member0.loc[test["particle_id"]].idxmax(axis=1).to_numpy() == test["predicted"].to_numpy()
    ).all()


def test_predict_under_ddp_merges_rank_parts(ensemble_run):
    """Two gloo processes on the CPU write one table equal to the one-process table."""
    tmp, run_dir = ensemble_run
    single, ddp = tmp / "logs" / "pred_single", tmp / "logs" / "pred_ddp"
    for out, trainer in (
        (single, ["trainer=cpu"]),
        (ddp, ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]),
    ):
        _cli(
            tmp,
            "plankflux-predict",
            f"checkpoints={run_dir}",
            "data=synthetic_tiny",
            *trainer,
            f"hydra.run.dir={out}",
        )
    a = pd.read_parquet(single / "scores.parquet")
    b = pd.read_parquet(ddp / "scores.parquet")
    assert b["particle_id"].tolist() == a["particle_id"].tolist()
    assert b["member"].tolist() == a["member"].tolist()
    assert b[list(TRAP_CLASSES)].to_numpy() == pytest.approx(
        a[list(TRAP_CLASSES)].to_numpy(), abs=1e-5
    )
    assert not list(ddp.glob("scores.rank*"))  # the parts were merged and removed


def test_predict_refuses_other_image_size(ensemble_run):
    tmp, run_dir = ensemble_run
    result = _cli(
        tmp,
        "plankflux-predict",
        f"checkpoints={run_dir}",
        "data=synthetic_tiny",
        "data.image_size=48",
        "trainer=cpu",
        ok=False,
    )
    assert result.returncode != 0
    assert "image_size: data has 48, checkpoint has 32" in result.stderr


def test_members_must_agree(ensemble_run, tmp_path):
    _, run_dir = ensemble_run
    ckpt = torch.load(run_dir / "member_1" / "checkpoints" / "best.ckpt", weights_only=True)
    ckpt["hyper_parameters"]["resize_mode"] = "pad"
    other = tmp_path / "other.ckpt"
    torch.save(ckpt, other)
    with pytest.raises(ValueError, match="resize_mode: data has 'pad', checkpoint has 'resize'"):
        EnsemblePredictor([run_dir / "member_0" / "checkpoints" / "best.ckpt", other])


def test_same_seed_same_weights_and_predictions(ensemble_run):
    tmp, run_dir = ensemble_run
    single = tmp / "logs" / "single"
    _cli(tmp, "plankflux-train", "debug=tiny", "seed=0", f"hydra.run.dir={single}")
    a = torch.load(single / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    b = torch.load(run_dir / "member_0" / "checkpoints" / "best.ckpt", weights_only=True)[
        "state_dict"
    ]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (single / "test_predictions.csv").read_bytes() == (
        run_dir / "member_0" / "test_predictions.csv"
    ).read_bytes()


def test_ensemble_metrics_tables(ensemble_run, tmp_path):
    from plankflux.cli.main import main as cli

    _, run_dir = ensemble_run
    assert cli(["tables", "ensemble", str(run_dir), "--out", str(tmp_path)]) == 0
    per_member = pd.read_csv(tmp_path / "metrics_14class_per_member.csv", keep_default_na=False)
    assert per_member["member"].tolist() == [0] * 16 + [1] * 16
    assert per_member["class"].tolist()[:16] == [*TRAP_CLASSES, "macro", "weighted"]
    summary = pd.read_csv(tmp_path / "metrics_original_summary.csv", keep_default_na=False)
    assert "fiber" in summary["class"].tolist() and "fiber_blur" not in summary["class"].tolist()
    # The confusion matrix agrees with the member's own predictions.
    test = pd.read_csv(run_dir / "member_1" / "test_predictions.csv", keep_default_na=False)
    confusion = pd.read_csv(tmp_path / "confusion_14class_member1.csv").set_index("true")
    assert confusion.to_numpy().sum() == len(test)
    correct = (test["label"] == test["predicted"]).sum()
    assert sum(confusion.at[c, c] for c in TRAP_CLASSES) == correct
