"""DINO's batched multi-crop views against the per-item path (MultiCropTransform)."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from scipy import stats
from torchvision.transforms.v2 import functional as TF

from plankflux.data.cytosense_batch_transforms import PairPrepare
from plankflux.data.multicrop import MultiCropTransform, gaussian_blur
from plankflux.data.multicrop_batch import BatchMultiCrop, gaussian_blur_batch
from plankflux.datamodules.cytosense import CytoSenseDataModule
from plankflux.synthetic.cytosense import generate_cytosense

B, PAD = 10, 40
VIEWS = dict(n_global=2, global_size=24, n_local=3, local_size=12)


def _squares(seed: int = 0) -> torch.Tensor:
    return torch.rand(B, 1, PAD, PAD, generator=torch.Generator().manual_seed(seed))


def _per_item_view(square, size, p, i):
    """MultiCropTransform._view's operations, in its order, with the batch's parameters."""
    top, left, h, w = p["boxes"][i].tolist()
    x = TF.resized_crop(square, top, left, h, w, [size, size], antialias=True)
    if p["hflip"][i]:
        x = x.flip(-1)
    if p["vflip"][i]:
        x = x.flip(-2)
    if p["jitter"][i]:
        b, c = float(p["brightness"][i]), float(p["contrast"][i])
        ops = [lambda y: TF.adjust_brightness(y, b), lambda y: TF.adjust_contrast(y, c)]
        for k in (0, 1) if p["brightness_first"][i] else (1, 0):
            x = ops[k](x)
        x = x.clamp(0, 1)
    if p["blur"][i]:
        x = gaussian_blur(x, float(p["sigma"][i]))
    if p["solarize"][i]:
        x = torch.where(x >= 0.5, 1.0 - x, x)
    return x.clamp(0.0, 1.0) * 2.0 - 1.0


def test_same_parameters_same_views_as_the_per_item_operations():
    squares = _squares()
    transform = BatchMultiCrop(**VIEWS, jitter_p=0.5, blur_p=(1.0, 0.5, 0.5), solarize_p=0.5)
    params = transform.draw(B, PAD, PAD, torch.Generator().manual_seed(1))
    views = transform.apply(squares, params)
    assert [tuple(v.shape) for v in views] == [(B, 1, 24, 24)] * 2 + [(B, 1, 12, 12)] * 3
    for view, (size, *_), p in zip(views, transform.views, params, strict=True):
        for i in range(B):
            expected = _per_item_view(squares[i], size, p, i)
            torch.testing.assert_close(view[i], expected, atol=2e-6, rtol=0)
    # every branch was taken somewhere (the drawn coins are not all alike)
    for key in ("hflip", "vflip", "jitter", "blur"):
        flags = torch.cat([p[key] for p in params])
        assert flags.any() and not flags.all(), key
    assert params[1]["solarize"].any() and not any(params[v]["solarize"].any() for v in (0, 2))


@pytest.mark.parametrize("sigma", [0.1, 0.34, 0.67, 1.0, 1.5, 2.0])
def test_batched_blur_equals_torchvisions_per_image_blur(sigma):
    images = torch.rand(4, 1, 20, 17, generator=torch.Generator().manual_seed(0))
    sigmas = torch.tensor([sigma, 0.2, sigma, 1.9])  # two kernel sizes in one batch
    out = gaussian_blur_batch(images, sigmas)
    for image, s, got in zip(images, sigmas.tolist(), out, strict=True):
        torch.testing.assert_close(got, gaussian_blur(image, s), atol=1e-6, rtol=0)


def test_tiny_images_blur_with_a_kernel_below_their_side():
    images = torch.rand(2, 1, 3, 5)
    out = gaussian_blur_batch(images, torch.tensor([2.0, 0.5]))  # radius 6 and 2 -> 2
    for image, s, got in zip(images, (2.0, 0.5), out, strict=True):
        torch.testing.assert_close(got, gaussian_blur(image, s), atol=1e-6, rtol=0)


def test_drawn_parameters_have_dinos_rates():
    transform = BatchMultiCrop()  # DINO's defaults: blur 1.0 / 0.1 / 0.5, solarise 0.2
    n = 4000
    params = transform.draw(n, 236, 236, torch.Generator().manual_seed(0))
    assert len(params) == 8

    def rate(view: int, key: str) -> float:
        return float(params[view][key].float().mean())

    tolerance = 4 * np.sqrt(0.25 / n)
    for view in range(8):
        assert rate(view, "hflip") == pytest.approx(0.5, abs=tolerance)
        assert rate(view, "vflip") == pytest.approx(0.5, abs=tolerance)
        assert rate(view, "jitter") == pytest.approx(0.8, abs=tolerance)
        assert rate(view, "brightness_first") == pytest.approx(0.5, abs=tolerance)
        b, c = params[view]["brightness"], params[view]["contrast"]
        assert 0.6 <= b.min() and b.max() <= 1.4 and 0.6 <= c.min() and c.max() <= 1.4
        sigma = params[view]["sigma"]
        assert 0.1 <= sigma.min() and sigma.max() <= 2.0
        assert stats.kstest(((sigma - 0.1) / 1.9).numpy(), "uniform").pvalue > 1e-3
    assert rate(0, "blur") == 1.0
    assert rate(1, "blur") == pytest.approx(0.1, abs=tolerance)
    assert all(rate(v, "blur") == pytest.approx(0.5, abs=tolerance) for v in range(2, 8))
    assert rate(1, "solarize") == pytest.approx(0.2, abs=tolerance)
    assert all(rate(v, "solarize") == 0.0 for v in (0, *range(2, 8)))
    area = [(p["boxes"][:, 2] * p["boxes"][:, 3]).double() / 236**2 for p in params]
    assert 0.39 <= area[0].min() and area[0].max() <= 1.0  # globals: scale (0.4, 1)
    assert 0.09 <= area[5].min() and area[5].max() <= 0.41  # locals: scale (0.1, 0.4)


def test_views_have_the_per_item_paths_distribution():
    # Each path cuts the views of one textured square 300 times with its own draws; per
    # view, the spread of the pixels (which the crop, blur, jitter and solarisation all
    # change) must come from the same distribution in both (two-sample KS test).
    gen = torch.Generator().manual_seed(3)
    square = torch.rand(1, PAD, PAD, generator=gen)
    per_item = MultiCropTransform(**VIEWS, image_size=24, image_pad_size=PAD)
    batched = BatchMultiCrop(**VIEWS)
    n = 300
    item_std = np.array([[float(v.std()) for v in per_item.views(square, gen)] for _ in range(n)])
    views = batched.apply(square.expand(n, -1, -1, -1), batched.draw(n, PAD, PAD, gen))
    batch_std = torch.stack([v.flatten(1).std(dim=1) for v in views], dim=1).numpy()
    for view in range(5):
        result = stats.ks_2samp(item_std[:, view], batch_std[:, view])
        assert result.pvalue > 1e-3, (view, result)
    # and the test can tell views apart: the always-blurred first global is smoother
    # than the rarely-blurred second one
    assert stats.ks_2samp(batch_std[:, 0], batch_std[:, 1]).pvalue < 1e-6


@pytest.mark.parametrize("cached", [False, True])
def test_datamodule_cuts_dino_views_on_the_device(tmp_path, cached):
    root = generate_cytosense(tmp_path / "synthetic_lab", kind="lab", scale="tiny", seed=0)
    sizes = dict(image_size=32, image_pad_size=34, profile_length=32, profile_pad_length=34)
    extra = {"cache_dir": str(tmp_path / "cache")} if cached else {}
    dm = CytoSenseDataModule(
        str(root), batch_size=8, device_transforms=True, multicrop=VIEWS, **sizes, **extra
    )
    dm.setup("fit")
    raw = next(iter(dm.train_dataloader()))
    assert "crops" not in raw and raw["image"].shape[-2:] == (34, 34)  # prepared only
    assert raw["image"].dtype == (torch.uint8 if cached else torch.float32)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    dm.trainer = trainer
    trainer.state.stage = "train"
    ready = dm.on_after_batch_transfer(dict(raw), 0)
    shapes = [tuple(c.shape) for c in ready["crops"]]
    assert shapes == [(8, 1, 24, 24)] * 2 + [(8, 1, 12, 12)] * 3
    assert all(-1.0 <= c.min() and c.max() <= 1.0 for c in ready["crops"])
    assert torch.equal(ready["label"], raw["label"])
    trainer.state.stage = "validate"
    val = next(iter(dm.val_dataloader()))
    assert "crops" not in dm.on_after_batch_transfer(dict(val), 0)
    # the loader's square is the per-item path's square (the pair cache rounds to uint8)
    prepared = PairPrepare(34, 34)(*_raw_pair(dm, int(raw["index"][0])))["image"]
    square = raw["image"][0].float() / (255.0 if cached else 1.0)
    torch.testing.assert_close(square, prepared, atol=0.5 / 255 + 1e-6, rtol=0)


def _raw_pair(dm: CytoSenseDataModule, row: int):
    from plankflux.data.cytosense import read_profile
    from plankflux.data.images import as_grey, open_image

    pairs = dm._pairs()  # noqa: SLF001
    image = as_grey(open_image(pairs.image_path(row)))
    return image, read_profile(pairs.profile_path(row))
