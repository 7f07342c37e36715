"""Optical-profile towers for cross-modal pre-training (Paper B, docs/paper_b.md).

Input: profiles ``(B, 6, T)`` channels-first (forward scatter, sideward scatter,
fluorescence green, yellow, orange, red along the particle), optionally with
``lengths`` ``(B,)``: the number of valid positions of each zero-padded profile. The
paper's pipeline resamples every profile to 224 positions, so ``lengths`` is only
needed for raw, variable-length batches. Every tower has an integer ``width`` and
``forward_features(x, lengths=None) -> (B, width)``; ``forward`` is the same.

* ``cnn`` (:class:`ProfileResNet1D`): 1D ResNet-18 → 256 (global max pool);
* ``bilstm`` (:class:`ProfileBiLSTM`): one bidirectional LSTM layer → 256;
* ``transformer`` (:class:`ProfileTransformer`): 6-layer encoder, CLS output → 128.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence


def _check_input(x: Tensor, in_chans: int, lengths: Tensor | None) -> None:
    if x.dim() != 3 or x.shape[1] != in_chans:
        raise ValueError(f"expected profiles (B, {in_chans}, T), got {tuple(x.shape)}")
    if lengths is not None:
        if lengths.shape != (x.shape[0],):
            raise ValueError(f"lengths must be (B,) = ({x.shape[0]},), got {tuple(lengths.shape)}")
        if (lengths < 1).any() or (lengths > x.shape[2]).any():
            raise ValueError(f"lengths must lie in [1, T={x.shape[2]}], got {lengths.tolist()}")


class BasicBlock1D(nn.Module):
    """ResNet basic block with 1D convolutions (k3, k3) and a 1×1 projection shortcut."""

    def __init__(self, in_chans: int, out_chans: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(in_chans, out_chans, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm1d(out_chans)
        self.conv2 = nn.Conv1d(out_chans, out_chans, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm1d(out_chans)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_chans != out_chans:
            self.shortcut = nn.Sequential(
                nn.Conv1d(in_chans, out_chans, 1, stride=stride, bias=False),
                nn.BatchNorm1d(out_chans),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ProfileResNet1D(nn.Module):
    """1D ResNet-18: stem conv k3 s2 → 32, BN, ReLU, max pool k3 s2; stages of two
    basic blocks at 32/64/128/256 channels (stride 2 from the second); global max pool.

    ``(B, 6, T) -> (B, 256)``. Each stride-2 step maps a length ``L`` to ``ceil(L/2)``
    (five of them), so with ``lengths`` the final max pool only looks at the first
    ``ceil(L/32)`` positions of each profile (zero padding still reaches the last
    valid positions through the convolutions' receptive fields).
    """

    def __init__(self, in_chans: int = 6, widths: tuple[int, ...] = (32, 64, 128, 256)) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.stem = nn.Sequential(
            nn.Conv1d(in_chans, widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm1d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool1d(3, stride=2, padding=1),
        )
        stages, prev = [], widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(BasicBlock1D(prev, w, stride), BasicBlock1D(w, w)))
            prev = w
        self.stages = nn.Sequential(*stages)
        self.n_halvings = 2 + len(widths) - 1  # stem conv, stem pool, stages 2..
        self.width = widths[-1]

    def forward_features(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        _check_input(x, self.in_chans, lengths)
        h = self.stages(self.stem(x))  # (B, 256, T')
        if lengths is None:
            return h.amax(dim=2)
        valid = lengths.to(h.device)
        for _ in range(self.n_halvings):
            valid = torch.div(valid + 1, 2, rounding_mode="floor")  # ceil(L / 2)
        pad = torch.arange(h.shape[2], device=h.device)[None, :] >= valid[:, None]  # (B, T')
        return h.masked_fill(pad[:, None, :], float("-inf")).amax(dim=2)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.forward_features(x, lengths)


class ProfileBiLSTM(nn.Module):
    """Linear 6→128, one bidirectional LSTM layer (hidden 128 per direction).

    ``(B, 6, T) -> (B, 256)``: the forward direction's state after the last valid
    position concatenated with the backward direction's state at the first position
    (its final state). With ``lengths`` the padded batch is packed, so padding never
    enters either direction.
    """

    def __init__(self, in_chans: int = 6, embed: int = 128, hidden: int = 128) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.embed = nn.Linear(in_chans, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=1, batch_first=True, bidirectional=True)
        self.width = 2 * hidden

    def forward_features(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        _check_input(x, self.in_chans, lengths)
        h = self.embed(x.transpose(1, 2))  # (B, T, 128)
        if lengths is not None:
            # enforce_sorted=False: h_n comes back in the caller's batch order.
            h = pack_padded_sequence(h, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(h)  # h_n: (2, B, hidden) = (forward last, backward first)
        return torch.cat([h_n[0], h_n[1]], dim=1)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.forward_features(x, lengths)


class ProfileTransformer(nn.Module):
    """Linear 6→128, a learned CLS token, learned positions, 6 encoder layers (4 heads,
    feed-forward 256, GELU, dropout 0.2; PyTorch's post-norm layer); output the CLS
    token's final state.

    ``(B, 6, T) -> (B, 128)`` for ``T <= max_len``; with ``lengths`` the padded
    positions are masked out of attention.
    """

    def __init__(
        self,
        in_chans: int = 6,
        dim: int = 128,
        depth: int = 6,
        heads: int = 4,
        ff_dim: int = 256,
        dropout: float = 0.2,
        max_len: int = 512,
    ) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.max_len = max_len
        self.embed = nn.Linear(in_chans, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, max_len + 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, ff_dim, dropout=dropout, activation="gelu", batch_first=True
        )
        # No nested tensors: they change nothing here and warn on every construction.
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.width = dim

    def forward_features(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        _check_input(x, self.in_chans, lengths)
        batch, _, steps = x.shape
        if steps > self.max_len:
            raise ValueError(f"profile length {steps} exceeds max_len={self.max_len}")
        h = self.embed(x.transpose(1, 2))  # (B, T, dim)
        h = torch.cat([self.cls_token.expand(batch, -1, -1), h], dim=1)
        h = h + self.pos_embed[:, : steps + 1]
        mask = None
        if lengths is not None:
            pad = torch.arange(steps, device=x.device)[None, :] >= lengths.to(x.device)[:, None]
            mask = torch.cat([pad.new_zeros(batch, 1), pad], dim=1)  # the CLS is never masked
        return self.encoder(h, src_key_padding_mask=mask)[:, 0]

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.forward_features(x, lengths)


PROFILE_TOWERS: dict[str, type[nn.Module]] = {
    "cnn": ProfileResNet1D,
    "resnet1d": ProfileResNet1D,
    "bilstm": ProfileBiLSTM,
    "transformer": ProfileTransformer,
}


def build_profile_tower(name: str, **kwargs) -> nn.Module:
    """Build the profile tower ``name`` (``cnn``/``resnet1d``, ``bilstm``, ``transformer``)."""
    try:
        cls = PROFILE_TOWERS[name]
    except KeyError:
        raise ValueError(
            f"unknown profile tower {name!r}; choose from {sorted(PROFILE_TOWERS)}"
        ) from None
    return cls(**kwargs)
