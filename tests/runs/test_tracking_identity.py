"""W&B group, name and tags of a run: by sweep, run folder or pipeline workspace."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from plankflux.layout import CONFIG_DIR
from plankflux.runs.tracking import identity, instantiate_loggers


@pytest.fixture
def hydra_job():
    """A composed config whose HydraConfig is set as in a running job."""

    def make(config: str, overrides: list[str], mode: RunMode, output_dir: str, **hydra):
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config, overrides=overrides, return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.mode = mode
            cfg.hydra.runtime.output_dir = output_dir
            cfg.hydra.overrides.task = overrides
            cfg.paths.output_dir = output_dir
            for key, value in hydra.items():
                OmegaConf.update(cfg, f"hydra.{key}", value, merge=True)
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield make
    HydraConfig.instance().cfg = None


def test_sweep_job_of_a_study(hydra_job, tmp_path):
    sweep = tmp_path / "tune_lr" / "multiruns" / "2026-11-30_08-00-00"
    (sweep / "3").mkdir(parents=True)
    (sweep / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    task: ['seed=0,1,2,3,4', debug=tiny, logger=wandb]\n"
    )
    cfg = hydra_job(
        "train",
        ["experiment=tune_lr", "model.optimizer.lr=0.0001", "seed=3", "debug=tiny", "logger=wandb"],
        RunMode.MULTIRUN,
        str(sweep / "3"),
        sweep={"dir": str(sweep), "subdir": "3"},
    )
    ident = identity(cfg)
    assert ident["group"] == "tune_lr/2026-11-30_08-00-00"
    # swept: seed (command line) and the learning rate (the experiment's sweeper params)
    assert ident["name"] == "model.optimizer.lr=0.0001,seed=3"
    assert ident["tags"] == ["tune_lr", "experiment=tune_lr", "arm=lowLR", "seed=3"]
    (logger,) = instantiate_loggers(cfg)
    assert (logger._wandb_init["group"], logger._wandb_init["name"]) == (
        ident["group"],
        ident["name"],
    )


def test_pipeline_stage_member(hydra_job, tmp_path):
    workspace = tmp_path / "pipeline" / "RR"
    cfg = hydra_job("pipeline", ["target=RR"], RunMode.RUN, str(workspace))
    with open_dict(cfg):
        cfg.paths.output_dir = str(workspace / "retrain" / "verify" / "member_2")
        cfg.seed = 2
    ident = identity(cfg)
    assert ident["group"] == "pipeline/RR"
    assert ident["name"] == "retrain/verify/member_2"
    assert "seed=2" in ident["tags"] and ident["tags"][0] == "pipeline"


@pytest.mark.parametrize(("mode", "offline"), [(None, True), ("offline", True), ("online", False)])
def test_wandb_is_offline_unless_wandb_mode_online(hydra_job, tmp_path, monkeypatch, mode, offline):
    if mode is None:
        monkeypatch.delenv("WANDB_MODE", raising=False)
    else:
        monkeypatch.setenv("WANDB_MODE", mode)
    cfg = hydra_job("train", ["logger=many"], RunMode.RUN, str(tmp_path))
    csv, wandb = instantiate_loggers(cfg)
    assert type(csv).__name__ == "CSVLogger"
    assert wandb._offline is offline
