"""What ``plankflux train`` does with its config: fit (and test) a model, or one per seed.

Instantiates, from ``plankflux/conf/train.yaml``: the DataModule (``data``), the LightningModule
(``model``, given the data's class names), callbacks, loggers and a Trainer. Each run
writes into its own dated folder: ``.hydra/config.yaml`` (the resolved config),
``checkpoints/best.ckpt`` and ``last.ckpt``, the logger's metrics and
``metrics.json`` (best validation loss, best checkpoint, test metrics).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf, open_dict

from plankflux.callbacks.flux_tables import FluxTables
from plankflux.callbacks.prediction_writer import EnsembleScoreWriter
from plankflux.callbacks.voting_proposals import VotingProposals
from plankflux.errors import PlankfluxError
from plankflux.layout import CHECKPOINT_DIR, LAST_CHECKPOINT, METRICS_FILE, RUN_SETTINGS_FILE
from plankflux.models.checkpoints import read_checkpoint
from plankflux.runs import tracking
from plankflux.utils.atomic import atomic_open, remove_partial_writes

log = logging.getLogger(__name__)


def _instantiate_dict(section: DictConfig | None) -> list:
    """Instantiate every entry of a ``name: {_target_: ...}`` config section."""
    if not section:
        return []
    return [hydra.utils.instantiate(cfg) for cfg in section.values() if cfg and "_target_" in cfg]


def _to_float(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _prediction_callbacks(callbacks: list) -> list:
    return [
        c for c in callbacks if isinstance(c, EnsembleScoreWriter | VotingProposals | FluxTables)
    ]


def _with_score_writer(callbacks: list, cfg: DictConfig) -> list:
    """Voting proposals read the scores a score writer wrote: add one if none is listed."""
    wanted = any(isinstance(c, VotingProposals) for c in callbacks)
    if wanted and not any(isinstance(c, EnsembleScoreWriter) for c in callbacks):
        callbacks.append(EnsembleScoreWriter(cfg.paths.output_dir))
    return callbacks


def run(cfg: DictConfig) -> dict:
    """Fit and/or test as configured; return the metrics also written to ``metrics.json``."""
    L.seed_everything(cfg.seed, workers=True)
    # Plain containers (not OmegaConf) so checkpoints load with weights_only=True.
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    model = hydra.utils.instantiate(
        cfg.model, class_names=list(datamodule.class_names), _convert_="all"
    )
    callbacks = _with_score_writer(_instantiate_dict(cfg.get("callbacks")), cfg)
    loggers = tracking.instantiate_loggers(cfg)
    try:
        summary = _fit_and_test(cfg, datamodule, model, callbacks, loggers)
    except BaseException:
        tracking.finish_loggers(loggers, failed=True)
        raise
    tracking.finish_loggers(loggers)
    return summary


def build_trainer(cfg: DictConfig, **kwargs) -> L.Trainer:
    """The Trainer of ``cfg.trainer``; SyncBatchNorm (on in ``trainer=ddp``) is switched off
    on CPUs, where torch has none, so ``trainer=ddp trainer.accelerator=cpu`` just works."""
    trainer_cfg = cfg.trainer
    if trainer_cfg.get("sync_batchnorm") and str(trainer_cfg.get("accelerator")) == "cpu":
        log.info("sync_batchnorm needs GPUs: off for accelerator=cpu")
        trainer_cfg = trainer_cfg.copy()
        with open_dict(trainer_cfg):
            trainer_cfg.sync_batchnorm = False
    return hydra.utils.instantiate(trainer_cfg, **kwargs)


def _fit_and_test(cfg: DictConfig, datamodule, model, callbacks: list, loggers: list) -> dict:
    trainer = build_trainer(cfg, callbacks=callbacks, logger=loggers)
    tracking.log_hyperparams(loggers, cfg)

    if cfg.get("ckpt_path"):
        read_checkpoint(cfg.ckpt_path)  # a clear error for a missing or damaged file
    # A kill between writing a checkpoint's temporary file and renaming it leaves the file.
    for leftover in remove_partial_writes(Path(cfg.paths.output_dir) / CHECKPOINT_DIR):
        log.info("removed %s, left by an interrupted checkpoint write", leftover)
    if cfg.get("train", True):
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    summary: dict = {"seed": cfg.seed}
    checkpoint = trainer.checkpoint_callback
    if checkpoint is not None and checkpoint.best_model_path:
        summary["best_checkpoint"] = checkpoint.best_model_path
        summary["best_val_loss"] = _to_float(checkpoint.best_model_score)
    summary["epochs_trained"] = trainer.current_epoch

    if cfg.get("test", True):
        ckpt = summary.get("best_checkpoint") or cfg.get("ckpt_path")
        # An ensemble member (members=[...], the pipeline) prints its one-line summary
        # below; Lightning's 30-line metric table is for a single run.
        verbose = not cfg.get("members")
        results = trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, verbose=verbose)
        summary["test"] = {k: _to_float(v) for k, v in (results[0] if results else {}).items()}

    if _prediction_callbacks(trainer.callbacks):
        # callbacks=[default,voting_proposals|flux_tables|prediction_scores]: the model's
        # scores on the target domain, then what those callbacks write from them.
        ckpt = summary.get("best_checkpoint") or cfg.get("ckpt_path")
        trainer.predict(model, datamodule=datamodule, ckpt_path=ckpt, return_predictions=True)

    if trainer.is_global_zero:
        output_dir = Path(cfg.paths.output_dir)
        with atomic_open(output_dir / RUN_SETTINGS_FILE) as handle:
            handle.write(OmegaConf.to_yaml(training_settings(cfg)))
        last = output_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
        if not cfg.get("keep_last_checkpoint", False) and cfg.get("train", True):
            last.unlink(missing_ok=True)  # the optimiser state is only for resuming
        out = output_dir / METRICS_FILE
        with atomic_open(out) as handle:
            json.dump(summary, handle, indent=2, sort_keys=True)
        log.info("metrics written to %s", out)
        print(_one_line_summary(summary, cfg))
    return summary


def _one_line_summary(summary: dict, cfg: DictConfig) -> str:
    parts = [f"run folder {cfg.paths.output_dir}"]
    if summary.get("best_val_loss") is not None:
        parts.append(f"best val/loss {summary['best_val_loss']:.3f}")
    test = summary.get("test") or {}
    if test.get("test/acc") is not None:
        target = cfg.data.get("target_domain", "the test split")
        parts.append(
            f"on {target}: accuracy {test['test/acc']:.3f}, "
            f"macro recall {test.get('test/recall_macro', float('nan')):.3f}"
        )
    return "plankflux train: " + "; ".join(parts)


#: Keys that do not change what a member learns (where it writes, how it is logged or
#: how many processes run it); every other key of the config does.
_NOT_TRAINING = (
    "paths", "hydra", "logger", "members", "seed", "ckpt_path", "task_name", "tags",
    "keep_last_checkpoint", "allow_mixed_members", "train", "test",
    "data.num_workers", "data.pin_memory", "data.cache_dir", "data.persistent_workers",
    # Speed switches: the same augmentation distribution and model, other kernels.
    "data.device_transforms", "model.channels_last", "model.compile",
    "trainer.devices", "trainer.accelerator", "trainer.strategy", "trainer.num_nodes",
    "trainer.enable_progress_bar", "trainer.enable_model_summary",
    "trainer.log_every_n_steps", "trainer.default_root_dir", "trainer.plugins",
)  # fmt: skip


def _flatten(node, prefix: str = "") -> dict:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def training_settings(cfg: DictConfig) -> DictConfig:
    """The part of ``cfg`` that changes what a member learns (resolved), saved beside
    each finished run as ``settings.yaml``."""
    flat = _flatten(OmegaConf.to_container(cfg, resolve=False))
    settings = {}
    for key in sorted(flat):
        if any(key == k or key.startswith(k + ".") for k in _NOT_TRAINING) or key.endswith(
            ".dirpath"
        ):
            continue
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
        settings[key] = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    return OmegaConf.create(settings)


def _check_finished_member(member_dir: Path, cfg: DictConfig) -> None:
    """Refuse to reuse a finished member trained with other settings (differing keys
    named), unless ``allow_mixed_members``."""
    saved = member_dir / RUN_SETTINGS_FILE
    if cfg.get("allow_mixed_members", False) or not saved.is_file():
        return
    before = OmegaConf.to_container(OmegaConf.load(saved))
    now = OmegaConf.to_container(training_settings(cfg))
    differing = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    if differing:
        listed = "; ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in differing[:10])
        raise PlankfluxError(
            f"{member_dir} finished with other settings than this run ({listed}"
            f"{'; ...' if len(differing) > 10 else ''}). An ensemble of mixed members is "
            "refused: use another run folder, or allow_mixed_members=true to reuse it"
        )


def run_members(cfg: DictConfig) -> list[dict]:
    """Train one member per seed of ``cfg.members``, one after another, each into
    ``<run folder>/member_<seed>/``. A member whose ``metrics.json`` exists is complete
    and skipped (when its saved settings equal this run's), so rerunning a crashed
    ensemble run continues where it stopped (point ``hydra.run.dir`` at the crashed
    run folder)."""
    root = Path(cfg.paths.output_dir)
    summaries = []
    for seed in cfg.members:
        member_dir = root / f"member_{seed}"
        done = member_dir / METRICS_FILE
        if done.exists():
            member_cfg = cfg.copy()
            with open_dict(member_cfg):
                member_cfg.seed = seed
                member_cfg.paths.output_dir = str(member_dir)
            _check_finished_member(member_dir, member_cfg)
            log.info("member %s is complete (%s): skipped", seed, done)
            summaries.append(json.loads(done.read_text()))
            continue
        member_cfg = cfg.copy()
        with open_dict(member_cfg):
            member_cfg.seed = seed
            member_cfg.paths.output_dir = str(member_dir)
        summaries.append(run(member_cfg))
    return summaries


def run_training(cfg: DictConfig) -> float | None:
    """One run, or one member per seed of ``cfg.members``; returns the best validation
    loss (the mean over members), the value a Hydra sweeper optimises."""
    if cfg.get("members"):
        losses = [s.get("best_val_loss") for s in run_members(cfg)]
        losses = [x for x in losses if x is not None]
        return sum(losses) / len(losses) if losses else None
    return run(cfg).get("best_val_loss")
