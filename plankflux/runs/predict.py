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
from omegaconf import DictConfig, OmegaConf, open_dict

from plankflux.callbacks.flux_tables import FluxTables
from plankflux.layout import SCORES_FILE
from plankflux.models.ensemble import EnsemblePredictor
from plankflux.runs.train import build_trainer

log = logging.getLogger(__name__)


def _command_line_keys() -> set[str]:
    """The config keys the user set on the command line (none outside a Hydra run)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return set()
    return {o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task}


def adopt_member_preprocessing(cfg: DictConfig, signature: dict) -> None:
    """Give ``cfg.data`` the image size, resize mode and normalisation the members were
    trained with, except where the user set them on the command line (then a mismatch
    is refused when the data are checked). Train domains play no part in prediction."""
    given = _command_line_keys()
    with open_dict(cfg):
        for key in ("image_size", "resize_mode", "normalize"):
            if f"data.{key}" not in given and cfg.data.get(key) != signature[key]:
                log.info("data.%s=%r, as the members were trained", key, signature[key])
                cfg.data[key] = signature[key]
        cfg.data.train_domains = [cfg.data.target_domain]


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
    checkpoints = (
        OmegaConf.to_container(cfg.checkpoints)
        if OmegaConf.is_config(cfg.checkpoints)
        else cfg.checkpoints
    )
    speed = cfg.get("model") or {}
    model = EnsemblePredictor(
        checkpoints, speed.get("channels_last", False), speed.get("compile", False)
    )
    adopt_member_preprocessing(cfg, model.signature)
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
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
