"""Every training experiment config composes and builds its callbacks and Trainer."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from plankflux.layout import CONFIG_DIR
from plankflux.runs.train import _instantiate_dict

TRAIN_EXPERIMENTS = sorted(
    p.stem
    for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml")
    if not p.stem.startswith("pipeline_")  # conf/pipeline.yaml's, tested with the pipeline
)


@pytest.mark.parametrize("experiment", TRAIN_EXPERIMENTS)
def test_experiment_builds_its_callbacks_and_trainer(experiment, tmp_path):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"experiment={experiment}", "trainer=cpu", f"paths.output_dir={tmp_path}"],
        )
    callbacks = _instantiate_dict(cfg.callbacks)
    # Lightning refuses two checkpoint callbacks with the same state key, at Trainer build.
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=False)
    assert trainer.checkpoint_callback is not None
    assert Path(trainer.checkpoint_callback.dirpath) == tmp_path / "checkpoints"
