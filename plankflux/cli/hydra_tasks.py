"""The three runs that train or predict, configured by Hydra (``plankflux/conf``).

``plankflux train|predict|pipeline ARGS`` hand ``ARGS`` to Hydra unchanged, so
overrides, ``-m`` sweeps, ``--cfg job`` and ``--help`` work as Hydra documents them;
``plankflux-train``, ``plankflux-predict`` and ``plankflux-pipeline`` are the same
functions under their older names. Each task is one call into :mod:`plankflux.runs`;
an error the user can fix (:data:`~plankflux.errors.USER_ERRORS`: bad data, settings
or files; or a part of the config that cannot be built, e.g. weights that cannot be
downloaded) ends a run with its message and exit status 1 instead of a traceback; in a
sweep (``-m``) it is logged and re-raised, so that Hydra runs the other jobs first.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from contextlib import contextmanager

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict, read_write

from plankflux.errors import USER_ERRORS, describe
from plankflux.layout import CONFIG_DIR

# What Lightning's DDP launcher leaves in the environment of the process that started
# the other ranks; a later sweep job must start its own ranks.
_DDP_ENV = ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
_ARGV_FLAGS_WITH_VALUE = {"--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn"}


def _single_job_argv(argv: list[str], job_overrides: list[str]) -> list[str]:
    """``argv`` as a plain run of one sweep job: Hydra's flags (``--config-dir`` ...) kept,
    ``-m`` and the sweep's overrides replaced by this job's overrides."""
    kept, take_value = [argv[0]], False
    for arg in argv[1:]:
        if take_value:
            kept.append(arg)
            take_value = False
        elif arg in ("-m", "--multirun"):
            continue
        elif arg.startswith("-"):
            kept.append(arg)
            take_value = arg in _ARGV_FLAGS_WITH_VALUE
    return [*kept, *job_overrides]


@contextmanager
def _ddp_ranks_run_this_job():
    """In a sweep job, make DDP's other ranks run this job in this job's folder.

    Lightning starts the other ranks by re-running ``sys.argv`` with
    ``hydra.run.dir=<HydraConfig run.dir>``. In a multirun that would start a whole new
    sweep (``-m``) whose ``${now}`` resolves again into another folder; so during the job
    ``sys.argv`` is this job's plain command and the run dir is the job's folder
    (resolved once, here). Afterwards the process group is closed and Lightning's
    variables removed, so that the next job starts its own ranks."""
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN or "LOCAL_RANK" in os.environ:
        yield  # a plain run, or a rank started by Lightning or by SLURM
        return
    saved_argv, saved_env = sys.argv, {key: os.environ.get(key) for key in _DDP_ENV}
    sys.argv = _single_job_argv(sys.argv, [str(o) for o in hc.overrides.task])
    with read_write(hc), open_dict(hc):
        hc.run.dir = hc.runtime.output_dir
    try:
        yield
    finally:
        sys.argv = saved_argv
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _reported(run: Callable[[DictConfig], object], verb: str) -> Callable[[DictConfig], object]:
    def task(cfg: DictConfig):
        import lightning  # noqa: F401  (adds a console handler, which the next line removes)

        from plankflux.runs.settings import check_settings
        from plankflux.utils.console_logging import tidy_lightning_logging

        tidy_lightning_logging()
        try:
            check_settings(cfg, verb)
            with _ddp_ranks_run_this_job():
                return run(cfg)
        except (*USER_ERRORS, InstantiationException) as err:
            if os.environ.get("PLANKFLUX_TRACEBACK"):
                raise
            print(f"plankflux {verb}: {describe(err)}", file=sys.stderr)
            if HydraConfig.get().mode == RunMode.MULTIRUN:
                raise  # Hydra records this job's failure and goes on with the others
            sys.exit(1)

    return task


#: Overrides whose value names a folder of the run (``logs/<task_name>/...``,
#: ``logs/pipeline/<target>``): checked before Hydra creates that folder.
NAME_OVERRIDES = ("target", "task_name", "data.target_domain")


def bad_override(args: Sequence[str]) -> str | None:
    """Why one of the ``key=value`` overrides cannot be used (Hydra's own report of a
    syntax error does not say which one), or ``None``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    from plankflux.utils.paths import name_problem

    parser = OverridesParser.create()
    for arg in args:
        if "=" not in arg or arg.startswith("-"):
            continue
        try:
            parser.parse_overrides([arg])
            key, _, value = arg.partition("=")
            if key in NAME_OVERRIDES and name_problem(value):
                return f"{key}: the value {name_problem(value)} (it names a run folder)"
        except OverrideParseException as err:
            reason = str(err).splitlines()[0]
            return (
                f"cannot read the override {arg!r}: {reason} (the syntax: "
                "https://hydra.cc/docs/advanced/override_grammar/basic)"
            )
    return None


def _checked(verb: str, hydra_task: Callable[[], object]) -> Callable[[], object]:
    """``hydra_task`` after a check of the command line's overrides, which must come
    before Hydra creates the run folder (``plankflux VERB`` and the alias scripts)."""

    def entry():
        bad = bad_override(sys.argv[1:])
        if bad:
            print(f"plankflux {verb}: {bad}", file=sys.stderr)
            sys.exit(1)
        return hydra_task()

    entry.__doc__ = hydra_task.__doc__
    return entry


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _train(cfg: DictConfig) -> float | None:
    """Fit (and test) one model, or one member per seed of ``members``."""
    from plankflux.runs.train import run_training

    return _reported(run_training, "train")(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def _predict(cfg: DictConfig) -> None:
    """Per-member softmax scores of an ensemble on the target domain."""
    from plankflux.runs.predict import run

    _reported(run, "predict")(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="pipeline")
def _pipeline(cfg: DictConfig) -> None:
    """Paper A's human-in-the-loop domain adaptation for one target domain."""
    from plankflux.runs.pipeline import run_from_config

    _reported(run_from_config, "pipeline")(cfg)


train = _checked("train", _train)
predict = _checked("predict", _predict)
pipeline = _checked("pipeline", _pipeline)
