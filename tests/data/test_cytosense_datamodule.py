"""CytoSense DataModule: the 5-fold 80/5/15 splits, the 95/5 pre-training split, batches."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from plankflux.data.cytosense import load_pairs
from plankflux.datamodules.cytosense import (
    CytoSenseDataModule,
    fold_splits,
    pretrain_splits,
)
from plankflux.errors import PlankfluxError
from plankflux.synthetic.cytosense import generate_cytosense

SMALL = dict(image_size=32, image_pad_size=36, profile_length=32, profile_pad_length=36)
SIZES = {0: 100, 1: 40, 2: 20, 3: 7, 4: 3}


def _labels(seed: int = 0) -> np.ndarray:
    labels = np.concatenate([np.full(n, c) for c, n in SIZES.items()] + [np.full(9, -1)])
    return labels[np.random.default_rng(seed).permutation(len(labels))]


def test_each_fold_is_80_5_15_per_class_and_partitions_the_labelled_rows():
    labels = _labels()
    for fold in range(5):
        s = fold_splits(labels, fold, seed=0)
        rows = np.concatenate([s["train"], s["val"], s["test"]])
        assert len(rows) == len(set(rows)) == (labels >= 0).sum()  # disjoint and complete
        assert (labels[rows] >= 0).all()  # unlabelled rows take no part
        count = {k: np.bincount(labels[v], minlength=5) for k, v in s.items()}
        assert (count["train"][0], count["val"][0], count["test"][0]) == (80, 5, 15)
        assert (count["train"][1], count["val"][1], count["test"][1]) == (32, 2, 6)
        assert count["val"][2] == 1 and count["test"][2] == 3  # 20 rows: 3 tests per fold


def test_test_slices_are_disjoint_across_folds_and_cover_75_percent():
    labels = _labels()
    tests = [fold_splits(labels, k, seed=3)["test"] for k in range(5)]
    union = np.concatenate(tests)
    assert len(union) == len(set(union))  # no row is tested twice
    per_class = np.bincount(labels[union], minlength=5)
    assert per_class[0] == 75 and per_class[1] == 30 and per_class[2] == 15
    # Seeded and deterministic; another seed draws other rows.
    again = fold_splits(labels, 2, seed=3)
    assert all(np.array_equal(again[k], fold_splits(labels, 2, seed=3)[k]) for k in again)
    assert not np.array_equal(again["test"], fold_splits(labels, 2, seed=4)["test"])
    with pytest.raises(ValueError, match="fold must be"):
        fold_splits(labels, 5)


def test_pretrain_split_is_95_5_of_everything():
    s = pretrain_splits(1000, seed=1)
    assert (len(s["train"]), len(s["val"])) == (950, 50)
    assert np.array_equal(np.sort(np.concatenate(list(s.values()))), np.arange(1000))
    assert np.array_equal(s["val"], pretrain_splits(1000, seed=1)["val"])
    assert len(pretrain_splits(3)["val"]) == 1 and len(pretrain_splits(1)["val"]) == 0


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    return generate_cytosense(tmp_path_factory.mktemp("cyto") / "lab", "lab", "tiny", seed=0)


def test_fold_batches_have_the_documented_keys_shapes_and_types(lab):
    dm = CytoSenseDataModule(str(lab), **SMALL, batch_size=8, fold=1)
    dm.setup("fit")
    assert dm.num_classes == 6 and len(dm.class_names) == 6
    assert {k: len(v) for k, v in dm.splits.items()} == {
        "train": 48,
        "val": 6,
        "test": 6 * 1,  # ⌊1.5·2 + ½⌋ − ⌊1.5 + ½⌋ = 1 test row per class of 10 in fold 1
        "predict": 60,
    }
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (8, 1, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["profile"].shape == (8, 6, 32)
    assert batch["image_size"].shape == (8, 2) and batch["profile_length"].shape == (8, 1)
    assert batch["label"].dtype == torch.int64 and batch["index"].dtype == torch.int64
    assert batch["image"].abs().max() <= 1
    frame = dm.split_frame("test")
    test = [b for b in dm.test_dataloader()]
    assert sum(len(b["index"]) for b in test) == len(frame)  # nothing dropped at test
    index = torch.cat([b["index"] for b in test]).numpy()
    assert np.array_equal(index, frame.index.to_numpy())
    labels = torch.cat([b["label"] for b in test]).numpy()
    assert [dm.class_names[i] for i in labels] == frame["class"].tolist()
    other = CytoSenseDataModule(str(lab), **SMALL, fold=2)
    other.setup()
    assert not set(other.splits["test"]) & set(dm.splits["test"])


def test_pretrain_mode_on_unlabelled_data_and_synthesize(tmp_path, caplog):
    root = tmp_path / "synthetic_uto"
    dm = CytoSenseDataModule(
        str(root),
        **SMALL,
        split="pretrain",
        batch_size=16,
        synthesize={"kind": "uto", "scale": "tiny", "seed": 0},
    )
    with caplog.at_level(logging.INFO, logger="plankflux.datamodules.loading"):
        dm.setup("fit")
    said = [r.getMessage() for r in caplog.records if r.name == "plankflux.datamodules.loading"]
    assert said[0] == f"{root} holds no data set: generating a synthetic one there (once)"
    assert said[1].startswith("synthetic data set ready in ") and said[1].endswith(str(root))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="plankflux.datamodules.loading"):
        CytoSenseDataModule(
            str(root), **SMALL, split="pretrain", synthesize={"kind": "uto"}
        ).setup()
    assert not [r for r in caplog.records if r.name == "plankflux.datamodules.loading"]
    # a folder of the user's files that is no data set is refused, and left as it was
    stray = tmp_path / "synthetic_stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    with pytest.raises(PlankfluxError, match="holds files but no data set"):
        CytoSenseDataModule(str(stray), **SMALL, synthesize={"kind": "uto"}).setup()
    assert [p.name for p in stray.iterdir()] == ["notes.txt"]
    assert not list(tmp_path.glob(".synthetic_stray*"))  # no staging copy left behind
    assert {k: len(v) for k, v in dm.splits.items()} == {
        "train": 76,
        "val": 4,
        "test": 4,  # the held-out val rows: pre-training has no test set of its own
        "predict": 80,
    }
    assert np.array_equal(dm.splits["test"], dm.splits["val"])
    assert (next(iter(dm.val_dataloader()))["label"] == -1).all()
    with pytest.raises(ValueError, match="no labelled pairs"):
        CytoSenseDataModule(str(root), **SMALL).setup()
    with pytest.raises(ValueError, match="split must be"):
        CytoSenseDataModule(str(root), split="all")


def test_several_roots_train_together_with_one_class_list(tmp_path):
    """LAB + UTO (combined pre-training): rows of both, paths resolved per root."""
    lab, uto = tmp_path / "synthetic_lab", tmp_path / "synthetic_uto"
    dm = CytoSenseDataModule(
        [str(lab), str(uto)],
        **SMALL,
        split="pretrain",
        synthesize=[
            {"kind": "lab", "scale": "tiny", "seed": 0},
            {"kind": "uto", "scale": "tiny", "seed": 0},
        ],
    )
    dm.setup("fit")
    assert dm.name == "synthetic_lab+synthetic_uto" and len(dm.pairs) == 60 + 80
    assert dm.class_names == load_pairs(lab).classes  # UTO is unlabelled: no new class
    labels = dm.pairs.labels()
    assert np.array_equal(labels[:60], load_pairs(lab).labels()) and (labels[60:] == -1).all()
    assert list(dm.pairs.pairs["dataset"].iloc[[0, 60]]) == ["synthetic_lab", "synthetic_uto"]
    assert dm.pairs.image_path(60) == (uto / load_pairs(uto).pairs["image"].iat[0]).resolve()
    item = dm._datasets["train"][int(np.flatnonzero(dm.splits["train"] >= 60)[0])]
    assert item["image"].shape == (1, SMALL["image_size"], SMALL["image_size"])
    # Every fold of the labelled part stays available to cross-domain evaluation.
    assert len(dm.fold_rows(3)["test"]) > 0 and (dm.fold_rows(3)["test"] < 60).all()
    with pytest.raises(ValueError, match="one entry .or null. per root, 2"):
        CytoSenseDataModule([str(lab), str(uto)], synthesize={"kind": "lab"})
    with pytest.raises(ValueError, match="2 entries for 3 roots"):
        CytoSenseDataModule([str(lab), str(uto), str(lab)], synthesize=[None, None])


def test_combine_pairs_appends_new_classes_after_the_first_sets(tmp_path):
    from plankflux.data.cytosense import combine_pairs

    for kind in ("lab", "sea"):
        generate_cytosense(tmp_path / kind, kind=kind, scale="tiny", seed=0)
    lab, sea = load_pairs(tmp_path / "lab"), load_pairs(tmp_path / "sea")
    both = combine_pairs([lab, sea])
    assert both.classes[: len(lab.classes)] == lab.classes
    assert set(both.classes) == set(lab.classes) | set(sea.classes)
    assert [both.classes[i] for i in both.labels()[len(lab) :]] == list(sea.pairs["class"])
