"""What the training and prediction benchmarks share: an epoch timer and the device's name."""

from __future__ import annotations

import platform
import time

import lightning as L
import torch


class EpochTimer(L.Callback):
    """Wall time and items (``len(batch["image"])``) of every training epoch after the
    first, which warms up (cuDNN autotuning, compilation, the page cache)."""

    def __init__(self):
        self.seconds, self.items, self._start = 0.0, 0, 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch > 0:
            self.items += len(batch["image"])

    def on_train_epoch_end(self, trainer, pl_module):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if trainer.current_epoch > 0:
            self.seconds += time.perf_counter() - self._start

    @property
    def rate(self) -> float:
        """Items per second over the timed epochs."""
        return self.items / self.seconds


def device_name(accelerator: str) -> str:
    """The GPU's name, or the CPU and its torch threads."""
    if torch.cuda.is_available() and accelerator != "cpu":
        return torch.cuda.get_device_name(0)
    return f"CPU {platform.machine()}, {torch.get_num_threads()} threads"
