"""DINO self-distillation loss (Caron et al. 2021), the image-only baseline of Paper B.

A student network sees every view of an image (``V_s`` = 2 global + ``n`` local
crops), an EMA teacher only the ``V_t`` = 2 global ones. With ``K`` output dimensions,
student temperature ``τ_s`` and teacher temperature ``τ_t``::

    q_i = softmax((g_t(x_i) − c) / τ_t)        teacher view i, centred and sharpened
    p_v = softmax(g_s(x_v) / τ_s)              student view v
    L   = mean over pairs (i, v), v ≠ i, of  (1/B) Σ_b  −q_i[b] · log p_v[b]

Teacher view ``i`` is the same crop as student view ``i`` (globals come first), so a
global view is never compared with itself: ``V_t·V_s − V_t`` pairs. The centre ``c``
(``K``,) follows the teacher's raw outputs by EMA (``c ← m·c + (1 − m)·mean``) after
the loss is computed; centring keeps one dimension from dominating, sharpening keeps
the teacher from going uniform — together they prevent collapse.

The centre is updated only while the module is in training mode (as BatchNorm's
running statistics), so validation and test losses leave it untouched. Under
torch.distributed the batch mean is taken over every rank's rows (one all-reduce of
the sum and of the row count), so every rank holds the same centre.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from plankflux.losses.infonce import upcast_half
from plankflux.utils.distributed import world_info


class DINOLoss(nn.Module):
    """Cross-entropy between centred, sharpened teacher and student distributions.

    Args:
        out_dim: ``K``, the head's output dimension (size of the ``center`` buffer).
        student_temp: ``τ_s`` (DINO: 0.1).
        center_momentum: ``m`` of the centre's EMA (DINO: 0.9).
    """

    def __init__(self, out_dim: int, student_temp: float = 0.1, center_momentum: float = 0.9):
        super().__init__()
        self.out_dim = int(out_dim)
        self.student_temp = float(student_temp)
        self.center_momentum = float(center_momentum)
        # A buffer, not a parameter: saved in checkpoints (resuming keeps the centre) but
        # never optimised.
        self.register_buffer("center", torch.zeros(self.out_dim))

    def forward(self, student_out: Tensor, teacher_out: Tensor, teacher_temp: float) -> Tensor:
        """Scalar loss.

        Args:
            student_out: ``(V_s, B, K)`` student head outputs (logits) for every view.
            teacher_out: ``(V_t, B, K)`` teacher head outputs for the first ``V_t``
                views (the global crops), ``1 <= V_t <= V_s``, ``V_s >= 2``; detached
                here (no gradient flows into the teacher).
            teacher_temp: ``τ_t`` of this step (the system owns its schedule).
        """
        if student_out.dim() != 3 or teacher_out.dim() != 3:
            raise ValueError(
                f"expected (V, B, K) outputs, got {tuple(student_out.shape)} and "
                f"{tuple(teacher_out.shape)}"
            )
        n_student, batch, dim = student_out.shape
        n_teacher = teacher_out.shape[0]
        if teacher_out.shape[1:] != (batch, dim) or dim != self.out_dim:
            raise ValueError(
                f"student {tuple(student_out.shape)} and teacher {tuple(teacher_out.shape)} "
                f"do not agree on (B, K={self.out_dim})"
            )
        if not 1 <= n_teacher <= n_student or n_student < 2:
            raise ValueError(f"need 1 <= V_t ({n_teacher}) <= V_s ({n_student}) and V_s >= 2")
        teacher_out = teacher_out.detach()
        # Softmax at τ = 0.04 amplifies logits 25-fold: half precision would lose them.
        with torch.autocast(student_out.device.type, enabled=False):
            student_out, teacher_out = upcast_half(student_out), upcast_half(teacher_out)
            log_p = F.log_softmax(student_out / self.student_temp, dim=-1)
            q = F.softmax((teacher_out - self.center) / teacher_temp, dim=-1)
            # cross[i, v] = (1/B) Σ_b −q_i[b]·log p_v[b]: every teacher × student pair.
            cross = -torch.einsum("ibk,vbk->iv", q, log_p) / batch  # (V_t, V_s)
            same_view = torch.eye(n_teacher, n_student, dtype=torch.bool, device=cross.device)
            loss = cross[~same_view].mean()
        if self.training:
            self.update_center(teacher_out)
        return loss

    @torch.no_grad()
    def update_center(self, teacher_out: Tensor) -> None:
        """``c ← m·c + (1 − m)·mean`` of the raw teacher outputs ``(V_t, B, K)`` over all
        ``V_t·B`` rows of every rank."""
        rows = teacher_out.reshape(-1, self.out_dim).to(self.center.dtype)
        total = rows.sum(dim=0)
        count = torch.tensor(float(len(rows)), device=rows.device)
        if world_info().world_size > 1:
            # Sum and count separately: exact even when the ranks' batches differ.
            dist.all_reduce(total)
            dist.all_reduce(count)
        mean = total / count
        self.center.mul_(self.center_momentum).add_(mean * (1 - self.center_momentum))
