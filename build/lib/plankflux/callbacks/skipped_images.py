"""Writes the list of particles skipped for unreadable images into the run folder."""

from __future__ import annotations

import logging
import os

from lightning import Callback, LightningModule, Trainer

from plankflux.data.campaign import write_skipped_list

log = logging.getLogger(__name__)


class SkippedImagesWriter(Callback):
    """After data set-up, writes ``datamodule.skipped`` (if any) to ``path`` as CSV.

    Only datamodules built with ``skip_unreadable=True`` skip anything; the file is
    written only when something was skipped, so its presence is the signal.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = path

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        skipped = getattr(trainer.datamodule, "skipped", None)
        if skipped and trainer.is_global_zero:
            write_skipped_list(skipped, self.path)
            log.warning("%d particle(s) skipped, listed in %s", len(skipped), self.path)
