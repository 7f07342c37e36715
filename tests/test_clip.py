"""Paper B through plankflux-train: tiny CLIP pre-training, then the nine-setup k-NN table."""

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
from plankflux.train import CONFIG_DIR

BIN = Path(sys.executable).parent


def test_tiny_in_domain_experiment_writes_nine_setup_table(tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline", "PLANKFLUX_DATA_DIR": str(tmp_path / "data"),
           "PLANKFLUX_LOG_DIR": str(tmp_path / "logs")}
    result = subprocess.run([str(BIN / "plankflux-train"), "debug=clip_tiny", "loss=siglip"],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    (run,) = (tmp_path / "logs" / "clip" / "runs").iterdir()
    assert (run / "checkpoints" / "best.ckpt").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["best_val_loss"]) and np.isfinite(metrics["test"]["test/loss"])
    summary = pd.read_csv(run / "knn_summary.csv")
    assert list(dict.fromkeys(summary["setup"])) == list(SETUPS)
    assert sorted(summary["n_per_class"].unique()) == [1, 2, 4, 8, 16]
    assert summary["accuracy_mean"].between(0, 1).all() and (summary["n"] == 2).all()
    table = (run / "knn_table.md").read_text().splitlines()
    assert table[0] == "| setup | n=1 | n=2 | n=4 | n=8 | n=16 |" and len(table) == 2 + 9
    embeddings = np.load(run / "embeddings.npz")
    assert embeddings["image"].shape[1] == embeddings["profile"].shape[1] == 512
    assert np.allclose(np.linalg.norm(embeddings["image"], axis=1), 1, atol=1e-4)
    # SigLIP's learnable bias was trained and stored.
    import torch

    state = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    assert "logit_bias" in state and state["logit_bias"].item() != pytest.approx(-10.0, abs=1e-9)


@pytest.mark.parametrize("image", ["efficientnet_b0", "convnext_femto", "vit_tiny_patch16_224",
                                   "efficientnet_b4", "convnext_tiny", "vit_small_patch16_224",
                                   "efficientnet_lite0", "tiny_cnn"])
@pytest.mark.parametrize("profile", ["cnn", "bilstm", "transformer"])
def test_every_tower_and_loss_config_composes(image, profile):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["experiment=clip_lab", f"encoder/image={image}",
                                          f"encoder/profile={profile}", "loss=siglip",
                                          "data.root=/nowhere"])
    assert cfg.model._target_ == "plankflux.models.contrastive.ContrastiveModule"
    assert cfg.model.image_tower.name == image and cfg.model.profile_tower.name == profile
    assert cfg.model.loss == "siglip" and cfg.model.init_bias == -10.0
    assert cfg.callbacks.early_stopping.patience == 30
