"""What ``plankflux predict`` does: per-member softmax scores of an ensemble on the target domain.

Writes ``scores.parquet`` (``particle_id``, ``member``, one score column per class)
and ``scores.json`` (classes, member checkpoints) into the run folder; with
``flux=true`` (or ``callbacks=flux_tables``) also ``flux/`` (per-member predictions and
flux tables); with ``callbacks=voting_proposals`` the proposal folder ``proposals/``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from plankflux.callbacks.flux_tables import FluxTables
from plankflux.layout import SCORES_FILE
from plankflux.models.ensemble import EnsemblePredictor
from plankflux.runs.train import build_trainer

log = logging.getLogger(__name__)


def instantiate_callbacks(section: DictConfig | None) -> list:
    """Every callback of a ``name: {_target_: ...}`` section (``callbacks=``)."""
    if not section:
        return []
    return [
        hydra.utils.instantiate(c, _convert_="all")
        for c in section.values()
        if c and "_target_" in c
    ]


def run(cfg: DictConfig) -> Path:
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    checkpoints = (
        OmegaConf.to_container(cfg.checkpoints)
        if OmegaConf.is_config(cfg.checkpoints)
        else cfg.checkpoints
    )
    model = EnsemblePredictor(checkpoints)
    writer = hydra.utils.instantiate(cfg.writer)
    callbacks = [writer, *instantiate_callbacks(cfg.get("callbacks"))]
    if cfg.get("flux") and not any(isinstance(c, FluxTables) for c in callbacks):
        callbacks.append(hydra.utils.instantiate(cfg.flux_tables))
    trainer: L.Trainer = build_trainer(cfg, callbacks=callbacks, logger=False)
    trainer.predict(model, datamodule=datamodule, return_predictions=True)
    out = Path(writer.out_dir) / SCORES_FILE
    if trainer.is_global_zero and not len(datamodule.splits["predict"]):
        writer.write_empty(datamodule, model)  # e.g. every target particle trained on
    if trainer.is_global_zero:
        print(
            f"plankflux predict: {len(model.members)} member(s) scored "
            f"{len(datamodule.splits['predict'])} particles of {datamodule.target_domain}: {out}"
        )
    return out
