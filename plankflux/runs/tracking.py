"""Loggers for one training run: one tracked run per job and per member.

A Hydra sweep (``-m``) runs its jobs one after another in one process (the basic
launcher), and ``members=[...]`` and the pipeline's stages train several members in one
process too. W&B keeps one active run per process: a second ``WandbLogger`` would "reuse"
the first run and every later job would log into it. So :func:`instantiate_loggers`
gives every W&B logger whose ``group``, ``name`` or ``tags`` are unset (null) an
identity derived from where the run is:

- ``group``: the sweep (``<task>/<sweep folder>``) or, for a single run, its run folder
  (``<task>/<run folder>``); a pipeline workspace is its run folder (``pipeline/RR``);
- ``name``: the job's overrides (``seed=1``, or the job number when there are none),
  followed by the member's folder (``member_3``, ``ood/member_0``);
- ``tags``: the task (``train``, ``tune_lr``, ...), the experiment, the arm (the study arm
  of Paper A's studies, else the job's overrides without ``seed``) and ``seed=<seed>``;

and :func:`finish_loggers` ends the W&B run after each run, so the next one starts a
new run. W&B is offline unless ``WANDB_MODE=online`` is set (or
``logger.wandb.offline=false``). :func:`log_hyperparams` sends the resolved config to
every logger, not only the first.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)

WANDB_TARGETS = (
    "lightning.pytorch.loggers.wandb.WandbLogger",
    "lightning.pytorch.loggers.WandbLogger",
)
_TAG_LENGTH = 64  # W&B refuses longer tags


def _hydra():
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def _overrides(hc) -> list[str]:
    """The job's overrides, less those Hydra's ``override_dirname`` leaves out."""
    if hc is None:
        return []
    exclude = set(hc.job.config.override_dirname.exclude_keys or ())
    return [str(o) for o in hc.overrides.task if _key(str(o)) not in exclude]


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _swept(hc, overrides: list[str]) -> list[str]:
    """The overrides of this job that vary across its sweep: the swept ones of the command
    line (``seed=0,1``, read back from the sweep's ``multirun.yaml``) and the experiment's
    ``hydra.sweeper.params``; all of them if the sweep's command line cannot be read."""
    keys = set((hc.sweeper.get("params") or {}).keys())
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        command = OmegaConf.load(Path(hc.sweep.dir) / "multirun.yaml").hydra.overrides.task
        parsed = OverridesParser.create().parse_overrides([str(o) for o in command])
        keys |= {o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()}
    except Exception:  # no multirun.yaml (yet): name the job by all its overrides
        return overrides
    return [o for o in overrides if _key(o) in keys]


def _arm(cfg: DictConfig, overrides: list[str]) -> str:
    from plankflux.tables.studies import STUDIES

    if cfg.get("task_name") in STUDIES:
        try:
            return STUDIES[cfg.task_name][1](cfg)
        except Exception:  # a study config without the swept key: fall back
            pass
    arm = ",".join(o for o in overrides if _key(o) != "seed")
    return arm or "base"


def identity(cfg: DictConfig) -> dict:
    """``{"group", "name", "tags"}`` for this run (see the module docstring)."""
    from hydra.types import RunMode

    hc = _hydra()
    task = str(cfg.get("task_name", "run"))
    out = Path(str(cfg.paths.output_dir))
    overrides = _overrides(hc)
    if hc is not None and hc.mode == RunMode.MULTIRUN:
        group = f"{task}/{Path(hc.sweep.dir).name}"
        overrides = _swept(hc, overrides)
        job_name = ",".join(overrides) or str(hc.job.num)
    else:
        job_dir = Path(hc.runtime.output_dir) if hc is not None else out
        group = f"{task}/{job_dir.name}"
        job_name = ""
    job_dir = Path(hc.runtime.output_dir) if hc is not None else out
    try:
        member = out.resolve().relative_to(job_dir.resolve()).as_posix()
    except ValueError:
        member = out.name
    member = "" if member == "." else member
    name = "/".join(p for p in (job_name, member) if p) or out.name
    tags = [task]
    experiment = hc.runtime.choices.get("experiment") if hc is not None else None
    if experiment:
        tags.append(f"experiment={experiment}")
    tags.append(f"arm={_arm(cfg, overrides)}")
    tags.append(f"seed={cfg.get('seed')}")
    tags = list(dict.fromkeys(t[:_TAG_LENGTH] for t in tags))
    return {"group": group, "name": name, "tags": tags}


def _is_wandb(section: DictConfig) -> bool:
    return str(section.get("_target_", "")) in WANDB_TARGETS


def instantiate_loggers(cfg: DictConfig) -> list:
    """Every logger of ``cfg.logger``, W&B ones given this run's group, name and tags."""
    section = cfg.get("logger")
    if not section:
        return []
    loggers = []
    ident = None
    for logger_cfg in section.values():
        if not logger_cfg or "_target_" not in logger_cfg:
            continue
        if _is_wandb(logger_cfg):
            ident = ident or identity(cfg)
            logger_cfg = logger_cfg.copy()
            with open_dict(logger_cfg):
                for key in ("group", "name", "tags"):
                    if logger_cfg.get(key) is None:
                        logger_cfg[key] = ident[key]
                if os.environ.get("WANDB_MODE", "").lower() == "online":
                    logger_cfg.offline = False
        loggers.append(hydra.utils.instantiate(logger_cfg, _convert_="all"))
    return loggers


def log_hyperparams(loggers: list, cfg: DictConfig) -> None:
    """The resolved config to every logger (Lightning's ``trainer.logger`` is only the first)."""
    params = OmegaConf.to_container(cfg, resolve=True)
    for logger in loggers:
        logger.log_hyperparams(params)


def finish_loggers(loggers: list, failed: bool = False) -> None:
    """End this run's W&B run (if it started) so that the next run gets its own."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if not isinstance(logger, WandbLogger):
            continue
        run = getattr(logger, "_experiment", None)
        if run is not None and hasattr(run, "finish"):
            run.finish(exit_code=1 if failed else 0)
            logger._experiment = None
