"""Rerunning ``members=[...]`` reuses a finished member only when it was trained with
the same settings; otherwise the differing keys are named (a mixed ensemble is refused)."""

from __future__ import annotations

import json

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from plankflux.errors import PlankfluxError
from plankflux.layout import CONFIG_DIR, METRICS_FILE, RUN_SETTINGS_FILE
from plankflux.runs import train


def _cfg(tmp_path, *overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "debug=tiny",
                "members=[0]",
                f"paths.output_dir={tmp_path}",
                f"paths.data_dir={tmp_path / 'data'}",
                *overrides,
            ],
        )
    return cfg


def _finished_member(tmp_path, cfg) -> None:
    """member_0 as a finished run with ``cfg``'s settings leaves it."""
    member = tmp_path / "member_0"
    member.mkdir()
    member_cfg = cfg.copy()
    with open_dict(member_cfg):
        member_cfg.seed = 0
        member_cfg.paths.output_dir = str(member)
    (member / RUN_SETTINGS_FILE).write_text(OmegaConf.to_yaml(train.training_settings(member_cfg)))
    (member / METRICS_FILE).write_text(json.dumps({"seed": 0, "best_val_loss": 1.5}))


def test_a_finished_member_with_the_same_settings_is_reused(tmp_path):
    _finished_member(tmp_path, _cfg(tmp_path))
    # Where it runs and how it is logged do not matter.
    cfg = _cfg(tmp_path, "logger=csv", "data.num_workers=2", "trainer.devices=1")
    assert train.run_members(cfg) == [{"seed": 0, "best_val_loss": 1.5}]


def test_a_finished_member_with_other_settings_is_refused_naming_the_keys(tmp_path):
    _finished_member(tmp_path, _cfg(tmp_path))
    cfg = _cfg(tmp_path, "trainer.max_epochs=8", "model.optimizer.lr=0.01")
    with pytest.raises(PlankfluxError) as refused:
        train.run_members(cfg)
    message = str(refused.value)
    assert "member_0 finished with other settings than this run" in message
    assert "model.optimizer.lr: 0.001 -> 0.01" in message
    assert "trainer.max_epochs: 2 -> 8" in message
    allowed = _cfg(tmp_path, "trainer.max_epochs=8", "allow_mixed_members=true")
    assert train.run_members(allowed) == [{"seed": 0, "best_val_loss": 1.5}]


def test_the_saved_settings_leave_out_paths_loggers_and_seed(tmp_path):
    settings = train.training_settings(_cfg(tmp_path))
    keys = set(settings)
    assert "trainer.max_epochs" in keys and "model.optimizer.lr" in keys
    assert "data.batch_size" in keys and "callbacks.early_stopping.patience" in keys
    assert not {k for k in keys if k.startswith(("paths.", "logger.", "hydra."))}
    assert "seed" not in keys and "callbacks.model_checkpoint.dirpath" not in keys


def test_speed_switches_do_not_count_as_other_training_settings(tmp_path):
    plain = train.training_settings(_cfg(tmp_path))
    fast = train.training_settings(
        _cfg(
            tmp_path,
            "data.device_transforms=true",
            "model.channels_last=true",
            "model.compile=true",
            "data.num_workers=4",
        )
    )
    assert plain == fast
    assert train.training_settings(_cfg(tmp_path, "data.augment=false")) != plain
