"""Lightning's messages under Hydra's logging: each printed once, without product tips.

Hydra gives the root logger a console handler and the run's ``.log`` file. The
``lightning`` package, when imported, adds a console handler of its own to the
``lightning`` logger (and its sub-packages add one when the root had none yet), while
still propagating to the root: every Lightning message then reaches the terminal twice.
Lightning also logs two adverts ("💡 Tip: ... litlogger / litmodels") per Trainer, and
its pytree helper warns about a torch deprecation (``LeafSpec``) that is Lightning's to
fix, not the user's: in an ensemble of 5 members x 4 treatments, 60 lines of noise.
"""

from __future__ import annotations

import logging
import warnings

LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")
#: The logger that Lightning's ``rank_zero_info`` messages (the tips among them) come from.
RANK_ZERO_LOGGER = "lightning.pytorch.utilities.rank_zero"
TIP_PREFIX = "💡 Tip"
#: Lightning's own use of a deprecated torch API, printed once per Trainer.
LIGHTNING_PYTREE_DEPRECATION = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


class DropProductTips(logging.Filter):
    """Rejects Lightning's "💡 Tip: try installing ..." records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TIP_PREFIX)


def tidy_lightning_logging() -> None:
    """When the root logger has handlers (Hydra's), Lightning's loggers drop their own
    console handlers and propagate to it; Lightning's product tips are filtered out.
    Lightning's ``LeafSpec`` deprecation warning is ignored. Idempotent; file handlers and
    handlers of other kinds are left alone."""
    warnings.filterwarnings("ignore", message=LIGHTNING_PYTREE_DEPRECATION)
    rank_zero = logging.getLogger(RANK_ZERO_LOGGER)
    if not any(isinstance(f, DropProductTips) for f in rank_zero.filters):
        rank_zero.addFilter(DropProductTips())
    if not logging.getLogger().handlers:
        return  # no Hydra logging: Lightning's own console handlers are the only output
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:  # console, not a FileHandler
                logger.removeHandler(handler)
        logger.propagate = True
