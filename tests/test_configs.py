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


@pytest.mark.parametrize("experiment", ["pipeline_demo", "pipeline_paper"])
def test_pipeline_experiments_compose(experiment, tmp_path):
    """pipeline_paper builds on paper_member (a nested experiment with its own overrides)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("pipeline", overrides=[f"experiment={experiment}", "data.root=x"])
    if experiment == "pipeline_paper":
        assert (cfg.data.image_size, cfg.data.batch_size, cfg.data.num_workers) == (224, 128, 8)
        assert (cfg.model.weights, cfg.trainer.max_epochs) == ("imagenet", 100)
        assert cfg.model.backbone == "resnet18"  # Paper A's member
        assert (cfg.proposals.k, cfg.minboost.k, cfg.minboost.min_verified) == (1000, 1000, 100)
    else:
        assert (cfg.data.image_size, cfg.trainer.max_epochs) == (32, 6)
        assert (cfg.model.backbone, cfg.model.weights) == ("efficientnet_lite0", "package")
        # K and the minboost threshold scaled to the demo's 1,000 RR images
        assert (cfg.proposals.k, cfg.minboost.k, cfg.minboost.min_verified) == (33, 33, 10)
        assert cfg.model.channels_last is True
    assert list(cfg.members) == [0, 1, 2, 3, 4]
    assert cfg.data._target_ == "plankflux.datamodules.trap.TrapDataModule"


@pytest.mark.parametrize(
    ("model", "system"),
    [
        ("classifier", "plankflux.models.classifier.ParticleClassifier"),
        ("clip", "plankflux.models.contrastive.ContrastiveModule"),
        ("dino", "plankflux.models.dino.DINOModule"),
    ],
)
def test_model_config_optimiser_equals_the_code_default(model, system):
    """The papers' optimiser settings stand in the configs and as code defaults (for
    systems built by hand): the two must agree."""
    import functools

    from hydra.utils import get_class

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}"])
    cls = get_class(system)
    configured = instantiate(cfg.model.optimizer)
    assert isinstance(configured, functools.partial)
    kwargs = {"class_names": ["a", "b"], "weights": None} if model == "classifier" else {}
    if model != "classifier":
        kwargs["image_tower"] = {"name": "tiny_cnn", "pretrained": False, "width": 8}
    if model == "clip":
        kwargs["profile_tower"] = {"name": "cnn"}
    built = cls(**kwargs)
    assert built.optimizer_factory.func is configured.func
    assert built.optimizer_factory.keywords == configured.keywords
    if cfg.model.scheduler is None:
        assert built.scheduler_factory is None
    else:
        scheduler = instantiate(cfg.model.scheduler)
        assert built.scheduler_factory.func is scheduler.func
        assert built.scheduler_factory.keywords == scheduler.keywords


def test_predict_takes_flux_true_as_the_readme_says():
    """``flux`` is a plain key of predict.yaml (the allometry table is not a ``flux/``
    config group, which made ``flux=true`` a group override)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("predict", overrides=["checkpoints=RUN", "flux=true"])
    assert cfg.flux is True and cfg.flux_tables._target_.endswith("FluxTables")


@pytest.mark.parametrize("task", ["train", "predict"])
def test_prediction_callbacks_switch_on_from_config(task, tmp_path):
    """``callbacks=[...]`` adds voting proposals and flux tables (their own files in
    ``conf/callbacks/``) to training's default callbacks or to prediction's none."""
    lists = (
        "[default,voting_proposals,flux_tables]"
        if task == "train"
        else "[voting_proposals,flux_tables]"
    )
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            task,
            overrides=["checkpoints=RUN"] * (task == "predict")
            + [f"callbacks={lists}", f"paths.output_dir={tmp_path}"],
        )
    built = {type(c).__name__: c for c in _instantiate_dict(cfg.callbacks)}
    assert Path(built["VotingProposals"].out_dir) == tmp_path / "proposals"
    assert Path(built["FluxTables"].out_dir) == tmp_path / "flux"
    assert ("ModelCheckpoint" in built) == (task == "train")


@pytest.mark.parametrize(("accelerator", "sync"), [("cpu", False), ("gpu", True)])
def test_ddp_switches_sync_batchnorm_off_on_cpus(accelerator, sync, monkeypatch, tmp_path):
    """SyncBatchNorm has no CPU kernel: trainer=ddp trainer.accelerator=cpu runs without it."""
    from plankflux.runs import train

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "trainer=ddp",
                f"trainer.accelerator={accelerator}",
                f"paths.output_dir={tmp_path}",
            ],
        )
    built = {}
    monkeypatch.setattr(train.hydra.utils, "instantiate", lambda c, **kw: built.update(cfg=c))
    train.build_trainer(cfg, callbacks=[])
    assert built["cfg"].sync_batchnorm is sync
    assert cfg.trainer.sync_batchnorm is True  # the run's config itself is left as it was
