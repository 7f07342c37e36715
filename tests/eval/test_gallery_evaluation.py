"""Embedding a data set and evaluating it fold by fold (plankflux.eval.gallery_evaluation)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from torch import nn

from plankflux.datamodules.cytosense import CytoSenseDataModule, target_datamodule
from plankflux.eval.gallery_evaluation import (
    evaluate_folds,
    method_description,
    usable_setups,
    write_evaluation,
)
from plankflux.eval.knn import SETUPS


def _embeddings() -> dict[str, np.ndarray]:
    """Rows 0–3 class 0 at e1, rows 4–7 class 1 at e2, row 8 class 1 but at e1;
    stored in reverse row order so lookups must go through ``index``."""
    e1, e2 = np.eye(4, dtype=np.float32)[:2]
    image = np.stack([e1] * 4 + [e2] * 4 + [e1])
    labels = np.array([0] * 4 + [1] * 5)
    order = np.arange(9)[::-1]
    return {"index": order, "label": labels[order], "image": image[order]}


def test_each_fold_uses_its_own_gallery_and_query_rows():
    folds = {
        0: (np.array([0, 1, 4, 5]), np.array([2, 6])),  # both right
        3: (np.array([0, 4]), np.array([3, 8])),  # row 8 looks like class 0: one wrong
    }
    results = evaluate_folds(_embeddings(), folds, setups=["I->I"], n_values=[1], draws=1)
    assert list(results.columns[:4]) == ["fold", "setup", "n_per_class", "draw"]
    assert results["fold"].tolist() == [0, 3]
    assert results["accuracy"].tolist() == [1.0, 0.5]
    # fold 3: class 0 predicted twice (precision 1/2), class 1 never (precision 0)
    assert results["macro_precision"].tolist() == [1.0, 0.25]
    assert results["macro_recall"].tolist() == [1.0, 0.5]


def test_image_only_models_keep_the_setups_they_can_do():
    assert usable_setups(SETUPS, {"image": np.zeros((1, 2))}) == ("I->I",)
    assert usable_setups(SETUPS, {"image": 0, "profile": 0}) == SETUPS


def test_method_description_reads_the_systems_hyperparameters():
    class Clip(nn.Module):
        method_name = "clip"
        hparams = {
            "loss": "siglip",
            "image_tower": {"name": "vit_tiny_patch16_224"},
            "profile_tower": {"name": "bilstm", "hidden": 128},
        }

    class Dino(nn.Module):
        method_name = "dino"
        hparams = {"image_tower": {"name": "efficientnet_b0"}}

    assert method_description(Clip()) == {
        "model": "clip",
        "loss": "siglip",
        "image_tower": "vit_tiny_patch16_224",
        "profile_tower": "bilstm",
    }
    assert method_description(Dino()) == {
        "model": "dino",
        "loss": None,
        "image_tower": "efficientnet_b0",
        "profile_tower": None,
    }


def test_write_evaluation_writes_the_summary_and_description_last(tmp_path):
    folds = {0: (np.array([0, 1, 4, 5]), np.array([2, 6])), 1: (np.array([0, 4]), np.array([3, 8]))}
    results = evaluate_folds(_embeddings(), folds, setups=["I->I"], n_values=[1], draws=1)
    out = write_evaluation(tmp_path / "knn" / "LAB", results, _embeddings(), {"model": "clip"})
    summary = pd.read_csv(out / "knn_summary.csv")
    assert summary["accuracy_mean"].tolist() == [0.75]  # over folds: (1 + 0.5) / 2
    assert summary["accuracy_sd"].tolist() == pytest.approx([np.std([1, 0.5], ddof=1)])
    assert (out / "knn_table.md").read_text().splitlines()[2] == "| I->I | 75.0 ± 35.4 |"
    assert json.loads((out / "evaluation.json").read_text()) == {"model": "clip"}
    assert np.array_equal(np.load(out / "embeddings.npz")["index"], _embeddings()["index"])


def test_targets_inherit_the_training_data_sizes(tmp_path, caplog):
    like = CytoSenseDataModule(
        str(tmp_path / "lab"),
        image_size=32,
        image_pad_size=36,
        profile_length=40,
        profile_pad_length=44,
        batch_size=7,
    )
    target = target_datamodule("SEA", {"root": str(tmp_path / "sea"), "_target_": "ignored"}, like)
    assert target.name == "SEA" and target.root == tmp_path / "sea"
    hp = target.hparams
    assert (hp.image_size, hp.image_pad_size, hp.profile_length, hp.batch_size) == (32, 36, 40, 7)
    own = target_datamodule("SEA", {"root": str(tmp_path / "sea"), "image_size": 64}, like)
    assert own.hparams.image_size == 64
    assert target_datamodule("SEA", like, None) is like  # already built by Hydra
    built = CytoSenseDataModule(str(tmp_path / "sea"), name="SEA", profile_length=40)
    with caplog.at_level(logging.WARNING):
        assert target_datamodule("SEA", built, like) is built
    assert "SEA differs from the training data in ['image_size']: [224] vs [32]" in caplog.text


def test_markdown_cell_without_sd_shows_the_mean_only():
    from plankflux.eval.gallery_evaluation import markdown_table

    summary = pd.DataFrame(
        {
            "setup": ["I->I", "I->I"],
            "n_per_class": [1, 2],
            "accuracy_mean": [0.5, 0.25],
            "accuracy_sd": [np.nan, 0.1],
        }
    )
    assert markdown_table(summary).splitlines()[2] == "| I->I | 50.0 | 25.0 ± 10.0 |"


def test_a_module_without_method_name_is_refused():
    with pytest.raises(ValueError, match="no method_name"):
        method_description(nn.Linear(1, 1))
