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
from collections.abc import Callable

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig

from plankflux.errors import USER_ERRORS, describe
from plankflux.layout import CONFIG_DIR


def _reported(run: Callable[[DictConfig], object], verb: str) -> Callable[[DictConfig], object]:
    def task(cfg: DictConfig):
        from plankflux.runs.settings import check_settings

        try:
            check_settings(cfg, verb)
            return run(cfg)
        except (*USER_ERRORS, InstantiationException) as err:
            if os.environ.get("PLANKFLUX_TRACEBACK"):
                raise
            print(f"plankflux {verb}: {describe(err)}", file=sys.stderr)
            if HydraConfig.get().mode == RunMode.MULTIRUN:
                raise  # Hydra records this job's failure and goes on with the others
            sys.exit(1)

    return task


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def train(cfg: DictConfig) -> float | None:
    """Fit (and test) one model, or one member per seed of ``members``."""
    from plankflux.runs.train import run_training

    return _reported(run_training, "train")(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def predict(cfg: DictConfig) -> None:
    """Per-member softmax scores of an ensemble on the target domain."""
    from plankflux.runs.predict import run

    _reported(run, "predict")(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="pipeline")
def pipeline(cfg: DictConfig) -> None:
    """Paper A's human-in-the-loop domain adaptation for one target domain."""
    from plankflux.runs.pipeline import run_from_config

    _reported(run_from_config, "pipeline")(cfg)
