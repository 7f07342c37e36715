"""InfoNCE and SigLIP against hand-written loops from the papers' formulas and analytic cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from plankflux.losses import LOSSES, InfoNCELoss, SigLIPLoss
from plankflux.utils.distributed import world_info


def _features(b: int, d: int, seed: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(b, d, generator=gen, dtype=dtype), dim=1)
    y = F.normalize(torch.randn(b, d, generator=gen, dtype=dtype), dim=1)
    return x, y


def _dot(u: list[float], v: list[float]) -> float:
    return sum(a * b for a, b in zip(u, v, strict=True))


def infonce_loop(x: list[list[float]], y: list[list[float]], t: float) -> float:
    """CLIP: ½ [mean_i CE(row i of t·XYᵀ, i) + mean_j CE(column j, j)], term by term."""
    n = len(x)
    total = 0.0
    for i in range(n):  # image i against every profile
        logits = [t * _dot(x[i], y[j]) for j in range(n)]
        total += math.log(sum(math.exp(v) for v in logits)) - logits[i]
    for j in range(n):  # profile j against every image
        logits = [t * _dot(x[i], y[j]) for i in range(n)]
        total += math.log(sum(math.exp(v) for v in logits)) - logits[j]
    return total / (2 * n)


def siglip_loop(x: list[list[float]], y: list[list[float]], t: float, b: float) -> float:
    """SigLIP: −(1/N) Σ_i Σ_j log σ(z_ij (t·x_i·y_j + b)), z = +1 iff i == j."""
    n = len(x)
    total = 0.0
    for i in range(n):
        for j in range(n):
            z = 1.0 if i == j else -1.0
            u = z * (t * _dot(x[i], y[j]) + b)
            total += -math.log(1.0 / (1.0 + math.exp(-u)))
    return total / n


@pytest.mark.parametrize("b,d,t", [(1, 3, 1.0), (5, 8, 14.3), (16, 4, 100.0)])
def test_infonce_matches_loop(b, d, t):
    x, y = _features(b, d, seed=b)
    got = InfoNCELoss()(x, y, torch.tensor(t, dtype=torch.float64))
    assert got.dim() == 0
    assert got.item() == pytest.approx(infonce_loop(x.tolist(), y.tolist(), t), rel=1e-12)


@pytest.mark.parametrize("b,d,t,bias", [(1, 3, 1.0, 0.0), (5, 8, 10.0, -10.0), (12, 4, 3.0, 2.5)])
def test_siglip_matches_loop(b, d, t, bias):
    x, y = _features(b, d, seed=10 + b)
    got = SigLIPLoss()(x, y, torch.tensor(t, dtype=torch.float64), torch.tensor(bias))
    assert got.dim() == 0
    assert got.item() == pytest.approx(siglip_loop(x.tolist(), y.tolist(), t, bias), rel=1e-12)


def _infonce_torch_loop(x, y, t, b):
    n = len(x)
    total = 0.0
    for i in range(n):
        row = torch.stack([t * (x[i] * y[j]).sum() for j in range(n)])
        col = torch.stack([t * (x[j] * y[i]).sum() for j in range(n)])
        total = total + torch.logsumexp(row, 0) - row[i] + torch.logsumexp(col, 0) - col[i]
    return total / (2 * n)


def _siglip_torch_loop(x, y, t, b):
    n = len(x)
    total = 0.0
    for i in range(n):
        for j in range(n):
            z = 1.0 if i == j else -1.0
            total = total - torch.log(torch.sigmoid(z * (t * (x[i] * y[j]).sum() + b)))
    return total / n


@pytest.mark.parametrize("name", ["infonce", "siglip"])
def test_gradients_match_a_torch_loop(name):
    # The loops above rebuilt from torch scalars: autograd through them gives reference
    # gradients for both feature sets, the scale and (SigLIP) the bias.
    x, y = _features(4, 3, seed=3)
    t, b = torch.tensor(5.0, dtype=torch.float64), torch.tensor(-2.0, dtype=torch.float64)
    got_leaves = [v.clone().requires_grad_() for v in (x, y, t, b)]
    ref_leaves = [v.clone().requires_grad_() for v in (x, y, t, b)]
    if name == "infonce":
        got = InfoNCELoss()(*got_leaves[:3])
        ref = _infonce_torch_loop(*ref_leaves)
    else:
        got = SigLIPLoss()(*got_leaves)
        ref = _siglip_torch_loop(*ref_leaves)
    got.backward()
    ref.backward()
    torch.testing.assert_close(got.detach(), ref.detach(), rtol=1e-12, atol=0)
    for mine, theirs in zip(got_leaves, ref_leaves, strict=True):
        if theirs.grad is None:  # InfoNCE's loop never touches the bias
            assert mine.grad is None
        else:
            torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-10, atol=1e-12)


def test_infonce_perfect_alignment_with_large_scale_is_zero():
    x = torch.eye(6, 8, dtype=torch.float64)  # orthonormal rows: cos 1 on the diagonal, 0 off
    loss = InfoNCELoss()(x, x.clone(), 100.0)
    # exact value log(1 + 5 e^-100) ≈ 2e-43
    assert 0.0 <= loss.item() < 1e-30


def test_infonce_identical_embeddings_give_log_b():
    b = 7
    v = F.normalize(torch.randn(1, 5, dtype=torch.float64), dim=1).expand(b, 5)
    for t in (1.0, 30.0):
        assert InfoNCELoss()(v, v, t).item() == pytest.approx(math.log(b), rel=1e-12)


def test_infonce_is_symmetric_in_image_and_profile():
    x, y = _features(9, 6, seed=5)
    loss = InfoNCELoss()
    assert loss(x, y, 12.0).item() == pytest.approx(loss(y, x, 12.0).item(), rel=1e-13)
    # ... while the single directions differ: the symmetry is the averaging
    logits = 12.0 * x @ y.T
    target = torch.arange(9)
    assert F.cross_entropy(logits, target).item() != pytest.approx(
        F.cross_entropy(logits.T, target).item(), rel=1e-6
    )


def _log_sigmoid(u: float) -> float:
    return -math.log1p(math.exp(-u))


def test_siglip_b2_by_hand():
    # Orthonormal pairs: cos = I. t=10, b=-5: diagonal logit 5 (z=+1), off-diagonal -5
    # (z=-1): all four terms are -log σ(5); sum / B = 4·log(1+e^-5) / 2.
    eye = torch.eye(2, dtype=torch.float64)
    got = SigLIPLoss()(eye, eye.clone(), 10.0, -5.0).item()
    assert got == pytest.approx(2 * math.log1p(math.exp(-5)), rel=1e-12)

    # x = [(1,0), (.6,.8)], y = [(.6,.8), (0,1)]: cos = [[.6, 0], [1, .8]];
    # t=2, b=-1: logits [[0.2, -1], [1, 0.6]]; z·logit = [[0.2, 1], [-1, 0.6]].
    x = torch.tensor([[1.0, 0.0], [0.6, 0.8]], dtype=torch.float64)
    y = torch.tensor([[0.6, 0.8], [0.0, 1.0]], dtype=torch.float64)
    expected = -(_log_sigmoid(0.2) + _log_sigmoid(1.0) + _log_sigmoid(-1.0) + _log_sigmoid(0.6))
    assert SigLIPLoss()(x, y, 2.0, -1.0).item() == pytest.approx(expected / 2, rel=1e-12)
    # no bias = bias 0
    assert SigLIPLoss()(x, y, 2.0).item() == pytest.approx(SigLIPLoss()(x, y, 2.0, 0.0).item())


def test_siglip_at_bias_minus_ten_the_positives_carry_the_loss():
    # With b = -10 every negative's term is ~e^-10 and every positive's ~10: the start
    # the SigLIP paper describes (loss ≈ 10 per positive pair, negatives nearly free).
    x, y = _features(8, 4, seed=2)
    loss = SigLIPLoss()(x, y, 1.0, -10.0).item()
    assert 9.0 < loss < 11.1


def test_half_precision_features_are_scored_in_float32():
    x, y = _features(6, 8, seed=4, dtype=torch.float32)
    for loss in (InfoNCELoss(), SigLIPLoss()):
        ref = loss(x, y, 50.0)
        got = loss(x.bfloat16(), y.bfloat16(), 50.0)
        assert got.dtype == torch.float32
        assert got.item() == pytest.approx(ref.item(), rel=0.05)


def test_single_process_gather_changes_nothing():
    assert world_info() == (1, 0)
    x, y = _features(5, 4, seed=8)
    for cls in LOSSES.values():
        assert cls(gather=True)(x, y, 3.0).item() == cls(gather=False)(x, y, 3.0).item()


def test_bad_inputs_raise():
    x, y = _features(4, 3, seed=0)
    with pytest.raises(ValueError, match="logit_bias"):
        InfoNCELoss()(x, y, 1.0, -10.0)
    with pytest.raises(ValueError, match="one shape"):
        SigLIPLoss()(x, y[:3], 1.0)
    with pytest.raises(ValueError, match="empty"):
        InfoNCELoss()(x[:0], y[:0], 1.0)
