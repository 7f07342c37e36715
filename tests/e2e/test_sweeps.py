"""Sweeps (``-m``) through Hydra's launchers, tracked one W&B run per job, with DDP inside,
and a failing job that leaves the others' results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from wandb_offline import offline_runs

BIN = Path(sys.executable).parent


def _train(tmp_path: Path, *overrides: str, multirun: bool = True, ok: bool = True):
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "PLANKFLUX_DATA_DIR": str(tmp_path / "data"),
        "PLANKFLUX_LOG_DIR": str(tmp_path / "logs"),
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run(
        [str(BIN / "plankflux-train"), *(["-m"] if multirun else []), "debug=tiny", *overrides],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if ok:
        assert result.returncode == 0, result.stderr[-4000:]
    return result


def _jobs(tmp_path: Path, task: str = "train") -> list[Path]:
    (sweep,) = (tmp_path / "logs" / task / "multiruns").iterdir()
    return sorted((p for p in sweep.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def _finished(job: Path) -> dict:
    metrics = json.loads((job / "metrics.json").read_text())
    assert (job / "checkpoints" / "best.ckpt").is_file()
    assert (job / "test_predictions.csv").is_file()
    return metrics


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_launcher_runs_both_jobs(tmp_path, launcher):
    _train(tmp_path, f"hydra/launcher={launcher}", "seed=0,1", "trainer.max_epochs=1")
    jobs = _jobs(tmp_path)
    assert [j.name for j in jobs] == ["0", "1"]
    assert [_finished(j)["seed"] for j in jobs] == [0, 1]
    if launcher == "submitit_local":
        logs = list((jobs[0].parent / ".submitit").glob("*/*_log.out"))
        assert len(logs) == 2  # one submitit job each


def test_offline_wandb_sweep_gives_one_run_per_job_in_one_group(tmp_path):
    _train(tmp_path, "logger=many", "seed=0,1", "trainer.max_epochs=1")
    jobs = _jobs(tmp_path)
    runs = [offline_runs(job) for job in jobs]
    assert [len(r) for r in runs] == [1, 1]  # each job its own run, in its own folder
    (first,), (second,) = runs
    assert first["id"] != second["id"]
    assert first["group"] == second["group"] == f"train/{jobs[0].parent.name}"
    assert (first["name"], second["name"]) == ("seed=0", "seed=1")
    assert "seed=1" in second["tags"] and "train" in second["tags"]
    for run, job in zip((first, second), jobs, strict=True):
        assert run["config"]["seed"] == int(job.name)  # the resolved config
        assert len(run["metrics"]["val/loss"]) == 1
        logged = run["metrics"]["test/acc"][-1]
        assert logged == pytest.approx(_finished(job)["test"]["test/acc"], abs=1e-6)


def test_members_get_one_wandb_run_each(tmp_path):
    _train(tmp_path, "logger=wandb", "members=[0,1]", "trainer.max_epochs=1", multirun=False)
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    first, second = (offline_runs(run / f"member_{seed}") for seed in (0, 1))
    assert len(first) == len(second) == 1
    assert first[0]["id"] != second[0]["id"]
    assert first[0]["group"] == second[0]["group"] == f"train/{run.name}"
    assert [first[0]["name"], second[0]["name"]] == ["member_0", "member_1"]
    assert second[0]["config"]["seed"] == 1


def test_tensorboard_logger_writes_event_files(tmp_path):
    _train(tmp_path, "logger=tensorboard", "trainer.max_epochs=1", multirun=False)
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run / "tensorboard"))
    accumulator.Reload()
    assert "val/loss" in accumulator.Tags()["scalars"]


def test_ddp_inside_a_sweep_with_the_default_sweep_dir(tmp_path):
    _train(
        tmp_path,
        "seed=0,1",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",  # (SyncBatchNorm, on in trainer=ddp, is off on CPUs)
        "trainer.max_epochs=1",
    )
    assert len(list((tmp_path / "logs" / "train" / "multiruns").iterdir())) == 1
    jobs = _jobs(tmp_path)
    assert [_finished(j)["seed"] for j in jobs] == [0, 1]
    for job in jobs:
        assert not list(job.glob("*.rank*.*"))  # rank parts merged and removed
        assert (job / "train_ddp_process_1.log").is_file()  # rank 1 ran in this folder


def test_a_failing_job_leaves_the_others_results(tmp_path, capsys):
    # AdamW refuses a negative learning rate: job 0 fails, job 1 still runs.
    result = _train(tmp_path, "model.optimizer.lr=-1.0,1e-3", "trainer.max_epochs=1", ok=False)
    assert result.returncode != 0
    failed, finished = _jobs(tmp_path)
    assert not (failed / "metrics.json").exists()
    assert _finished(finished)["epochs_trained"] == 1
    # The table is built from the finished job; the failed one is named.
    from plankflux.cli.main import main as cli

    assert cli(["tables", "ensemble", str(failed.parent), "--out", str(tmp_path / "t")]) == 0
    err = capsys.readouterr().err
    assert "1 run(s) unfinished or failed, left out of the tables" in err and str(failed) in err
    assert (tmp_path / "t").is_dir()
