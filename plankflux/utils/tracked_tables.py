"""Tables and images to the experiment tracker, where W&B is among the trainer's loggers.

Callbacks write their tables as files in every case; with ``logger=wandb`` (or
``many``) they also send them here, as W&B tables (per-class test metrics, flux
tables, k-NN summaries) and image panels (sample voting proposals). Without a W&B
logger these are no-ops. Call on global rank 0 only (the loggers log from rank 0).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import pandas as pd
from lightning import Trainer

log = logging.getLogger(__name__)


def _wandb_loggers(trainer: Trainer) -> list:
    from lightning.pytorch.loggers import WandbLogger

    return [lg for lg in getattr(trainer, "loggers", None) or [] if isinstance(lg, WandbLogger)]


def tracking_tables(trainer: Trainer) -> bool:
    """Whether a W&B logger would receive tables (so a caller can skip building them)."""
    return bool(_wandb_loggers(trainer))


def log_table(trainer: Trainer, key: str, frame: pd.DataFrame) -> None:
    """``frame`` as the W&B table ``key`` (columns as strings, the index left out)."""
    for logger in _wandb_loggers(trainer):
        table = frame.reset_index(drop=True).copy()
        table.columns = [str(c) for c in table.columns]
        logger.log_table(key=key, dataframe=table)


def log_images(
    trainer: Trainer, key: str, paths: Sequence[str | os.PathLike], captions: Sequence[str]
) -> None:
    """The images at ``paths`` as one W&B media panel ``key``, each with its caption."""
    if not paths:
        return
    for logger in _wandb_loggers(trainer):
        logger.log_image(key=key, images=[str(p) for p in paths], caption=list(captions))
