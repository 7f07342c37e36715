"""Cross-rank feature gathering for contrastive losses (plain torch.distributed, no Lightning).

Contrastive losses want negatives from the *global* batch: under DDP each rank sees only
its own shard, so its features are gathered from every rank before the similarity
matrix is built. The gather must carry gradients back to the rank that produced each
feature: rank ``s`` uses rank ``r``'s profile features as negatives, so ``∂L_s/∂f_r``
must reach rank ``r``. :func:`gather_with_grad` uses the autograd-aware
``torch.distributed.nn.functional.all_gather`` (its backward sums the incoming
gradients on the source rank, as open_clip's ``gather_with_grad=True`` path does) and
then puts the local tensor, with its own graph, back at this rank's slot (open_clip's
trick) so the local path needs no communication at all.

A plain ``dist.all_gather`` with only the local tensor put back is *not* enough when
each rank computes the loss for its local rows only: the gradient of the other ranks'
rows with respect to this rank's features would be lost (the two-process test shows
the loss value still matching but the gradients not). :func:`global_batch` tells a loss
where its rows sit in the concatenated batch (see ``plankflux.losses``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor
from torch.distributed.nn.functional import all_gather as _all_gather_autograd


class WorldInfo(NamedTuple):
    """``world_size`` processes in the default group; this one is ``rank``."""

    world_size: int
    rank: int


def world_info() -> WorldInfo:
    """``WorldInfo(world_size, rank)``; ``(1, 0)`` when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return WorldInfo(dist.get_world_size(), dist.get_rank())
    return WorldInfo(1, 0)


def batch_sizes(n: int, device: torch.device | str = "cpu") -> list[int]:
    """Every rank's local batch size (one tiny all_gather); ``[n]`` on a single process.

    ``device`` must suit the backend (a CUDA device for NCCL).
    """
    world, _ = world_info()
    if world == 1:
        return [int(n)]
    mine = torch.tensor([int(n)], dtype=torch.long, device=device)
    every = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(every, mine)
    return [int(t.item()) for t in every]


def gather_with_grad(x: Tensor, sizes: Sequence[int] | None = None) -> Tensor:
    """Concatenate ``x`` from every rank in rank order, keeping gradients.

    Args:
        x: ``(B_r, ...)`` this rank's tensor (features ``(B_r, D)`` for the losses).
        sizes: every rank's ``B``, if already known (from :func:`batch_sizes`); fetched
            otherwise. Unequal sizes are allowed: shorter tensors are zero-padded for the
            collective and trimmed after.

    Returns:
        ``(ΣB_r, ...)`` — ``(world·B, D)`` with equal sizes; rows ``offset:offset+B_r``
        (``offset = Σ_{s<r} B_s``) are ``x`` itself. Backward sends each rank the sum of
        all ranks' gradients for its rows. Returns ``x`` unchanged on a single process.
    """
    world, rank = world_info()
    if world == 1:
        return x
    if sizes is None:
        sizes = batch_sizes(x.shape[0], x.device)
    if len(sizes) != world or sizes[rank] != x.shape[0]:
        raise ValueError(f"sizes {list(sizes)} do not fit world {world}, local batch {len(x)}")
    longest = max(sizes)
    padded = x
    if x.shape[0] < longest:  # the collective needs one shape on every rank
        pad = [0, 0] * (x.dim() - 1) + [0, longest - x.shape[0]]
        padded = F.pad(x, pad)
    parts = list(_all_gather_autograd(padded.contiguous()))
    parts = [part[:size] for part, size in zip(parts, sizes, strict=True)]
    parts[rank] = x  # the local rows keep their own graph; no round trip needed
    return torch.cat(parts, dim=0)


@dataclass(frozen=True)
class GlobalBatch:
    """Where this rank's ``B_r`` rows sit in the batch concatenated over ranks.

    ``sizes``: every rank's local batch, in rank order; ``offset``: index of this rank's
    first row in the concatenation (``Σ_{s<r} B_s``); ``mean_batch``: ``N / world``,
    the divisor that makes the mean over ranks of per-rank losses equal the
    single-process loss on all ``N`` rows. ``distributed`` is False on one process or
    when gathering is switched off; then ``sizes = (B,)``, ``offset = 0``.
    """

    distributed: bool
    sizes: tuple[int, ...]
    offset: int
    mean_batch: float

    def gather(self, x: Tensor) -> Tensor:
        """``(B_r, D) -> (N, D)`` with gradients, or ``x`` itself when not distributed."""
        return gather_with_grad(x, self.sizes) if self.distributed else x


def global_batch(n: int, device: torch.device | str = "cpu", gather: bool = True) -> GlobalBatch:
    """Describe the global batch for a local batch of ``n`` rows (one size exchange)."""
    world, rank = world_info()
    if not gather or world == 1:
        return GlobalBatch(False, (int(n),), 0, float(n))
    sizes = tuple(batch_sizes(n, device))
    return GlobalBatch(True, sizes, sum(sizes[:rank]), sum(sizes) / world)
