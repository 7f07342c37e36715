"""Embed a CytoSense data set with a trained model and run the k-NN gallery protocol.

One *evaluation* = one model × one labelled data set. The model embeds every pair of
the data set once; then, per fold, galleries are drawn from the fold's training rows
and the fold's test rows are classified (:func:`plankflux.eval.knn.evaluate_knn`).

* In-domain (Paper B, LAB): the data set the model was trained on, only the fold it
  was trained on (its test rows were never seen in training).
* Cross-domain (LAB→SEA, UTO→LAB, UTO→SEA, LAB+UTO→SEA): a data set the model never
  saw; every fold of it is evaluated, so one model gives mean ± sd over 5 folds.

An evaluation folder ``<run>/knn/<data set name>/`` holds:

* ``evaluation.json``: the method (``model``, ``loss``, ``image_tower``,
  ``profile_tower``), ``train_data``, ``eval_data``, ``folds``, ``seed``, and the
  protocol (``n_values``, ``draws``, ``k``): what ``plankflux tables clip`` reads;
* ``knn_results.csv``: ``fold`` + :data:`~plankflux.eval.knn.RESULT_COLUMNS`, one row
  per fold × setup × n × draw;
* ``knn_summary.csv``: mean and sd over folds and draws per setup and n;
* ``knn_table.md``: accuracy mean ± sd in %, rows = setups, columns = n;
* ``embeddings.npz``: ``index`` and ``label`` (N,), ``image`` and ``profile`` (N, D).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from plankflux.eval.knn import (
    N_VALUES,
    RESULT_COLUMNS,
    SETUPS,
    evaluate_knn,
    parse_setup,
    summarise_knn,
)
from plankflux.layout import EVALUATION_FILE
from plankflux.utils.atomic import atomic_open, atomic_path, write_csv_atomic

MODALITIES = ("image", "profile")


@torch.no_grad()
def embed_all(module: nn.Module, loader) -> dict[str, np.ndarray]:
    """Every batch of ``loader`` through ``module.predict_step`` (eval mode), stacked:
    ``{"index": (N,), "label": (N,), "image": (N, D)[, "profile": (N, D)]}``."""
    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    parts: dict[str, list[torch.Tensor]] = {}
    for i, batch in enumerate(loader):
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        for key, value in module.predict_step(batch, i).items():
            parts.setdefault(key, []).append(value.detach().float().cpu())
    module.train(was_training)
    return {key: torch.cat(values).numpy() for key, values in parts.items()}


def usable_setups(setups: Sequence[str], embeddings: Mapping[str, np.ndarray]) -> tuple[str, ...]:
    """The setups whose modalities the model embeds (an image-only model: ``I->I``)."""
    return tuple(s for s in setups if all(m in embeddings for side in parse_setup(s) for m in side))


def method_description(module: nn.Module) -> dict[str, str | None]:
    """``model``, ``loss``, ``image_tower``, ``profile_tower`` of a trained system."""
    hparams = getattr(module, "hparams", {})

    def tower(key: str) -> str | None:
        spec = hparams.get(key)
        return None if spec is None else str(spec["name"])

    if not hasattr(module, "method_name"):
        raise ValueError(f"{type(module).__name__} has no method_name (clip, dino, ...)")
    return {
        "model": module.method_name,
        "loss": hparams.get("loss"),
        "image_tower": tower("image_tower"),
        "profile_tower": tower("profile_tower"),
    }


def evaluate_folds(
    embeddings: Mapping[str, np.ndarray],
    folds: Mapping[int, tuple[np.ndarray, np.ndarray]],
    setups: Sequence[str] = SETUPS,
    n_values: Sequence[int] = N_VALUES,
    draws: int = 5,
    k: int = 3,
    seed: int = 0,
) -> pd.DataFrame:
    """The protocol on each fold's ``(gallery rows, query rows)`` (rows = ``index`` values
    of ``embeddings``); returns ``fold`` + ``RESULT_COLUMNS``."""
    position = {int(row): i for i, row in enumerate(embeddings["index"])}
    modalities = [m for m in MODALITIES if m in embeddings]
    frames = []
    for fold, (gallery_rows, query_rows) in folds.items():
        gallery = np.array([position[int(r)] for r in gallery_rows], dtype=np.int64)
        query = np.array([position[int(r)] for r in query_rows], dtype=np.int64)
        results = evaluate_knn(
            {m: torch.from_numpy(embeddings[m][gallery]) for m in modalities},
            embeddings["label"][gallery],
            {m: torch.from_numpy(embeddings[m][query]) for m in modalities},
            embeddings["label"][query],
            setups=setups,
            n_values=n_values,
            draws=draws,
            k=k,
            seed=seed,
        )
        results.insert(0, "fold", fold)
        frames.append(results)
    return pd.concat(frames, ignore_index=True)[["fold", *RESULT_COLUMNS]]


def _cell(row: pd.Series) -> str:
    """``95.1 ± 0.4`` (%), or just the mean when there is no sd (one fold, one draw)."""
    mean, sd = 100 * row["accuracy_mean"], 100 * row["accuracy_sd"]
    return f"{mean:.1f} ± {sd:.1f}" if np.isfinite(sd) else f"{mean:.1f}"


def markdown_table(summary: pd.DataFrame) -> str:
    """Accuracy ``mean ± sd`` in %, one row per setup, one column per n."""
    ns = sorted(summary["n_per_class"].unique())
    lines = ["| setup | " + " | ".join(f"n={n}" for n in ns) + " |", "|---" * (len(ns) + 1) + "|"]
    for setup in dict.fromkeys(summary["setup"]):
        rows = summary[summary["setup"] == setup].set_index("n_per_class")
        cells = [_cell(rows.loc[n]) if n in rows.index else "–" for n in ns]
        lines.append(f"| {setup} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_evaluation(
    out_dir: str | os.PathLike,
    results: pd.DataFrame,
    embeddings: Mapping[str, np.ndarray],
    description: Mapping,
) -> Path:
    """Write one evaluation folder (see the module docstring); returns it.

    ``evaluation.json`` goes last: a folder without it is incomplete, not a result.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarise_knn(results)
    with atomic_path(out_dir / "embeddings.npz") as tmp:
        buffer = io.BytesIO()
        np.savez(buffer, **embeddings)
        tmp.write_bytes(buffer.getvalue())
    write_csv_atomic(results, out_dir / "knn_results.csv")
    write_csv_atomic(summary, out_dir / "knn_summary.csv")
    with atomic_open(out_dir / "knn_table.md") as handle:
        handle.write(markdown_table(summary))
    with atomic_open(out_dir / EVALUATION_FILE) as handle:
        json.dump(dict(description), handle, indent=2, sort_keys=True)
    return out_dir


