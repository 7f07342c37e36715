"""Checkpoint files written straight to disk, atomically."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO


class LocalCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, twice as fast for local files.

    Lightning serialises a checkpoint into memory and then copies it to disk; for a
    ResNet-18 with its AdamW state (134 MB) that doubles the time of every ``best.ckpt``
    and ``last.ckpt`` write. This writes the same bytes straight into a temporary file
    beside the target and renames it into place, so a checkpoint is still never seen
    half-written. Remote paths (``scheme://...``) and ``storage_options`` go through
    Lightning's own writer. Set as ``trainer.plugins`` in ``plankflux/conf/trainer/default.yaml``.
    """

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Not tempfile.mkstemp: its 0600 mode would make checkpoints private to the user.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            torch.save(checkpoint, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
