"""The DINO baseline through plankflux train: a tiny run in-process, and the lab configs."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir

from plankflux.cli.hydra_tasks import train as main
from plankflux.layout import CONFIG_DIR


@pytest.mark.parametrize("device_transforms", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_tiny_dino_run_writes_checkpoints_metrics_and_an_image_only_knn_table(
    tmp_path, monkeypatch, device_transforms
):
    # device_transforms: the views are cut from whole batches (plankflux.data.multicrop_batch),
    # from the pair cache, and validation/test read their cached test-time inputs
    monkeypatch.setenv("PLANKFLUX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PLANKFLUX_LOG_DIR", str(tmp_path / "logs"))
    argv = ["plankflux-train", "debug=dino_tiny", f"data.device_transforms={device_transforms}"]
    if device_transforms:
        argv.append(f"data.cache_dir={tmp_path / 'cache'}")
    monkeypatch.setattr(sys, "argv", argv)
    main()  # Hydra's entry point, in this process
    (run,) = (tmp_path / "logs" / "dino" / "runs").iterdir()
    if device_transforms:  # train (prepared pairs), val and test (test-time inputs)
        assert len({p.name[:16] for p in (tmp_path / "cache").glob("*.pairs.json")}) == 3
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert not (run / "checkpoints" / "last.ckpt").exists()  # removed once finished

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_trained"] == 2
    assert np.isfinite(metrics["best_val_loss"]) and np.isfinite(metrics["test"]["test/loss"])
    # K = 256 prototypes: a uniform student would cost log K; the loss is a cross-entropy.
    assert 0 < metrics["best_val_loss"] < 2 * np.log(256)
    logged = pd.read_csv(run / "csv" / "metrics.csv")
    assert logged["val/loss"].notna().sum() == 2
    assert metrics["best_val_loss"] == pytest.approx(logged["val/loss"].min(), rel=1e-5)
    temps = logged.dropna(subset=["train/teacher_temp"])["train/teacher_temp"].tolist()
    assert temps == pytest.approx([0.04, 0.07])  # warm-up over 2 epochs

    state = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    hparams, weights = state["hyper_parameters"], state["state_dict"]
    assert hparams["out_dim"] == 256 and len(hparams["class_names"]) == 6
    assert weights["loss.center"].shape == (256,) and weights["loss.center"].abs().sum() > 0
    student, teacher = weights["student.head.last_v"], weights["teacher.head.last_v"]
    assert student.shape == (256, 32) and not torch.equal(student, teacher)

    description = json.loads((run / "knn" / "LAB" / "evaluation.json").read_text())
    assert (description["model"], description["loss"], description["profile_tower"]) == (
        "dino",
        None,
        None,
    )
    (summary_file,) = run.rglob("knn_summary.csv")
    summary = pd.read_csv(summary_file)
    assert set(summary["setup"]) == {"I->I"}
    assert sorted(summary["n_per_class"].unique()) == [1, 2, 4, 8, 16]
    assert summary["accuracy_mean"].between(0, 1).all() and (summary["n"] == 2).all()
    (embeddings_file,) = run.rglob("embeddings.npz")
    image = np.load(embeddings_file)["image"]
    assert image.shape == (60, 64)  # every pair, the tiny CNN's 64 backbone features
    assert np.allclose(np.linalg.norm(image, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize(
    "image", ["efficientnet_b0", "convnext_femto", "vit_tiny_patch16_224", "tiny_cnn"]
)
def test_dino_lab_composes_with_the_papers_settings(image):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["experiment=dino_lab", f"encoder/image={image}", "data.root=/nowhere"],
        )
    assert cfg.model._target_ == "plankflux.models.dino.DINOModule"
    assert cfg.model.image_tower.name == image
    crops = cfg.data.multicrop
    assert (crops.n_global, crops.global_size, list(crops.global_scale)) == (2, 224, [0.4, 1.0])
    assert (crops.n_local, crops.local_size, list(crops.local_scale)) == (6, 96, [0.1, 0.4])
    assert cfg.model.n_global_crops == crops.n_global
    assert (cfg.model.teacher_temp, cfg.model.teacher_temp_end) == (0.04, 0.07)
    assert cfg.model.momentum == 0.996 and cfg.model.out_dim == 65536
    assert cfg.trainer.max_epochs == 100 and cfg.trainer.accelerator == "gpu"
    assert list(cfg.callbacks.knn_evaluation.setups) == ["I->I"]
    assert cfg.callbacks.early_stopping is None and cfg.callbacks.model_checkpoint.monitor is None
