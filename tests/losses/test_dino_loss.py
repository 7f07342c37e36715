"""DINOLoss against the paper's pseudocode, analytic cases, the centre and two CPU ranks."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from plankflux.losses import LOSSES, DINOLoss


def reference_loss(student, teacher, center, student_temp, teacher_temp) -> torch.Tensor:
    """DINO's loop (Caron et al. 2021, Algorithm 1 and ``DINOLoss.forward``), written out."""
    total, pairs = 0.0, 0
    for i in range(len(teacher)):
        q = F.softmax((teacher[i] - center) / teacher_temp, dim=-1)
        for v in range(len(student)):
            if v == i:  # a view is never compared with itself
                continue
            log_p = F.log_softmax(student[v] / student_temp, dim=-1)
            total = total + torch.sum(-q * log_p, dim=-1).mean()
            pairs += 1
    return total / pairs


def _outputs(n_student=8, n_teacher=2, batch=3, dim=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    student = torch.randn(n_student, batch, dim, generator=gen, dtype=torch.float64)
    teacher = torch.randn(n_teacher, batch, dim, generator=gen, dtype=torch.float64)
    return student, teacher


def test_dino_is_not_a_clip_loss():
    assert set(LOSSES) == {"infonce", "siglip"}


@pytest.mark.parametrize("n_student,n_teacher", [(8, 2), (2, 2), (3, 1)])
def test_matches_the_papers_loop_with_a_centre(n_student, n_teacher):
    student, teacher = _outputs(n_student, n_teacher)
    loss_fn = DINOLoss(5, student_temp=0.1).double().eval()
    loss_fn.center.copy_(torch.tensor([0.3, -0.2, 0.0, 0.5, -0.1]))
    got = loss_fn(student, teacher, teacher_temp=0.04)
    expected = reference_loss(student, teacher, loss_fn.center, 0.1, 0.04)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_identical_one_hot_views_give_the_closed_form():
    # Every view = a·e_j: CE = log(e^{a/τs} + K − 1) − q_j·a/τs, q_j = e^{a/τt}/(e^{a/τt} + K − 1).
    a, dim, ts, tt = 1.0, 4, 0.1, 0.04
    one_hot = torch.zeros(3, 2, dim, dtype=torch.float64)
    one_hot[..., 2] = a
    q_j = math.exp(a / tt) / (math.exp(a / tt) + dim - 1)
    expected = math.log(math.exp(a / ts) + dim - 1) - q_j * a / ts
    got = DINOLoss(dim, student_temp=ts).double()(one_hot, one_hot[:2], teacher_temp=tt)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    # A uniform student costs log K whatever the teacher says.
    flat = torch.zeros_like(one_hot)
    uniform = DINOLoss(dim).double()(flat, one_hot[:2], teacher_temp=tt)
    assert uniform.item() == pytest.approx(math.log(dim), rel=1e-12)


def test_a_teacher_view_never_teaches_its_own_student_view():
    # Student view 0 is paired only with teacher view 1: its gradient is
    # (p_0 − q_1) / (τs · B · pairs), and teacher view 0 does not enter it.
    student, teacher = _outputs(n_student=3, n_teacher=2, batch=4)
    student.requires_grad_(True)
    ts, tt = 0.1, 0.05
    DINOLoss(5, student_temp=ts).double().eval()(student, teacher, tt).backward()
    p0 = F.softmax(student[0].detach() / ts, dim=-1)
    q1 = F.softmax(teacher[1] / tt, dim=-1)
    pairs = 2 * 3 - 2
    torch.testing.assert_close(student.grad[0], (p0 - q1) / (ts * 4 * pairs))
    # Changing teacher view 0 leaves that gradient alone.
    student.grad = None
    moved = teacher.clone()
    moved[0] += 10 * torch.randn_like(moved[0])
    DINOLoss(5, student_temp=ts).double().eval()(student, moved, tt).backward()
    torch.testing.assert_close(student.grad[0], (p0 - q1) / (ts * 4 * pairs))


def test_no_gradient_reaches_the_teacher():
    student, teacher = _outputs()
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    DINOLoss(5).double()(student, teacher, 0.04).backward()
    assert teacher.grad is None and torch.isfinite(student.grad).all()


def test_centre_follows_the_raw_teacher_mean_in_training_mode_only():
    student, teacher = _outputs(batch=3)
    loss_fn = DINOLoss(5, center_momentum=0.9).double()
    first = loss_fn(student, teacher, 0.04)
    mean = teacher.reshape(-1, 5).mean(0)  # over both global views and the batch
    torch.testing.assert_close(loss_fn.center, 0.1 * mean)
    # The loss used the old centre (zero), the update came after.
    torch.testing.assert_close(first, reference_loss(student, teacher, 0.0, 0.1, 0.04))
    student2, teacher2 = _outputs(batch=3, seed=1)
    loss_fn(student2, teacher2, 0.04)
    expected = 0.9 * 0.1 * mean + 0.1 * teacher2.reshape(-1, 5).mean(0)
    torch.testing.assert_close(loss_fn.center, expected)
    loss_fn.eval()
    loss_fn(student, teacher, 0.04)
    torch.testing.assert_close(loss_fn.center, expected)
    assert "center" in loss_fn.state_dict()  # saved with checkpoints


def test_half_precision_outputs_are_computed_in_float32():
    student, teacher = _outputs()
    exact = DINOLoss(5).double().eval()(student, teacher, 0.04)
    half = DINOLoss(5).eval()(student.bfloat16(), teacher.bfloat16(), 0.04)
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(exact.item(), rel=2e-2)


@pytest.mark.parametrize(
    "student_shape,teacher_shape",
    [((2, 3, 5), (3, 3, 5)), ((1, 3, 5), (1, 3, 5)), ((2, 3, 5), (2, 4, 5)), ((6, 5), (2, 5))],
)
def test_bad_shapes_are_refused(student_shape, teacher_shape):
    with pytest.raises(ValueError):
        DINOLoss(5)(torch.zeros(student_shape), torch.zeros(teacher_shape), 0.04)


# ------------------------------------------------------------------ two CPU ranks

WORLD = 2


def _worker(rank: int, port: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        for sizes in ([4, 4], [3, 5]):
            student, teacher = _outputs(n_student=4, n_teacher=2, batch=sum(sizes))
            reference = DINOLoss(5).double()
            ref_loss = reference(student, teacher, 0.04)
            start = sum(sizes[:rank])
            shard = slice(start, start + sizes[rank])
            loss_fn = DINOLoss(5).double()
            loss = loss_fn(student[:, shard], teacher[:, shard], 0.04)
            # The centre is the mean over every rank's rows, also with unequal shards.
            torch.testing.assert_close(loss_fn.center, reference.center, rtol=1e-12, atol=1e-14)
            if sizes[0] == sizes[1]:  # DDP's mean over ranks = the whole batch's loss
                mean = loss.detach().clone()
                dist.all_reduce(mean)
                torch.testing.assert_close(mean / WORLD, ref_loss, rtol=1e-12, atol=1e-14)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # a subprocess
def test_two_ranks_share_one_centre():
    # A subprocess of its own: process-group inits in one pytest process collide.
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve())],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok dino" in result.stdout


if __name__ == "__main__":
    mp.spawn(_worker, args=(_free_port(),), nprocs=WORLD, join=True)
    print("ok dino")
