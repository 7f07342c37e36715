"""Paper B's batched training augmentation against the per-item path."""

from __future__ import annotations

import logging
import os

import lightning as L
import numpy as np
import torch
from scipy import stats
from torchvision.transforms.v2 import functional as TF

from plankflux.data.cytosense import load_pairs, read_profile
from plankflux.data.cytosense_batch_transforms import (
    BatchPairTransform,
    PairPrepare,
    draw_band_drops,
    draw_crops,
)
from plankflux.data.cytosense_transforms import (
    PairTransform,
    band_drop_count,
    log_compress,
    random_resized_crop,
    resample,
)
from plankflux.data.images import as_grey, open_image
from plankflux.data.pair_cache import ensure_pair_cache
from plankflux.datamodules.cytosense import CytoSenseDataModule
from plankflux.synthetic.cytosense import generate_cytosense

B, PAD, SIZE, PAD_LEN, LEN = 12, 30, 24, 40, 32


def _batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(B, 1, PAD, PAD, generator=gen)
    raw_profiles = torch.rand(B, 33, 6, generator=gen) * 3000  # raw (L, 6) signals
    return images, raw_profiles


def _per_item(image, raw_profile, params, i):
    """The per-item pipeline's operations with the batch's parameters for item ``i``."""
    top, left, h, w = params["boxes"][i].tolist()
    x = TF.resized_crop(image, top, left, h, w, [SIZE, SIZE], antialias=True)
    b, c = float(params["brightness"][i]), float(params["contrast"][i])
    ops = [lambda y: TF.adjust_brightness(y, b), lambda y: TF.adjust_contrast(y, c)]
    for k in (0, 1) if params["brightness_first"][i] else (1, 0):
        x = ops[k](x)
    if params["vflip"][i]:
        x = x.flip(-2)
    x = x.clamp(0.0, 1.0) * 2.0 - 1.0
    # ProfileTransform's order: amplitude and drop-out on the raw length, then resample.
    p = log_compress(raw_profile.T) * params["amplitude"][i][:, None]
    p[params["drop"][i]] = 0.0
    p = resample(p, PAD_LEN)
    start = int(params["start"][i])
    p = p[:, start : start + LEN]
    if params["flip"][i]:
        x, p = x.flip(-1), p.flip(-1)
    return x, p


def test_same_parameters_same_outputs_as_the_per_item_operations():
    images, raw = _batch()
    profiles = torch.stack([resample(log_compress(r.T), PAD_LEN) for r in raw])
    transform = BatchPairTransform(SIZE, LEN, band_drop_p=0.9, band_drop_rate=0.4)
    params = transform.draw(images, profiles, torch.Generator().manual_seed(1))
    out_images, out_profiles = transform.apply(images, profiles, params)
    assert out_images.shape == (B, 1, SIZE, SIZE) and out_profiles.shape == (B, 6, LEN)
    for key in ("brightness_first", "vflip", "flip"):  # both outcomes occur in the batch
        assert 0 < int(params[key].sum()) < B, key
    assert params["drop"].any() and (params["amplitude"] != 1).any()
    for i in range(B):
        x, p = _per_item(images[i], raw[i], params, i)
        torch.testing.assert_close(out_images[i], x, atol=1e-6, rtol=0)
        # resampling before or after the per-band scaling: equal up to float rounding
        torch.testing.assert_close(out_profiles[i], p, atol=1e-5, rtol=1e-5)


def test_crop_boxes_have_torchvisions_distribution():
    n = 3000
    boxes = draw_crops(n, PAD, PAD, generator=torch.Generator().manual_seed(0))
    top, left, h, w = boxes.T
    assert ((h >= 1) & (h <= PAD) & (w >= 1) & (w <= PAD)).all()
    assert ((top >= 0) & (top + h <= PAD) & (left >= 0) & (left + w <= PAD)).all()
    area = (h * w).double() / PAD**2
    assert 0.75 < area.min() and area.max() <= 1.0  # scale (0.8, 1) up to rounding
    # the per-item sampler's boxes: areas, aspect and position alike
    gen = torch.Generator().manual_seed(2)
    item = torch.tensor([draw_per_item_box(gen) for _ in range(n)])
    for ours, theirs in [
        (area, (item[:, 2] * item[:, 3]).double() / PAD**2),
        (w.double() / h, item[:, 3].double() / item[:, 2]),
        (top, item[:, 0]),
    ]:
        assert stats.ks_2samp(ours.numpy(), theirs.numpy()).pvalue > 1e-3


