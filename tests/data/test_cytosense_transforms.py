"""Paper B pipelines (docs/paper_b.md): geometry, values by hand, ranges and the joint flip."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from plankflux.data.cytosense_transforms import (
    LOG_DIVISOR,
    PairTransform,
    ProfileTransform,
    band_drop_count,
    crop_scale_bar,
    image_to_tensor,
    log_compress,
    resample,
    resize_pad_edge,
)

SIZES = dict(image_size=32, image_pad_size=36, profile_length=32, profile_pad_length=36)


def _with_bar(body: np.ndarray) -> np.ndarray:
    """Put a 25-row black scale-bar strip above a (H, W) uint8 body."""
    return np.vstack([np.zeros((25, body.shape[1]), np.uint8), body])


def test_scale_bar_is_cropped_before_anything_else():
    raw = _with_bar(np.full((40, 30), 200, np.uint8))
    assert crop_scale_bar(image_to_tensor(raw)).shape == (1, 40, 30)
    out = PairTransform(False, **SIZES)(raw, np.ones((5, 6)))
    expected = 200 / 255 * 2 - 1  # a uniform body stays uniform: no black bar leaked in
    torch.testing.assert_close(out["image"], torch.full((1, 32, 32), expected))
    with pytest.raises(ValueError, match="no rows below"):
        crop_scale_bar(torch.zeros(1, 25, 10))


def test_resize_pad_edge_geometry_keeps_aspect_and_replicates_edges():
    rows = torch.linspace(0.1, 0.9, 10)[:, None].expand(10, 20)  # wide: 10 x 20, rows differ
    out = resize_pad_edge(rows[None].clone(), 40)[0]
    assert out.shape == (40, 40)
    # 10x20 -> 20x40 content at rows 10..29; the pad repeats the first and last content rows.
    assert torch.equal(out[:10], out[10:11].expand(10, 40))
    assert torch.equal(out[30:], out[29:30].expand(10, 40))
    assert not torch.equal(out[10], out[29])
    tall = resize_pad_edge(torch.rand(1, 21, 7), 36)  # 21x7 -> 36x12, columns 12..23
    assert torch.equal(tall[..., :12], tall[..., 12:13].expand(1, 36, 12))
    assert torch.equal(tall[..., 24:], tall[..., 23:24].expand(1, 36, 12))
    odd = resize_pad_edge(torch.rand(1, 7, 20), 36)[0]  # content 13 rows: 11 above, 12 below
    assert torch.equal(odd[:11], odd[11:12].expand(11, 36))
    assert torch.equal(odd[24:], odd[23:24].expand(12, 36))


def test_log_compression_by_hand():
    x = torch.tensor([0.0, 1.0, 99.0, math.exp(LOG_DIVISOR) - 1, -5.0])
    expected = torch.tensor(
        [-1.0, 2 * math.log(2) / 8.9211 - 1, 2 * math.log(100) / 8.9211 - 1, 1.0, -1.0]
    )
    torch.testing.assert_close(log_compress(x), expected)


def test_outputs_in_range_and_shapes_with_size_scalars():
    g = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    for train in (True, False):
        t = PairTransform(train, **SIZES)
        for _ in range(20):
            raw = rng.integers(0, 256, (25 + 30, 50), dtype=np.uint8)
            out = t(raw, rng.uniform(0, 5e4, (17, 6)), generator=g)
            assert out["image"].shape == (1, 32, 32) and out["profile"].shape == (6, 32)
            assert out["image"].min() >= -1 and out["image"].max() <= 1
            # Size scalars (Paper B): the raw image before the scale-bar crop and padding,
            # and the raw profile length.
            torch.testing.assert_close(out["image_size"], torch.tensor([55 / 224, 50 / 224]))
            torch.testing.assert_close(out["profile_length"], torch.tensor([17 / 224]))


def test_resample_lengths_and_linearity():
    ramp = torch.arange(10.0)[None].expand(6, 10)
    assert resample(ramp, 224).shape == (6, 224)
    out = resample(ramp, 19)
    torch.testing.assert_close(out[0], torch.linspace(0, 9, 19))  # end points kept
    assert resample(torch.ones(6, 1), 7).shape == (6, 7)  # a one-sample profile works
    test = ProfileTransform(False, length=224)(np.ones((40, 6)))
    assert test.shape == (6, 224)
    train = ProfileTransform(True, 32, 36, amplitude_p=0, band_drop_p=0)
    steps = train(np.exp(np.arange(50.0) / 10)[:, None].repeat(6, 1)).diff(dim=1)
    # log(1 + e^(t/10)) is close to linear in t: a window of 32 of the 36 resampled steps.
    assert train(np.ones((50, 6))).shape == (6, 32) and torch.all(steps > 0)


def test_band_drop_counts_within_one_to_four():
    g = torch.Generator().manual_seed(1)
    transform = ProfileTransform(True, 8, 8, amplitude_p=0.0, band_drop_p=1.0)
    counts = []
    for _ in range(400):
        out = transform(np.full((8, 6), 1000.0), generator=g)
        counts.append(int((out == 0).all(dim=1).sum()))
    assert set(counts) <= {1, 2, 3, 4} and counts.count(1) > 300  # Binomial(6, .05) is small
    assert band_drop_count(1.0, 1, 4) == 4 and band_drop_count(0.0, 1, 4) == 1
    default = ProfileTransform(True, 8, 8, amplitude_p=0.0)
    dropped = [bool((default(np.full((8, 6), 1000.0)) == 0).any()) for _ in range(800)]
    assert 0.18 < np.mean(dropped) < 0.32  # p = 0.25


def test_amplitude_scaling_is_per_band_within_bounds():
    g = torch.Generator().manual_seed(2)
    raw = np.exp(np.linspace(1, 8, 30))[:, None].repeat(6, 1)
    base = ProfileTransform(True, 16, 16, amplitude_p=0.0, band_drop_p=0.0)(raw)
    scaled = ProfileTransform(True, 16, 16, amplitude_p=1.0, band_drop_p=0.0)
    ratios = scaled(raw, generator=g) / base
    assert torch.allclose(ratios, ratios[:, :1].expand_as(ratios), atol=1e-5)  # constant in time
    assert ratios.min() >= 0.95 - 1e-6 and ratios.max() <= 1.05 + 1e-6
    assert ratios[:, 0].unique().numel() == 6  # one factor per band


def test_flip_is_synchronised_between_image_and_profile():
    body = np.zeros((40, 40), np.uint8)
    body[:, 20:] = 255  # dark left half, bright right half
    ramp = np.linspace(1, 3000, 25)[:, None].repeat(6, 1)  # signal rises in time
    t = PairTransform(True, **SIZES)
    g = torch.Generator().manual_seed(3)
    flips = []
    for _ in range(200):
        out = t(_with_bar(body), ramp, generator=g)
        image_flipped = out["image"][..., :16].mean() > out["image"][..., 16:].mean()
        live = out["profile"][(out["profile"] != 0).any(dim=1)]  # bands not dropped
        profile_flipped = bool((live[:, 0] > live[:, -1]).all())
        assert image_flipped == profile_flipped
        flips.append(image_flipped)
    assert 60 < sum(flips) < 140  # p = 0.5
    test = PairTransform(False, **SIZES)(_with_bar(body), ramp)
    assert test["image"][..., :16].mean() < test["image"][..., 16:].mean()  # never at test


def test_generator_makes_the_train_pipeline_reproducible():
    rng = np.random.default_rng(4)
    raw, profile = rng.integers(0, 256, (60, 45), dtype=np.uint8), rng.uniform(0, 900, (33, 6))
    t = PairTransform(True, **SIZES)
    a = t(raw, profile, generator=torch.Generator().manual_seed(5))
    b = t(raw, profile, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(a[k], b[k]) for k in a)
