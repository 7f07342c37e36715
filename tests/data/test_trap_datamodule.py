"""TrapDataModule splits on the synthetic tiny campaign."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plankflux.data.classes import TRAP_CLASSES
from plankflux.datamodules.trap import TrapDataModule

OTHERS = ["FC", "FO", "JC", "SR"]


def _dm(root, **kwargs) -> TrapDataModule:
    args = dict(
        root=str(root), train_domains=OTHERS, target_domain="RR", image_size=32, batch_size=16
    )
    args.update(kwargs)
    dm = TrapDataModule(**args)
    dm.setup("fit")
    return dm


def test_ood_splits(tiny_campaign):
    dm = _dm(tiny_campaign)
    p = dm.campaign.particles
    train, val, test, predict = (dm.split_frame(s) for s in ("train", "val", "test", "predict"))
    assert dm.num_classes == 14 and dm.class_names == TRAP_CLASSES
    assert set(train["domain"]) == set(val["domain"]) == set(OTHERS)
    assert (train["label"] != "").all() and (val["label"] != "").all()
    assert not set(train["particle_id"]) & set(val["particle_id"])
    # 80/20 within each domain.
    for domain in OTHERS:
        n_val, n_all = (
            (val["domain"] == domain).sum(),
            ((train["domain"] == domain).sum() + (val["domain"] == domain).sum()),
        )
        assert abs(n_val - 0.2 * n_all) <= 0.5 * p[p["domain"] == domain]["label"].nunique() + 1
    # test = labelled target; predict = every target particle, unlabelled included.
    assert set(test["domain"]) == {"RR"} and (test["label"] != "").all()
    assert len(test) == ((p["domain"] == "RR") & (p["label"] != "")).sum()
    assert len(predict) == (p["domain"] == "RR").sum() and (predict["label"] == "").any()


def test_same_seed_same_split_and_batch_contents(tiny_campaign):
    a, b = _dm(tiny_campaign), _dm(tiny_campaign)
    for split in ("train", "val", "test", "predict"):
        assert np.array_equal(a.splits[split], b.splits[split])
    c = _dm(tiny_campaign, split_seed=1)
    assert not np.array_equal(a.splits["val"], c.splits["val"])
    batch = next(iter(a.val_dataloader()))
    assert batch["image"].shape[1:] == (3, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64 and (batch["label"] >= 0).all()


def test_in_domain_holds_out_target_test(tiny_campaign):
    dm = _dm(tiny_campaign, train_domains=[*OTHERS, "RR"])
    test = set(dm.split_frame("test")["particle_id"])
    fit = set(dm.split_frame("train")["particle_id"]) | set(dm.split_frame("val")["particle_id"])
    assert test and not test & fit
    assert "RR" in set(dm.split_frame("train")["domain"])


def test_exclude_ambiguous_and_labelled_only_predict(tiny_campaign):
    dm = _dm(tiny_campaign, exclude_ambiguous=True, predict_labelled_only=True)
    for split in ("train", "val", "test"):
        assert not dm.split_frame(split)["ambiguous"].any()
    assert (dm.split_frame("predict")["label"] != "").all()


def test_unknown_domain_is_named(tiny_campaign):
    with pytest.raises(ValueError, match="domain 'XX' is not in"):
        _dm(tiny_campaign, target_domain="XX")


def test_cache_gives_identical_batches(tiny_campaign, tmp_path):
    plain = _dm(tiny_campaign, augment=False)
    cached = _dm(tiny_campaign, augment=False, cache_dir=str(tmp_path / "cache"))
    for x, y in zip(plain.test_dataloader(), cached.test_dataloader(), strict=True):
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["row"], y["row"])


def _digest(root) -> dict[str, str]:
    import hashlib

    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_campaign_files_are_never_modified(tiny_campaign, tmp_path):
    before = _digest(tiny_campaign)
    dm = _dm(tiny_campaign, cache_dir=str(tmp_path / "cache"))
    for split in ("train", "val", "test", "predict"):
        next(iter(getattr(dm, f"{split}_dataloader")()))
    assert _digest(tiny_campaign) == before


def test_skip_unreadable_lists_what_was_skipped(small_campaign, tmp_path):
    from types import SimpleNamespace

    import pandas as pd

    from plankflux.callbacks.skipped_images import SkippedImagesWriter

    (small_campaign / "images" / "RR1_0.png").write_bytes(b"\x89PNG broken")
    strict = TrapDataModule(str(small_campaign), ["FC"], "RR", image_size=16)
    strict.setup("fit")
    with pytest.raises(OSError, match="cannot read image .*RR1_0.png"):
        list(strict.predict_dataloader())
    dm = TrapDataModule(str(small_campaign), ["FC"], "RR", image_size=16, skip_unreadable=True)
    dm.setup("fit")
    assert "RR1_0" not in set(dm.split_frame("predict")["particle_id"])
    out = tmp_path / "run" / "skipped_images.csv"
    SkippedImagesWriter(out).setup(SimpleNamespace(datamodule=dm, is_global_zero=True), None, "fit")
    listed = pd.read_csv(out)
    assert listed["particle_id"].tolist() == ["RR1_0"] and listed["line"].tolist() == [2]
    assert "cannot be decoded" in listed["reason"].iloc[0]


def test_retraining_with_target_labels(tiny_campaign, tmp_path):
    import pandas as pd

    particles = pd.read_csv(tiny_campaign / "particles.csv", keep_default_na=False)
    rr = particles[particles["domain"] == "RR"]
    # 20 verified target particles: unlabelled ones too, with the labels the expert gave.
    chosen = rr.iloc[:20].assign(label=["aggregate"] * 10 + ["mini_pellet"] * 10)
    labels_csv = tmp_path / "labels.csv"
    chosen[["particle_id", "label"]].to_csv(labels_csv, index=False)
    dm = _dm(tiny_campaign, target_labels=str(labels_csv))
    train, val = dm.split_frame("train"), dm.split_frame("val")
    ids = set(chosen["particle_id"])
    # 80/20 of the target labels, stratified; all OOD labelled particles train.
    assert len(ids & set(train["particle_id"])) == 16 and set(val["particle_id"]) <= ids
    assert (
        val["particle_id"].isin(chosen.loc[chosen["label"] == "aggregate", "particle_id"])
    ).sum() == 2
    ood = particles[particles["domain"].isin(OTHERS) & (particles["label"] != "")]
    assert set(ood["particle_id"]) <= set(train["particle_id"])
    # test and predict never contain a particle trained or validated on.
    for split in ("test", "predict"):
        assert not ids & set(dm.split_frame(split)["particle_id"])
    # The dataset carries the expert's labels, not the campaign's.
    dataset = dm._datasets["val"]
    expected = [
        dm.class_names.index(chosen.set_index("particle_id").at[pid, "label"])
        for pid in val["particle_id"]
    ]
    assert dataset.labels.tolist() == expected


def test_target_labels_bad_rows_are_named(tiny_campaign, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("particle_id,label\nnope,aggregate\nFC01_000001,aggregate\n")
    with pytest.raises(ValueError, match="line 2: particle_id 'nope' is not in the campaign"):
        _dm(tiny_campaign, target_labels=str(path))