def draw_per_item_box(gen):
    """The box random_resized_crop picks, observed through TF.resized_crop."""
    seen = {}
    original = TF.resized_crop

    def spy(image, top, left, h, w, size, antialias=True):
        seen["box"] = (top, left, h, w)
        return original(image, top, left, h, w, size, antialias=antialias)

    TF.resized_crop = spy
    try:
        random_resized_crop(torch.zeros(1, PAD, PAD), 4, generator=gen)
    finally:
        TF.resized_crop = original
    return seen["box"]


def test_band_drop_counts_have_the_per_item_distribution():
    n = 4000
    drops = draw_band_drops(n, 6, 1.0, 0.05, 1, 4, torch.Generator().manual_seed(0))
    counts = np.bincount(drops.sum(1).numpy(), minlength=5)
    gen = torch.Generator().manual_seed(1)
    item = np.bincount([band_drop_count(0.05, 1, 4, gen) for _ in range(n)], minlength=5)
    assert counts[0] == 0 and item[0] == 0  # p = 1: at least one band always
    assert stats.chi2_contingency(np.stack([counts[1:3], item[1:3]])).pvalue > 1e-3
    # each band equally likely to be the dropped one
    assert stats.chisquare(drops[drops.sum(1) == 1].float().sum(0).numpy()).pvalue > 1e-3
    assert not draw_band_drops(100, 6, 0.0, 0.05, 1, 4).any()


def test_augmentation_coins_and_factors_have_paper_bs_rates():
    images, raw = _batch()
    profiles = torch.stack([resample(log_compress(r.T), PAD_LEN) for r in raw])
    transform = BatchPairTransform(SIZE, LEN)
    draws = [transform.draw(images, profiles) for _ in range(300)]
    rate = {k: torch.cat([d[k] for d in draws]).float().mean() for k in ("vflip", "flip")}
    assert abs(rate["vflip"] - 0.5) < 0.04 and abs(rate["flip"] - 0.5) < 0.04
    amplitude = torch.cat([d["amplitude"] for d in draws])
    scaled = (amplitude != 1).any(1).float().mean()
    assert abs(scaled - 0.5) < 0.04 and amplitude.min() >= 0.95 and amplitude.max() <= 1.05
    dropped = torch.cat([d["drop"] for d in draws]).any(1).float().mean()
    assert abs(dropped - 0.25) < 0.04
    bright = torch.cat([d["brightness"] for d in draws])
    assert 0.8 <= bright.min() and bright.max() <= 1.2
    start = torch.cat([d["start"] for d in draws])
    assert set(start.tolist()) == set(range(PAD_LEN - LEN + 1))


def test_prepare_then_batch_has_the_shapes_and_sizes_of_the_per_item_path():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (60, 45), dtype=np.uint8)  # raw, scale bar included
    profile = rng.uniform(0, 3000, (50, 6))
    prepared = PairPrepare(PAD, PAD_LEN)(image, profile)
    reference = PairTransform(True, SIZE, PAD, LEN, PAD_LEN)(image, profile)
    assert torch.equal(prepared["image_size"], reference["image_size"])
    assert torch.equal(prepared["profile_length"], reference["profile_length"])
    batch = {k: v[None] for k, v in prepared.items()}
    out = BatchPairTransform(SIZE, LEN)(batch, torch.Generator().manual_seed(0))
    assert out["image"].shape == (1, *reference["image"].shape)
    assert out["profile"].shape == (1, *reference["profile"].shape)
    assert -1.0 <= out["image"].min() and out["image"].max() <= 1.0


def test_datamodule_augments_training_batches_on_the_device_only(tmp_path):
    root = generate_cytosense(tmp_path / "synthetic_lab", kind="lab", scale="tiny", seed=0)
    sizes = dict(image_size=32, image_pad_size=34, profile_length=32, profile_pad_length=34)
    dm = CytoSenseDataModule(str(root), batch_size=8, device_transforms=True, **sizes)
    dm.setup("fit")
    raw = next(iter(dm.train_dataloader()))
    assert raw["image"].shape[-1] == 34 and raw["profile"].shape[-1] == 34  # prepared only
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    dm.trainer = trainer
    trainer.state.stage = "train"
    ready = dm.on_after_batch_transfer(dict(raw), 0)
    assert ready["image"].shape[-2:] == (32, 32) and ready["profile"].shape[-1] == 32
    assert torch.equal(ready["label"], raw["label"])
    trainer.state.stage = "validate"
    val = next(iter(dm.val_dataloader()))
    assert dm.on_after_batch_transfer(dict(val), 0)["image"] is val["image"]  # untouched