def evaluate_datamodule(
    module: nn.Module,
    datamodule,
    out_dir: str | os.PathLike,
    folds: Sequence[int] | None = None,
    train_data: str | None = None,
    setups: Sequence[str] = SETUPS,
    n_values: Sequence[int] = N_VALUES,
    draws: int = 5,
    k: int = 3,
    seed: int = 0,
) -> pd.DataFrame:
    """Embed ``datamodule``'s pairs with ``module`` and evaluate; writes ``out_dir``.

    Args:
        module: a trained system with ``predict_step`` returning embeddings.
        datamodule: a :class:`~plankflux.datamodules.cytosense.CytoSenseDataModule`
            over labelled pairs.
        folds: ``None``: the datamodule's own split (gallery = its train rows, queries
            = its test rows: in-domain). A list: those folds of the data set's 5-fold
            stratified CV, each evaluated (cross-domain).
        train_data: name of the data the model was trained on (for ``evaluation.json``).
    """
    datamodule.setup("predict")
    embeddings = embed_all(module, datamodule.predict_dataloader())
    setups = usable_setups(setups, embeddings)
    if folds is None:
        splits = datamodule.splits
        if len(splits.get("test", ())) == 0:
            raise ValueError(f"{datamodule.name}: no labelled test rows to evaluate on")
        by_fold = {int(datamodule.hparams.fold): (splits["train"], splits["test"])}
    else:
        by_fold = {}
        for fold in folds:
            rows = datamodule.fold_rows(int(fold))
            by_fold[int(fold)] = (rows["train"], rows["test"])
    results = evaluate_folds(embeddings, by_fold, setups, n_values, draws, k, seed)
    description = {
        **method_description(module),
        "train_data": train_data or datamodule.name,
        "eval_data": datamodule.name,
        "folds": sorted(by_fold),
        "seed": seed,
        "n_values": list(n_values),
        "draws": draws,
        "k": k,
    }
    write_evaluation(out_dir, results, embeddings, description)
    return results
