"""Paper B through plankflux train: tiny CLIP pre-training, then the nine-setup k-NN table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from plankflux.eval.knn import SETUPS
from plankflux.layout import CONFIG_DIR

BIN = Path(sys.executable).parent


@pytest.mark.slow  # a subprocess
def test_tiny_in_domain_experiment_writes_nine_setup_table(tmp_path):
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "PLANKFLUX_DATA_DIR": str(tmp_path / "data"),
        "PLANKFLUX_LOG_DIR": str(tmp_path / "logs"),
    }
    result = subprocess.run(
        [str(BIN / "plankflux-train"), "debug=clip_tiny", "loss=siglip"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    (run,) = (tmp_path / "logs" / "clip" / "runs").iterdir()
    assert (run / "checkpoints" / "best.ckpt").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["best_val_loss"]) and np.isfinite(metrics["test"]["test/loss"])
    evaluation = run / "knn" / "LAB"  # in-domain: the held-out fold of the training data
    assert sorted(p.name for p in (run / "knn").iterdir()) == ["LAB"]
    description = json.loads((evaluation / "evaluation.json").read_text())
    assert description == {
        **description,
        "model": "clip",
        "loss": "siglip",
        "image_tower": "tiny_cnn",
        "profile_tower": "cnn",
        "train_data": "LAB",
        "eval_data": "LAB",
        "folds": [0],
        "draws": 2,
    }
    results = pd.read_csv(evaluation / "knn_results.csv")
    assert set(results["fold"]) == {0} and len(results) == 9 * 5 * 2
    summary = pd.read_csv(evaluation / "knn_summary.csv")
    assert list(dict.fromkeys(summary["setup"])) == list(SETUPS)
    assert sorted(summary["n_per_class"].unique()) == [1, 2, 4, 8, 16]
    assert summary["accuracy_mean"].between(0, 1).all() and (summary["n"] == 2).all()
    table = (evaluation / "knn_table.md").read_text().splitlines()
    assert table[0] == "| setup | n=1 | n=2 | n=4 | n=8 | n=16 |" and len(table) == 2 + 9
    embeddings = np.load(evaluation / "embeddings.npz")
    assert embeddings["image"].shape[1] == embeddings["profile"].shape[1] == 512
    assert np.allclose(np.linalg.norm(embeddings["image"], axis=1), 1, atol=1e-4)
    # SigLIP's learnable bias was trained and stored.
    import torch

    state = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    bias = state["clip.logit_bias"]
    assert bias.item() != pytest.approx(-10.0, abs=1e-9)


@pytest.mark.parametrize(
    "image",
    [
        "efficientnet_b0",
        "convnext_femto",
        "vit_tiny_patch16_224",
        "efficientnet_b4",
        "convnext_tiny",
        "vit_small_patch16_224",
        "efficientnet_lite0",
        "tiny_cnn",
    ],
)
@pytest.mark.parametrize("profile", ["cnn", "bilstm", "transformer"])
def test_every_tower_and_loss_config_composes(image, profile):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "experiment=clip_lab",
                f"encoder/image={image}",
                f"encoder/profile={profile}",
                "loss=siglip",
                "data.root=/nowhere",
            ],
        )
    assert cfg.model._target_ == "plankflux.models.contrastive.ContrastiveModule"
    assert cfg.model.image_tower.name == image and cfg.model.profile_tower.name == profile
    assert cfg.model.loss == "siglip" and cfg.model.init_bias == -10.0
    assert cfg.callbacks.early_stopping.patience == 30


@pytest.mark.parametrize(
    ("data", "train_name", "evaluated"),
    [
        ("synthetic_uto_tiny", "UTO", ["LAB", "SEA"]),  # Table 4: UTO→LAB, UTO→SEA
        ("synthetic_lab_uto_tiny", "LAB+UTO", ["SEA"]),
    ],  # Table 5: LAB+UTO→SEA (LAB is seen)
)
@pytest.mark.slow  # a subprocess
def test_cross_domain_experiment_evaluates_every_fold_of_each_target(
    tmp_path, data, train_name, evaluated
):
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "PLANKFLUX_DATA_DIR": str(tmp_path / "data"),
        "PLANKFLUX_LOG_DIR": str(tmp_path / "logs"),
    }
    targets = "data@callbacks.knn_evaluation.targets"
    result = subprocess.run(
        [
            str(BIN / "plankflux-train"),
            "experiment=clip_cross_domain",
            "debug=clip_tiny",
            f"data={data}",
            f"{targets}.LAB=synthetic_lab_tiny",
            f"{targets}.SEA=synthetic_sea_tiny",
            "trainer.max_epochs=1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    (run,) = (tmp_path / "logs" / "clip" / "runs").iterdir()
    # Pre-training data has no labelled test fold: only the targets are evaluated.
    assert sorted(p.name for p in (run / "knn").iterdir()) == evaluated
    for name in evaluated:
        folder = run / "knn" / name
        description = json.loads((folder / "evaluation.json").read_text())
        assert (description["train_data"], description["eval_data"]) == (train_name, name)
        assert description["folds"] == [0, 1, 2, 3, 4]
        results = pd.read_csv(folder / "knn_results.csv")
        assert sorted(results["fold"].unique()) == [0, 1, 2, 3, 4]
        assert len(results) == 5 * 9 * 5 * 2  # folds × setups × n × draws
        embeddings = np.load(folder / "embeddings.npz")
        root = tmp_path / "data" / f"synthetic_cytosense_{name.lower()}_tiny_seed0"
        assert len(embeddings["index"]) == len(pd.read_csv(root / "annotations.csv"))


@pytest.mark.parametrize(
    ("data", "name", "roots", "split"),
    [
        ("cytosense_lab", "LAB", 1, "fold"),
        ("cytosense_sea", "SEA", 1, "fold"),
        ("cytosense_uto", "UTO", 1, "pretrain"),
        ("cytosense_lab_uto", "LAB+UTO", 2, "pretrain"),
        *[
            (f"synthetic_{kind}_{scale}", name, roots, split)
            for scale in ("tiny", "demo", "paper")
            for kind, name, roots, split in [
                ("lab", "LAB", 1, "fold"),
                ("sea", "SEA", 1, "fold"),
                ("uto", "UTO", 1, "pretrain"),
                ("lab_uto", "LAB+UTO", 2, "pretrain"),
            ]
        ],
    ],
)
def test_every_cytosense_data_config_builds_its_datamodule(data, name, roots, split):
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["experiment=clip_lab", f"data={data}"])
    datamodule = instantiate(cfg.data, _convert_="all")  # no file is read before setup
    hp = datamodule.hparams
    assert (datamodule.name, len(datamodule.roots), hp.split) == (name, roots, split)
    if data.endswith("_paper"):
        assert (hp.image_size, hp.batch_size) == (224, 512)


@pytest.mark.slow  # a subprocess
def test_cross_domain_sweep_to_table_4(tmp_path):
    """The Table 4 recipe end to end: a real Hydra multirun over the pre-training data
    (LAB, UTO), each model evaluated on the data sets it did not train on, then
    ``plankflux tables clip`` turns the sweep folder into Table 4's rows."""
    from plankflux.cli.main import main

    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "PLANKFLUX_DATA_DIR": str(tmp_path / "data"),
        "PLANKFLUX_LOG_DIR": str(tmp_path / "logs"),
    }
    targets = "data@callbacks.knn_evaluation.targets"
    result = subprocess.run(
        [
            str(BIN / "plankflux-train"),
            "-m",
            "experiment=clip_cross_domain",
            "debug=clip_tiny",
            "data=synthetic_lab_tiny,synthetic_uto_tiny",
            f"{targets}.LAB=synthetic_lab_tiny",
            f"{targets}.SEA=synthetic_sea_tiny",
            "trainer.max_epochs=1",
            "task_name=cross",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    (sweep,) = (tmp_path / "logs" / "cross" / "multiruns").iterdir()
    assert (
        main(
            [
                "tables",
                "clip",
                str(sweep),
                "--out",
                str(tmp_path / "tables"),
                "--table",
                "4",
                "--n",
                "2",
            ]
        )
        == 0
    )
    table = pd.read_csv(tmp_path / "tables" / "table4.csv")
    assert table["domains"].tolist() == ["LAB→SEA", "UTO→LAB", "UTO→SEA"]
    assert (table["runs"] == 1).all()
    # Each cell is the mean over 5 folds × 2 draws of that evaluation's own results.
    for folder in sweep.glob("*/knn/SEA"):
        train = json.loads((folder / "evaluation.json").read_text())["train_data"]
        own = pd.read_csv(folder / "knn_results.csv")
        cell = own[(own["setup"] == "I+P->I+P") & (own["n_per_class"] == 2)]["accuracy"]
        assert len(cell) == 5 * 2
        row = table[table["domains"] == f"{train}→SEA"]
        assert row["I+P->I+P_mean"].item() == pytest.approx(100 * cell.mean())
        assert row["I+P->I+P_sd"].item() == pytest.approx(100 * cell.std(ddof=1))


@pytest.mark.slow  # a subprocess
def test_knn_command_reproduces_the_in_domain_evaluation_and_runs_on_new_data(tmp_path):
    """``plankflux knn`` on the checkpoint gives the training run's own in-domain numbers
    (same embeddings, same galleries), and evaluates a data set it never saw."""
    from plankflux.cli.main import main

    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "PLANKFLUX_DATA_DIR": str(tmp_path / "data"),
        "PLANKFLUX_LOG_DIR": str(tmp_path / "logs"),
    }
    result = subprocess.run(
        [str(BIN / "plankflux-train"), "debug=clip_tiny", "trainer.max_epochs=1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    (run,) = (tmp_path / "logs" / "clip" / "runs").iterdir()
    lab = tmp_path / "data" / "synthetic_cytosense_lab_tiny_seed0"
    out = tmp_path / "again"
    assert (
        main(
            [
                "knn",
                str(run / "checkpoints" / "best.ckpt"),
                str(lab),
                "--out",
                str(out),
                "--name",
                "LAB",
                "--folds",
                "0",
                "--draws",
                "2",
            ]
        )
        == 0
    )
    mine = pd.read_csv(out / "knn_results.csv")
    theirs = pd.read_csv(run / "knn" / "LAB" / "knn_results.csv")
    pd.testing.assert_frame_equal(mine, theirs, check_exact=False, rtol=1e-6)
    description = json.loads((out / "evaluation.json").read_text())
    assert (description["train_data"], description["eval_data"]) == ("LAB", "LAB")

    sea = tmp_path / "SEA"
    assert main(["synth", "cytosense", "--kind", "sea", "--scale", "tiny", "--out", str(sea)]) == 0
    assert (
        main(
            [
                "knn",
                str(run / "checkpoints" / "best.ckpt"),
                str(sea),
                "--out",
                str(tmp_path / "sea_eval"),
                "--draws",
                "1",
                "--n",
                "1",
                "2",
            ]
        )
        == 0
    )
    results = pd.read_csv(tmp_path / "sea_eval" / "knn_results.csv")
    assert len(results) == 5 * 9 * 2 * 1 and results["accuracy"].between(0, 1).all()
    assert json.loads((tmp_path / "sea_eval" / "evaluation.json").read_text())["eval_data"] == "SEA"
    assert main(["knn", str(lab / "annotations.csv"), str(sea), "--out", str(tmp_path / "x")]) == 1


@pytest.mark.parametrize(
    ("experiment", "debug"),
    [("clip_lab", "clip_tiny"), ("clip_cross_domain", "clip_tiny"), ("dino_lab", "dino_tiny")],
)
def test_paper_experiments_load_with_workers_and_their_cpu_debug_runs_without(experiment, debug):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        paper = compose("train", overrides=[f"experiment={experiment}"])
        tiny = compose("train", overrides=[f"experiment={experiment}", f"debug={debug}"])
    assert (paper.data.num_workers, paper.data.pin_memory) == (8, True)
    assert (tiny.data.num_workers, tiny.data.pin_memory) == (0, False)
    assert tiny.trainer.accelerator == "cpu" and paper.trainer.accelerator != "cpu"
