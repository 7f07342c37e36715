"""The batched uint8 input path (data.device_transforms) against the per-item path."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from scipy import stats

from plankflux.data.batch_transforms import BatchImageTransform, augment_batch_
from plankflux.data.transforms import (
    ImagePipeline,
    TrainAugment,
    dihedral,
    draw_dihedral,
    normalize,
    to_tensor,
)
from plankflux.datamodules.trap import TrapDataModule

MEAN_STD = ((0.2, 0.3, 0.4), (0.1, 0.2, 0.3))
OTHERS = ["FC", "FO", "JC", "SR"]


def _images(n: int, size: int = 5, seed: int = 0) -> np.ndarray:
    """``(n, size, size, 3)`` uint8 with no symmetry, so every transform is visible."""
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _per_item(image: np.ndarray, k: int, hflip: bool, vflip: bool, mean_std) -> torch.Tensor:
    """The per-item path of ImagePipeline with the given augmentation parameters."""
    x = dihedral(to_tensor(image), k, hflip, vflip)
    return normalize(x, *mean_std) if mean_std else x


@pytest.mark.parametrize("mean_std", [None, MEAN_STD])
def test_same_parameters_same_pixels_as_the_per_item_path(mean_std):
    images = _images(64)
    transform = BatchImageTransform(augment=True, mean_std=mean_std)
    out = transform(
        torch.from_numpy(images), train=True, generator=torch.Generator().manual_seed(3)
    )
    k, flips = draw_dihedral(64, 0.5, torch.Generator().manual_seed(3))  # the same draws
    assert len(set((k * 4 + flips[:, 0] * 2 + flips[:, 1]).tolist())) >= 12  # most cases met
    expected = torch.stack(
        [
            _per_item(img, int(k[i]), bool(flips[i, 0]), bool(flips[i, 1]), mean_std)
            for i, img in enumerate(images)
        ]
    )
    assert out.shape == (64, 3, 5, 5) and out.dtype == torch.float32 and out.is_contiguous()
    assert torch.equal(out, expected)


def test_every_parameter_combination_is_the_per_item_transform():
    images = torch.from_numpy(_images(16, size=4, seed=1)).permute(0, 3, 1, 2).contiguous()
    k = torch.tensor([c // 4 for c in range(16)])
    flips = torch.tensor([[bool(c & 2), bool(c & 1)] for c in range(16)])
    out = augment_batch_(images.clone(), k, flips)
    for c in range(16):
        assert torch.equal(out[c], dihedral(images[c], c // 4, bool(c & 2), bool(c & 1)))
    assert torch.equal(out[0], images[0]) and not torch.equal(out[5], images[5])


def test_evaluation_batches_equal_the_per_item_pipeline():
    images = _images(9)
    out = BatchImageTransform(augment=True, mean_std=MEAN_STD)(torch.from_numpy(images), False)
    pipeline = ImagePipeline(train=False, mean_std=MEAN_STD)
    assert torch.equal(out, torch.stack([pipeline(img) for img in images]))


def test_refuses_a_batch_that_is_not_uint8_nhwc():
    transform = BatchImageTransform(augment=False)
    with pytest.raises(ValueError, match="uint8"):
        transform(torch.zeros(2, 4, 4, 3), train=False)
    with pytest.raises(ValueError, match=r"\(B, S, S, 3\)"):
        transform(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), train=False)


def _symmetry_index(out: torch.Tensor, group: list[torch.Tensor]) -> int:
    (index,) = [i for i, g in enumerate(group) if torch.equal(out, g)]
    return index


def test_augmented_distribution_equals_the_per_item_path():
    """Both paths give each of the 8 symmetries of the square with the same frequencies
    (the theoretical ones, and indistinguishable from each other)."""
    image = _images(1, size=4, seed=2)[0]
    group = [dihedral(to_tensor(image), k, h, False) for k in range(4) for h in (False, True)]
    n = 4000
    torch.manual_seed(0)
    batched = BatchImageTransform(augment=True)(
        torch.from_numpy(np.repeat(image[None], n, axis=0)), train=True
    )
    batch_counts = np.bincount([_symmetry_index(x, group) for x in batched], minlength=8)
    torch.manual_seed(1)
    pipeline = ImagePipeline(train=True)
    item_counts = np.bincount(
        [_symmetry_index(pipeline(image), group) for _ in range(n)], minlength=8
    )
    # P(symmetry): enumerate the 2 * 3 rotation outcomes x 4 flip outcomes by hand.
    expected = np.zeros(8)
    for turns, p_turns in [(0, 0.5), (1, 1 / 6), (2, 1 / 6), (3, 1 / 6)]:
        for hflip in (False, True):
            for vflip in (False, True):
                # a vertical flip is a horizontal flip after a half turn
                k, h = (turns + 2 * vflip) % 4, hflip != vflip
                expected[k * 2 + h] += p_turns / 4
    assert expected.sum() == pytest.approx(1.0)
    for counts in (batch_counts, item_counts):
        assert stats.chisquare(counts, expected * n).pvalue > 1e-3, counts
    assert stats.chi2_contingency(np.stack([batch_counts, item_counts])).pvalue > 1e-3


def test_draws_are_reproducible_and_do_not_depend_on_device_or_batch_order():
    images = torch.from_numpy(_images(32))
    transform = BatchImageTransform(augment=True)
    torch.manual_seed(5)
    a = transform(images, train=True)
    torch.manual_seed(5)
    b = transform(images, train=True)
    assert torch.equal(a, b)
    assert not torch.equal(a, transform(images, train=False))


# ----------------------------------------------------------- dataset and DataModule


def _dm(root, **kwargs) -> TrapDataModule:
    args = dict(
        root=str(root), train_domains=OTHERS, target_domain="RR", image_size=16, batch_size=8
    )
    dm = TrapDataModule(**{**args, **kwargs})
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("cached", [False, True])
def test_loader_yields_uint8_batches_of_the_same_images(tiny_campaign, tmp_path, cached):
    cache = str(tmp_path / "cache") if cached else None
    fast = _dm(tiny_campaign, device_transforms=True, cache_dir=cache, normalize="imagenet")
    slow = _dm(tiny_campaign, normalize="imagenet")
    for split in ("val", "predict"):
        raw, reference = next(iter(fast._loader(split))), next(iter(slow._loader(split)))
        assert raw["image"].dtype == torch.uint8 and raw["image"].shape == (8, 16, 16, 3)
        assert torch.equal(raw["row"], reference["row"])
        assert torch.equal(raw["label"], reference["label"])
        ready = fast.on_after_batch_transfer(raw, 0)  # no trainer: evaluation
        assert torch.equal(ready["image"], reference["image"])


def test_training_batches_are_augmented_on_the_device_only_in_training(tiny_campaign):
    dm = _dm(tiny_campaign, device_transforms=True)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].dtype == torch.uint8
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    trainer.state.stage = "train"  # what fit sets during a training step
    dm.trainer = trainer
    torch.manual_seed(0)
    train = dm.on_after_batch_transfer(dict(batch), 0)["image"]
    plain = BatchImageTransform(augment=False)(batch["image"], train=False)
    assert train.shape == plain.shape == (8, 3, 16, 16)
    assert not torch.equal(train, plain)  # some image of 8 was turned or flipped
    for x, y in zip(train, plain, strict=True):  # each is a symmetry of its image
        assert any(
            torch.equal(x, dihedral(y, k, h, False)) for k in range(4) for h in (False, True)
        )
    trainer.state.stage = "validate"
    assert torch.equal(dm.on_after_batch_transfer(dict(batch), 0)["image"], plain)


def test_per_item_train_augment_unchanged_by_the_batched_draws():
    """TrainAugment draws as it did before the batched path (3 coins, then k), so a
    seeded per-item run gives the same stream as before."""
    x = torch.arange(16.0).view(1, 4, 4)
    torch.manual_seed(11)
    out = TrainAugment()(x)
    torch.manual_seed(11)
    coins = torch.rand(3) < 0.5
    k = int(torch.randint(1, 4, (1,)))
    expected = dihedral(x, k if coins[0] else 0, bool(coins[1]), bool(coins[2]))
    assert torch.equal(out, expected)
