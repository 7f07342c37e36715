"""Resize modes, normalisation choices and Paper A's augmentations."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from plankflux.data.transforms import (
    NORMALIZATION_STATS,
    RESIZE_MODES,
    CustomPad,
    ImagePipeline,
    Resize,
    TrainAugment,
    load_resized,
    normalize,
    resolve_normalization,
    to_tensor,
)


def _image(width: int, height: int, value=None, seed: int = 0) -> Image.Image:
    if value is None:
        rng = np.random.default_rng(seed)
        array = rng.integers(1, 256, size=(height, width, 3), dtype=np.uint8)
    else:
        array = np.full((height, width, 3), value, dtype=np.uint8)
    return Image.fromarray(array)


# ---------------------------------------------------------------- resize modes


def test_pad_fill_is_a_grey_level_or_the_border_median(tmp_path):
    light = np.full((6, 10, 3), 200, dtype=np.uint8)  # light background ...
    light[2:4, 3:7] = 20  # ... a dark particle in the middle
    light[0, 0] = (0, 255, 90)  # one odd border pixel does not move the median
    image = Image.fromarray(light)
    median = np.asarray(CustomPad(16, fill="median")(image))
    assert median[0, 0].tolist() == [200, 200, 200] and median[15, 15].tolist() == [200] * 3
    assert median[7:9, 6:10].min() == 20  # the particle, centred at offset (3, 5)
    white = np.asarray(CustomPad(16, fill=255)(image))
    assert white[0, 0].tolist() == [255, 255, 255]
    black = np.asarray(CustomPad(16)(image))
    assert black[0, 0].tolist() == [0, 0, 0]
    grey = np.asarray(CustomPad(16, fill="median")(image.convert("L")))
    assert grey[0, 0] == 200
    # The resize modes that name a fill, through the file path the datasets use.
    Image.fromarray(light).save(tmp_path / "x.png")
    assert load_resized(tmp_path / "x.png", 16, "pad_median")[0, 0].tolist() == [200] * 3
    assert load_resized(tmp_path / "x.png", 16, "pad_128")[0, 0].tolist() == [128] * 3
    for bad in ("pad_256", "pad_white", "squash"):
        with pytest.raises(ValueError, match="unknown resize mode"):
            load_resized(tmp_path / "x.png", 16, bad)
    with pytest.raises(ValueError, match="no published dataset statistics for resize mode"):
        resolve_normalization("dataset", "pad_median")


def test_custom_pad_shrinks_tall_image_and_centres_it():
    out = np.asarray(CustomPad(32)(_image(10, 40, value=255)))  # w=10, h=40
    assert out.shape == (32, 32, 3)
    # longer side 40 -> 32, so width 10 -> 8, pasted at x = (32 - 8) // 2 = 12
    assert (out[:, 12:20] == 255).all()
    assert (out[:, :12] == 0).all() and (out[:, 20:] == 0).all()


def test_custom_pad_shrinks_wide_image_and_centres_it():
    out = np.asarray(CustomPad(32)(_image(40, 10, value=200)))
    assert (out[12:20, :] == 200).all()
    assert (out[:12] == 0).all() and (out[20:] == 0).all()


def test_custom_pad_never_enlarges_and_offsets_are_exact():
    src = _image(10, 20)  # w=10, h=20: offsets ((32-10)//2, (32-20)//2) = (11, 6)
    out = np.asarray(CustomPad(32)(src))
    np.testing.assert_array_equal(out[6:26, 11:21], np.asarray(src))
    mask = np.ones((32, 32), dtype=bool)
    mask[6:26, 11:21] = False
    assert (out[mask] == 0).all()


def test_custom_pad_odd_margins_and_rounding():
    pad = CustomPad(32)
    assert pad.fitted_size(100, 30) == (32, 10)  # 30 * 0.32 = 9.6 -> 10
    assert pad.fitted_size(30, 100) == (10, 32)
    assert pad.fitted_size(1000, 1) == (32, 1)  # never collapses to 0 px
    assert pad.fitted_size(32, 5) == (32, 5)
    out = np.asarray(pad(_image(100, 30, value=255)))
    assert (out[11:21] == 255).all() and (out[:11] == 0).all() and (out[21:] == 0).all()
    # an odd margin puts the extra row/column after the content
    out = np.asarray(pad(_image(5, 5, value=255)))
    assert (out[13:18, 13:18] == 255).all() and out.sum() == 255 * 25 * 3


def test_resize_squashes_to_square():
    out = Resize(32)(_image(10, 40))
    assert out.size == (32, 32)


@pytest.mark.parametrize("mode", sorted(RESIZE_MODES))
def test_load_resized_gives_uint8_rgb(tmp_path, mode):
    path = tmp_path / "grey.png"
    Image.fromarray(np.full((40, 10), 128, dtype=np.uint8), mode="L").save(path)
    out = load_resized(path, 32, mode)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert (out[..., 0] == out[..., 1]).all()


def test_unknown_resize_mode(tmp_path):
    with pytest.raises(ValueError, match="unknown resize mode 'crop'"):
        load_resized(tmp_path / "x.png", 32, "crop")


# ---------------------------------------------------------------- normalisation


def test_resolve_normalization_keywords():
    assert resolve_normalization(None, "resize") is None
    assert resolve_normalization("none", "pad") is None
    assert resolve_normalization("imagenet", "pad") == (
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
    )
    assert resolve_normalization("dataset", "resize") == (
        (0.279, 0.304, 0.294),
        (0.096, 0.102, 0.095),
    )
    assert resolve_normalization("dataset", "pad") == ((0.053, 0.058, 0.055), (0.123, 0.133, 0.127))
    assert NORMALIZATION_STATS["dataset"]["pad"]["mean"] == (0.053, 0.058, 0.055)


def test_resolve_normalization_explicit_stats():
    stats = {"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]}
    expected = ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    assert resolve_normalization(stats, "pad") == expected
    assert resolve_normalization((stats["mean"], stats["std"]), "resize") == expected
    by_mode = {"resize": {"mean": [0, 0, 0], "std": [1, 1, 1]}, "pad": stats}
    assert resolve_normalization(by_mode, "pad") == expected


def test_resolve_normalization_accepts_omegaconf():
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.create({"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]})
    assert resolve_normalization(cfg, "resize") == ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))


def test_resolve_normalization_from_stats_file(tmp_path):
    path = tmp_path / "stats.json"
    entry = {"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6], "size": 224, "n_images": 3}
    path.write_text(json.dumps({"resize": entry}))
    expected = ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    assert resolve_normalization(str(path), "resize") == expected
    assert resolve_normalization(path, "resize") == expected
    with pytest.raises(ValueError, match="no entry for resize mode 'pad'"):
        resolve_normalization(str(path), "pad")
    with pytest.raises(ValueError, match="not found"):
        resolve_normalization(str(tmp_path / "missing.json"), "pad")


@pytest.mark.parametrize(
    "bad, match",
    [
        ("imagnet", "unknown normalisation 'imagnet'"),
        ({"mean": [0.1, 0.2, 0.3]}, "needs both 'mean' and 'std'"),
        ({"mean": [0.1, 0.2], "std": [1, 1]}, "3 finite numbers"),
        ({"mean": [0.1, 0.2, 0.3], "std": [1, 0, 1]}, "std must be > 0"),
        (({"a": 1}, "x", 3), "expected"),
        (3.5, "unsupported normalisation"),
    ],
)
def test_resolve_normalization_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        resolve_normalization(bad, "resize")


def test_resolve_normalization_rejects_unknown_mode():
    with pytest.raises(ValueError, match="unknown resize mode"):
        resolve_normalization("dataset", "crop")


def test_to_tensor_and_normalize_values():
    img = np.zeros((2, 2, 3), dtype=np.uint8)
    img[0, 0] = (255, 0, 128)
    img.setflags(write=False)  # like a read-only memmap: must not warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = to_tensor(img)
    assert x.shape == (3, 2, 2) and x.dtype == torch.float32
    assert x[:, 0, 0].tolist() == pytest.approx([1.0, 0.0, 128 / 255])

    mean, std = resolve_normalization("imagenet", "resize")
    y = normalize(x, mean, std)
    expected = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    assert y[:, 0, 0].tolist() == pytest.approx(expected, rel=1e-6)
    assert y[:, 1, 1].tolist() == pytest.approx([-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225])


def test_image_pipeline_eval_is_deterministic_and_normalised():
    img = np.zeros((4, 4, 3), dtype=np.uint8)
    img[..., 0] = 255
    pipe = ImagePipeline(train=False, mean_std=((0.5, 0.25, 0.0), (0.5, 0.25, 2.0)))
    out = pipe(img)
    assert out.shape == (3, 4, 4) and out.dtype == torch.float32
    assert torch.all(out[0] == 1.0) and torch.all(out[1] == -1.0) and torch.all(out[2] == 0.0)
    assert torch.equal(pipe(img), out)
    raw = ImagePipeline(train=False)(Image.fromarray(img))
    assert torch.all(raw[0] == 1.0) and torch.all(raw[1:] == 0.0)


# ---------------------------------------------------------------- augmentation


def _asymmetric(n: int = 4) -> torch.Tensor:
    return torch.arange(3 * n * n, dtype=torch.float32).reshape(3, n, n)


def _dihedral(x: torch.Tensor) -> list[torch.Tensor]:
    rots = [torch.rot90(x, k, dims=(-2, -1)) for k in range(4)]
    return rots + [torch.flip(r, dims=(-1,)) for r in rots]


def test_augment_reproducible_with_manual_seed():
    x = _asymmetric()
    aug = TrainAugment()
    torch.manual_seed(123)
    first = [aug(x) for _ in range(50)]
    torch.manual_seed(123)
    second = [aug(x) for _ in range(50)]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert len({tuple(t.flatten().tolist()) for t in first}) > 1


def test_augment_reproducible_with_generator():
    x = _asymmetric()
    a = TrainAugment(generator=torch.Generator().manual_seed(7))
    b = TrainAugment(generator=torch.Generator().manual_seed(7))
    torch.manual_seed(0)  # the global RNG must not matter
    outs_a = [a(x) for _ in range(30)]
    torch.manual_seed(1)
    outs_b = [b(x) for _ in range(30)]
    assert all(torch.equal(p, q) for p, q in zip(outs_a, outs_b, strict=True))


def test_augment_each_op_about_half_the_time(monkeypatch):
    calls = {"rot": 0, "h": 0, "v": 0}
    ks = []
    rot90, flip = torch.rot90, torch.flip

    def spy_rot90(x, k, dims):
        calls["rot"] += 1
        ks.append(k)
        return rot90(x, k, dims)

    def spy_flip(x, dims):
        calls["h" if tuple(dims) == (-1,) else "v"] += 1
        return flip(x, dims)

    x = _asymmetric()
    group = _dihedral(x)
    seen = np.zeros(8, dtype=int)
    n = 4000
    torch.manual_seed(0)
    aug = TrainAugment()
    with monkeypatch.context() as m:
        m.setattr(torch, "rot90", spy_rot90)
        m.setattr(torch, "flip", spy_flip)
        for _ in range(n):
            out = aug(x)
            seen[[i for i, g in enumerate(group) if torch.equal(out, g)]] += 1
    for op, count in calls.items():
        assert abs(count / n - 0.5) < 0.04, (op, count)
    assert set(ks) == {1, 2, 3}
    assert all(abs(ks.count(k) / len(ks) - 1 / 3) < 0.05 for k in (1, 2, 3))
    assert seen.sum() == n and (seen > 0).all()  # every output is one of the 8 symmetries
    # identity: no op (1/2 * 1/4) or rot180 with both flips (1/6 * 1/4) = 1/6
    assert abs(seen[0] / n - 1 / 6) < 0.03


def test_augment_probability_extremes_and_uint8():
    x = _asymmetric().to(torch.uint8)
    assert torch.equal(TrainAugment(p=0.0)(x), x)
    always = TrainAugment(p=1.0)
    torch.manual_seed(0)
    # rot(k) then both flips is rot(k + 2): quarter turns in {3, 0, 1}
    rotations = {j: torch.rot90(x, j, dims=(-2, -1)) for j in (3, 0, 1)}
    hits = set()
    for _ in range(60):
        out = always(x)
        assert out.dtype == torch.uint8
        hits |= {j for j, r in rotations.items() if torch.equal(out, r)}
    assert hits == {3, 0, 1}
    with pytest.raises(ValueError, match="square"):
        always(torch.zeros(3, 4, 6))
    with pytest.raises(ValueError):
        TrainAugment(p=1.5)


def test_image_pipeline_train_augments_and_normalises():
    img = (np.arange(4 * 4 * 3, dtype=np.uint8) * 5).reshape(4, 4, 3)
    mean_std = resolve_normalization("dataset", "resize")
    plain = ImagePipeline(train=False, mean_std=mean_std)(img)
    pipe = ImagePipeline(train=True, mean_std=mean_std)
    torch.manual_seed(0)
    outs = [pipe(img) for _ in range(40)]
    group = _dihedral(plain)
    assert all(any(torch.allclose(o, g) for g in group) for o in outs)
    assert any(not torch.allclose(o, plain) for o in outs)
