"""k-NN gallery evaluation of a contrastive model after testing (Paper B, DESIGN §5).

After ``trainer.test`` the callback embeds every sample of the datamodule with the
test-time pipeline, draws galleries from the training split and classifies the test
split in the nine gallery × query setups ({I, P, I+P}²), for n ∈ {1, 2, 4, 8, 16}
samples per class and 5 draws. Writes into ``out_dir``:

* ``embeddings.npz``: ``index``, ``label``, ``image`` (N, D), ``profile`` (N, D);
* ``knn_results.csv``: one row per setup × n × draw (accuracy, macro P/R/F1);
* ``knn_summary.csv``: mean and sd over draws per setup and n;
* ``knn_table.md``: accuracy mean ± sd, rows = setups, columns = n.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer

from plankflux.eval.knn import N_VALUES, SETUPS, evaluate_knn, summarise_knn
from plankflux.utils.atomic import atomic_open, atomic_path, write_csv_atomic


@torch.no_grad()
def embed_all(pl_module: LightningModule, loader) -> dict[str, np.ndarray]:
    """Embeddings of every batch of ``loader`` through ``pl_module.predict_step``."""
    was_training = pl_module.training
    pl_module.eval()
    parts: dict[str, list[torch.Tensor]] = {}
    for i, batch in enumerate(loader):
        batch = {k: v.to(pl_module.device) for k, v in batch.items()}
        for key, value in pl_module.predict_step(batch, i).items():
            parts.setdefault(key, []).append(value.detach().float().cpu())
    pl_module.train(was_training)
    return {key: torch.cat(values).numpy() for key, values in parts.items()}


def markdown_table(summary) -> str:
    ns = sorted(summary["n_per_class"].unique())
    lines = ["| setup | " + " | ".join(f"n={n}" for n in ns) + " |", "|---" * (len(ns) + 1) + "|"]
    for setup in dict.fromkeys(summary["setup"]):
        rows = summary[summary["setup"] == setup].set_index("n_per_class")
        cells = [
            f"{100 * rows.at[n, 'accuracy_mean']:.1f} ± {100 * rows.at[n, 'accuracy_sd']:.1f}"
            if n in rows.index
            else "–"
            for n in ns
        ]
        lines.append(f"| {setup} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


class KnnGalleryEvaluation(Callback):
    def __init__(
        self,
        out_dir: str | os.PathLike,
        n_values: Sequence[int] = N_VALUES,
        draws: int = 5,
        k: int = 3,
        seed: int = 0,
        setups: Sequence[str] = SETUPS,
    ):
        self.out_dir = Path(out_dir)
        self.n_values, self.draws, self.k, self.seed = tuple(n_values), draws, k, seed
        self.setups = tuple(setups)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        datamodule = trainer.datamodule
        emb = embed_all(pl_module, datamodule.predict_dataloader())
        position = {int(row): i for i, row in enumerate(emb["index"])}
        gallery = [position[int(r)] for r in datamodule.splits["train"]]
        query = [position[int(r)] for r in datamodule.splits["test"]]
        results = evaluate_knn(
            {m: torch.from_numpy(emb[m][gallery]) for m in ("image", "profile")},
            emb["label"][gallery],
            {m: torch.from_numpy(emb[m][query]) for m in ("image", "profile")},
            emb["label"][query],
            setups=self.setups,
            n_values=self.n_values,
            draws=self.draws,
            k=self.k,
            seed=self.seed,
        )
        summary = summarise_knn(results)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.out_dir / "embeddings.npz") as tmp:
            buffer = io.BytesIO()
            np.savez(buffer, **emb)
            tmp.write_bytes(buffer.getvalue())
        write_csv_atomic(results, self.out_dir / "knn_results.csv")
        write_csv_atomic(summary, self.out_dir / "knn_summary.csv")
        with atomic_open(self.out_dir / "knn_table.md") as handle:
            handle.write(markdown_table(summary))