def test_pair_cache_holds_the_prepared_pairs_and_is_rebuilt_when_a_file_changes(tmp_path):
    root = generate_cytosense(tmp_path / "synthetic_lab", kind="lab", scale="tiny", seed=0)
    pairs, rows, prepare = load_pairs(root), np.array([3, 0, 7]), PairPrepare(34, 34)
    arrays = ensure_pair_cache(tmp_path / "cache", pairs, rows, prepare).arrays()
    for i, row in enumerate(rows):
        image = np.asarray(as_grey(open_image(pairs.image_path(row))))
        item = prepare(image, read_profile(pairs.profile_path(row)))
        # stored as grey levels: within half a level of the per-pair float image
        cached = torch.from_numpy(arrays["image"][i].astype(np.float32)) / 255.0
        assert (cached - item["image"]).abs().max() <= 0.5 / 255 + 1e-6
        assert np.array_equal(arrays["profile"][i], item["profile"].numpy())
        sizes = np.concatenate([item["image_size"].numpy(), item["profile_length"].numpy()])
        assert np.array_equal(arrays["sizes"][i], sizes)
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == 4 and not [f for f in files if f.endswith(".tmp")]
    # reopening reuses it; an edited profile gives a new key and a rebuilt cache
    ensure_pair_cache(tmp_path / "cache", pairs, rows, prepare)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == files
    profile = pairs.profile_path(0)
    profile.write_text(profile.read_text())  # same content, new mtime
    os.utime(profile, ns=(1, 1))
    ensure_pair_cache(tmp_path / "cache", pairs, rows, prepare)
    assert len(list((tmp_path / "cache").iterdir())) == 8


def test_cached_training_batches_equal_the_uncached_prepared_ones(tmp_path):
    root = generate_cytosense(tmp_path / "synthetic_lab", kind="lab", scale="tiny", seed=0)
    sizes = dict(image_size=32, image_pad_size=34, profile_length=32, profile_pad_length=34)
    plain = CytoSenseDataModule(str(root), batch_size=8, device_transforms=True, **sizes)
    cached = CytoSenseDataModule(
        str(root), batch_size=8, device_transforms=True, cache_dir=str(tmp_path / "c"), **sizes
    )
    plain.setup("fit")
    cached.setup("fit")
    torch.manual_seed(0)
    a = next(iter(plain.train_dataloader()))
    torch.manual_seed(0)
    b = next(iter(cached.train_dataloader()))
    assert b["image"].dtype == torch.uint8 and torch.equal(a["index"], b["index"])
    for key in ("profile", "image_size", "profile_length", "label"):
        assert torch.equal(a[key], b[key]), key
    assert (b["image"].float() / 255 - a["image"]).abs().max() <= 0.5 / 255 + 1e-6
    out = BatchPairTransform(32, 32)(b, torch.Generator().manual_seed(0))
    assert out["image"].shape == (8, 1, 32, 32) and out["image"].dtype == torch.float32


def test_cached_validation_and_test_inputs_equal_the_per_pair_ones(tmp_path):
    root = generate_cytosense(tmp_path / "synthetic_lab", kind="lab", scale="tiny", seed=0)
    sizes = dict(image_size=32, image_pad_size=34, profile_length=32, profile_pad_length=34)
    plain = CytoSenseDataModule(str(root), batch_size=8, **sizes)
    cached = CytoSenseDataModule(
        str(root), batch_size=8, device_transforms=True, cache_dir=str(tmp_path / "c"), **sizes
    )
    plain.setup("fit")
    cached.setup("fit")
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    cached.trainer = trainer
    trainer.state.stage = "validate"
    for split in ("val", "test"):
        a = next(iter(getattr(plain, f"{split}_dataloader")()))
        raw = next(iter(getattr(cached, f"{split}_dataloader")()))
        assert raw["image"].dtype == torch.uint8 and raw["image"].shape[-1] == 32  # test size
        b = cached.on_after_batch_transfer(dict(raw), 0)
        assert torch.equal(a["index"], b["index"]), split
        for key in ("profile", "image_size", "profile_length", "label"):
            assert torch.equal(a[key], b[key]), (split, key)
        # grey levels: within half a level of the per-pair image, i.e. 1/255 in [-1, 1]
        assert b["image"].dtype == torch.float32
        assert (b["image"] - a["image"]).abs().max() <= 1 / 255 + 1e-6, split
    # predict stays per pair (embeddings are also computed outside a Trainer)
    assert next(iter(cached.predict_dataloader()))["image"].dtype == torch.float32
    caches = {p.name.split(".")[0] for p in (tmp_path / "c").iterdir()}
    assert len(caches) == 3  # train (prepared), val and test (test-time inputs)


def test_a_cache_folder_without_device_transforms_is_named_as_unused(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="plankflux.datamodules.cytosense"):
        CytoSenseDataModule(str(tmp_path / "synthetic_lab"), cache_dir=str(tmp_path / "c"))
    assert "data.cache_dir is not used for CytoSense pairs without" in caplog.text
