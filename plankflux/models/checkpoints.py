"""Trained checkpoints on disk: finding them and loading them safely.

Every checkpoint a run wrote is read here, with ``weights_only=True`` so that no
pickled code in a file can run. (Pretrained backbone weights are loaded by the towers
themselves, :mod:`plankflux.models.components`.)
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from plankflux.errors import PlankfluxError
from plankflux.layout import BEST_CHECKPOINT, CHECKPOINT_DIR, METRICS_FILE
from plankflux.models.classifier import ParticleClassifier

log = logging.getLogger(__name__)

# Hyper-parameters that must match between members, and between members and the data.
DATA_SIGNATURE = ("class_names", "image_size", "resize_mode", "normalize")


#: A ``torch.save`` file is a zip archive; anything else is not a checkpoint.
_ZIP_MAGIC = b"PK\x03\x04"


def read_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """The dict of a Lightning checkpoint file written by plankflux, loaded without
    running pickled code (``weights_only=True``).

    Checked before and after loading, each failure a :class:`PlankfluxError` naming the
    file: it exists, is a (complete) torch zip archive, and holds the ``state_dict`` and
    ``hyper_parameters`` that plankflux writes.
    """
    path = Path(path)
    if path.is_dir():
        raise PlankfluxError(f"{path} is a folder: give its checkpoints/best.ckpt")
    if not path.is_file():
        raise PlankfluxError(f"checkpoint not found: {path}")
    with path.open("rb") as handle:
        if handle.read(4) != _ZIP_MAGIC:
            raise PlankfluxError(f"{path}: not a checkpoint (not a PyTorch zip archive)")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        # torch's own message suggests weights_only=False, which we never do.
        reason = str(err).splitlines()[0][:200]
        raise PlankfluxError(
            f"{path}: cannot be read as a plankflux checkpoint (truncated, damaged, or "
            f"holding objects other than tensors): {reason}"
        ) from err
    missing = [k for k in ("state_dict", "hyper_parameters") if k not in checkpoint]
    if not isinstance(checkpoint, dict) or missing:
        raise PlankfluxError(f"{path}: not a checkpoint written by plankflux train")
    return checkpoint


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in path.parts]


def _walk_best(root: Path) -> list[Path]:
    """Every ``checkpoints/best.ckpt`` below ``root``, following symbolic links to
    folders (each real folder visited once)."""
    found, seen = [], set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        if Path(folder).name == CHECKPOINT_DIR and BEST_CHECKPOINT in files:
            found.append(Path(folder) / BEST_CHECKPOINT)
    return sorted(found, key=_natural_key)


def _check_recorded_best(path: Path) -> None:
    """Refuse a ``best.ckpt`` that is not the one its finished run recorded as best
    (``metrics.json``'s ``best_checkpoint``), e.g. one left by an earlier, killed run."""
    metrics = path.parent.parent / METRICS_FILE
    if not metrics.is_file():
        return
    try:
        recorded = json.loads(metrics.read_text()).get("best_checkpoint")
    except (OSError, ValueError) as err:
        raise PlankfluxError(f"{metrics}: cannot be read ({err})") from err
    if recorded and Path(recorded).name != path.name:
        raise PlankfluxError(
            f"{path}: the run recorded {recorded} as its best checkpoint, not this file; "
            "the folder holds checkpoints of two runs: train that member again"
        )


def find_member_checkpoints(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Member checkpoints from a run/multirun folder (every ``checkpoints/best.ckpt``
    below it, symbolic links followed, in natural order of their folders) or from an
    explicit list of files. Zero members is an error."""
    if isinstance(source, str | os.PathLike):
        root = Path(source)
        if root.is_file():
            return [root]
        if not root.is_dir():
            raise PlankfluxError(f"checkpoints: {root} is neither a run folder nor a file")
        found = _walk_best(root)
        if not found:
            raise PlankfluxError(
                f"no {CHECKPOINT_DIR}/{BEST_CHECKPOINT} found under {root}: give a run or "
                "multirun folder of plankflux train, or checkpoint files"
            )
        for path in found:
            _check_recorded_best(path)
        log.info("%d member checkpoint(s) under %s: %s", len(found), root, [str(p) for p in found])
        return found
    paths = [Path(p) for p in source]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise PlankfluxError(f"checkpoint(s) not found: {missing}")
    if not paths:
        raise PlankfluxError("the list of member checkpoints is empty")
    return paths


def load_member(path: str | os.PathLike) -> ParticleClassifier:
    """Load one member checkpoint safely (``weights_only=True``: no pickled code runs)."""
    checkpoint = read_checkpoint(path)
    hparams = dict(checkpoint["hyper_parameters"])
    hparams.pop("weights", None)
    with warnings.catch_warnings():  # random init is overwritten by the checkpoint at once
        warnings.simplefilter("ignore", UserWarning)
        member = ParticleClassifier(weights=None, **hparams)
    member.load_state_dict(checkpoint["state_dict"])
    member.checkpoint_path = str(path)
    return member.eval()


def data_signature(hparams) -> dict:
    return {
        key: (list(hparams[key]) if key == "class_names" else hparams[key])
        for key in DATA_SIGNATURE
    }


def load_trained_system(checkpoint: str | os.PathLike, map_location="cpu"):
    """A CLIP or DINO system from a ``plankflux train`` checkpoint, in eval mode.

    Returns ``(module, checkpoint dict)``; the dict keeps the training data's settings
    (``datamodule_hyper_parameters``). The towers are rebuilt without their pretrained
    weights (no download): the checkpoint holds the trained ones.
    """
    from plankflux.models.contrastive import ContrastiveModule
    from plankflux.models.dino import DINOModule

    state = read_checkpoint(checkpoint, map_location)
    hparams = state.get("hyper_parameters", {})
    if "image_tower" not in hparams:
        raise PlankfluxError(f"{checkpoint}: not a checkpoint of a CLIP or DINO model")
    system = ContrastiveModule if "profile_tower" in hparams else DINOModule
    towers = {
        key: {**hparams[key], "pretrained": False}
        for key in ("image_tower", "profile_tower")
        if key in hparams and "pretrained" in hparams[key]
    }
    module = system.load_from_checkpoint(
        checkpoint, map_location=map_location, weights_only=True, **towers
    )
    return module.eval(), state
