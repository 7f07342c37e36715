"""Lightning's messages reach Hydra's handlers once, without Lightning's product tips."""

from __future__ import annotations

import io
import logging
import warnings

import lightning  # noqa: F401  (its import adds the console handler under test)
import pytest

from plankflux.utils.console_logging import (
    LIGHTNING_LOGGERS,
    RANK_ZERO_LOGGER,
    DropProductTips,
    tidy_lightning_logging,
)


@pytest.fixture
def restore_lightning_loggers():
    """Undo the test's changes to Lightning's and the root's loggers."""
    names = ("", *LIGHTNING_LOGGERS, RANK_ZERO_LOGGER)
    saved = {
        n: (list(logging.getLogger(n).handlers), list(logging.getLogger(n).filters),
            logging.getLogger(n).propagate)
        for n in names
    }  # fmt: skip
    yield
    for name, (handlers, filters, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.filters[:], logger.propagate = handlers, filters, propagate


def test_each_lightning_message_is_printed_once_and_tips_are_dropped(restore_lightning_loggers):
    root = logging.getLogger()
    hydra_console = io.StringIO()
    root.addHandler(logging.StreamHandler(hydra_console))  # what Hydra's job logging adds
    lightning_console = io.StringIO()
    # The `lightning` package's own console handler, as its import installs it.
    logging.getLogger("lightning").addHandler(logging.StreamHandler(lightning_console))
    log_file = logging.FileHandler("/dev/null")  # file handlers are someone's log: kept
    logging.getLogger("lightning").addHandler(log_file)

    tidy_lightning_logging()
    tidy_lightning_logging()  # idempotent: still one tip filter
    rank_zero = logging.getLogger(RANK_ZERO_LOGGER)
    rank_zero.info("Seed set to 0")
    rank_zero.info("💡 Tip: For seamless cloud logging, try installing litlogger")

    assert hydra_console.getvalue() == "Seed set to 0\n"
    assert lightning_console.getvalue() == ""
    assert log_file in logging.getLogger("lightning").handlers
    assert all(logging.getLogger(n).propagate for n in LIGHTNING_LOGGERS)
    assert sum(isinstance(f, DropProductTips) for f in rank_zero.filters) == 1
    log_file.close()


def test_without_root_handlers_lightning_keeps_its_console(restore_lightning_loggers):
    """Outside Hydra (a notebook), Lightning's console handler is the only output."""
    logging.getLogger().handlers[:] = []
    console = io.StringIO()
    handler = logging.StreamHandler(console)
    logging.getLogger("lightning").addHandler(handler)
    tidy_lightning_logging()
    logging.getLogger(RANK_ZERO_LOGGER).info("GPU available: False")
    assert handler in logging.getLogger("lightning").handlers
    assert "GPU available: False" in console.getvalue()


def test_lightnings_pytree_deprecation_warning_is_ignored_and_others_are_not(
    restore_lightning_loggers,
):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tidy_lightning_logging()
        warnings.warn(
            "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, "
            "TreeSpec) and treespec.is_leaf()` instead.",
            FutureWarning,
            stacklevel=1,
        )
        warnings.warn("some other deprecation", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["some other deprecation"]
