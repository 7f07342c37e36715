"""Two CPU processes (gloo, DDP): gathered losses and gradients equal one process on the
concatenated batch.

Each case runs this file as a script in its own subprocess (back-to-back process-group
inits in one pytest process collide), which spawns two ranks with
``torch.multiprocessing``. Each rank wraps the same tiny two-tower model in
``DistributedDataParallel``, encodes its shard, calls the loss with ``gather=True`` and
backpropagates; then it checks against the same model run on the whole batch in one
process (``gather=False``):

* the mean over ranks of the per-rank losses equals the single-process loss;
* the DDP-averaged gradients of every parameter (both towers, the log-scale and, for
  SigLIP, the bias) equal the single-process gradients.

Shards of equal (4 + 4) and unequal (3 + 5) sizes are both checked.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from plankflux.losses import LOSSES
from plankflux.utils.distributed import batch_sizes, gather_with_grad, world_info

WORLD = 2
D_IN, D_OUT = 5, 4


class TwoTowers(nn.Module):
    """Linear image and profile encoders, a learnable log-scale and (SigLIP) bias."""

    def __init__(self, with_bias: bool) -> None:
        super().__init__()
        self.image = nn.Linear(D_IN, D_OUT)
        self.profile = nn.Linear(D_IN, D_OUT)
        self.log_scale = nn.Parameter(torch.tensor(2.0))
        self.bias = nn.Parameter(torch.tensor(-3.0)) if with_bias else None

    def forward(self, xi: torch.Tensor, xp: torch.Tensor):
        return (
            F.normalize(self.image(xi), dim=1),
            F.normalize(self.profile(xp), dim=1),
            self.log_scale.exp(),
            self.bias,
        )


def _model(loss_name: str) -> TwoTowers:
    torch.manual_seed(0)  # the same initial weights on every rank and in the reference
    return TwoTowers(with_bias=loss_name == "siglip").double()


def _data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(123)
    return (
        torch.randn(n, D_IN, generator=gen, dtype=torch.float64),
        torch.randn(n, D_IN, generator=gen, dtype=torch.float64),
    )


def _check(rank: int, loss_name: str, sizes: list[int]) -> None:
    loss_fn = LOSSES[loss_name]
    xi, xp = _data(sum(sizes))

    reference = _model(loss_name)
    ref_loss = loss_fn(gather=False)(*reference(xi, xp))
    ref_loss.backward()

    ddp = nn.parallel.DistributedDataParallel(_model(loss_name))
    start = sum(sizes[:rank])
    shard = slice(start, start + sizes[rank])
    loss = loss_fn(gather=True)(*ddp(xi[shard], xp[shard]))
    loss.backward()  # DDP all-reduces (averages) the gradients here

    mean_loss = loss.detach().clone()
    dist.all_reduce(mean_loss)
    mean_loss /= WORLD
    torch.testing.assert_close(mean_loss, ref_loss.detach(), rtol=1e-12, atol=1e-14)
    for (name, p), (_, q) in zip(
        ddp.module.named_parameters(), reference.named_parameters(), strict=True
    ):
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-12, msg=name)


def _worker(rank: int, port: int, loss_name: str) -> None:
    torch.set_num_threads(1)  # two ranks on a 2-core machine: one thread each
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        assert world_info() == (WORLD, rank)
        # the gather itself: rank order, local rows are the local tensor, unequal sizes
        x = torch.full((rank + 1, 2), float(rank), requires_grad=True)
        assert batch_sizes(len(x)) == [1, 2]
        gathered = gather_with_grad(x)
        assert gathered.tolist() == [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]
        # every rank's rows receive the sum of both ranks' gradients
        (gathered * (rank + 1)).sum().backward()
        assert torch.equal(x.grad, torch.full_like(x, 3.0))

        for sizes in ([4, 4], [3, 5]):
            _check(rank, loss_name, sizes)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("loss_name", ["infonce", "siglip"])
@pytest.mark.slow  # a subprocess
def test_two_rank_gather_equals_single_process(loss_name):
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), loss_name],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok {loss_name}" in result.stdout


if __name__ == "__main__":
    name = sys.argv[1]
    mp.spawn(_worker, args=(_free_port(), name), nprocs=WORLD, join=True)
    print(f"ok {name}")
