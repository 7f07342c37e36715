"""Checking the settings a user can type on the command line, before anything runs.

Hydra passes ``seed=abc`` or ``trainer.max_epochs=ten`` through as strings; deep in
Lightning or PyTorch they would end as a bare ``AssertionError`` or ``TypeError``.
:func:`check_settings` checks the keys of :data:`SETTINGS` that a config has and raises
one :class:`~plankflux.errors.ProblemsError` naming every bad key and value.
"""

from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf

from plankflux.errors import ProblemsError


def _integer(minimum: int) -> Callable[[object], str | None]:
    def check(value) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected a whole number, got {value!r}"
        return None if value >= minimum else f"must be >= {minimum}, got {value}"

    return check


def _number(minimum: float, strict: bool) -> Callable[[object], str | None]:
    def check(value) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {value!r}"
        ok = value > minimum if strict else value >= minimum
        return None if ok else f"must be {'>' if strict else '>='} {minimum}, got {value}"

    return check


def _integers(minimum: int) -> Callable[[object], str | None]:
    one = _integer(minimum)

    def check(value) -> str | None:
        if not isinstance(value, list | tuple):
            return f"expected a list of whole numbers, e.g. [0,1,2], got {value!r}"
        return next((f"item {i}: {p}" for i, v in enumerate(value) if (p := one(v))), None)

    return check


#: dotted key -> check (``None`` values are left to the code's defaults).
SETTINGS: dict[str, Callable[[object], str | None]] = {
    "seed": _integer(0),
    "members": _integers(0),
    "trainer.max_epochs": _integer(-1),
    "trainer.min_epochs": _integer(0),
    "trainer.accumulate_grad_batches": _integer(1),
    "trainer.log_every_n_steps": _integer(1),
    "data.batch_size": _integer(1),
    "data.eval_batch_size": _integer(1),
    "data.num_workers": _integer(0),
    "data.image_size": _integer(1),
    "data.val_fraction": _number(0, strict=False),
    "model.optimizer.lr": _number(0, strict=True),
    "model.optimizer.weight_decay": _number(0, strict=False),
    "proposals.k": _integer(1),
    "minboost.k": _integer(1),
    "minboost.min_verified": _integer(0),
}


def check_settings(cfg: DictConfig, verb: str) -> None:
    """Raise one error naming every key of :data:`SETTINGS` whose value is unusable."""
    problems = []
    for key, check in SETTINGS.items():
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if value is None:
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        reason = check(value)
        if reason:
            problems.append(f"{key}: {reason}")
    if problems:
        raise ProblemsError("settings", problems)
