"""A tiny tune_lr sweep through Hydra multirun, then the Figure S2 table from it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from plankflux.cli.main import main as cli
from plankflux.data.classes import TRAP_CLASSES

BIN = Path(sys.executable).parent


def test_tune_lr_sweep_to_table(tmp_path):
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "PLANKFLUX_DATA_DIR": str(tmp_path / "data"),
        "PLANKFLUX_LOG_DIR": str(tmp_path / "logs"),
    }
    result = subprocess.run(
        [
            str(BIN / "plankflux-train"),
            "-m",
            "experiment=tune_lr",
            "debug=tiny",
            "trainer.max_epochs=1",
            "seed=0,1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "logs" / "tune_lr" / "multiruns").iterdir()
    assert len([p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()]) == 6

    out = tmp_path / "tables"
    assert cli(["tables", "study", str(sweep), "--out", str(out)]) == 0
    table = pd.read_csv(out / "figure_S2_tune_lr.csv", keep_default_na=False)
    assert table["class"].tolist() == [*TRAP_CLASSES, "macro", "weighted"]
    expected = ["class"]
    for arm in ("base", "lowLR", "highLR"):
        expected += [f"{arm}_{m}_{s}" for m in ("precision", "recall") for s in ("mean", "sd")]
        expected.append(f"{arm}_n_seeds")
    assert table.columns.tolist() == expected
    assert (table[["base_n_seeds", "lowLR_n_seeds", "highLR_n_seeds"]] == 2).all().all()
    macro = table.set_index("class").loc["macro"]
    assert 0.0 <= float(macro["base_recall_mean"]) <= 1.0

    markdown = (out / "figure_S2_tune_lr.md").read_text().splitlines()
    assert markdown[0] == "| class | base | lowLR | highLR |"
    assert markdown[-1].startswith("| weighted | P ")
    assert (out / "figure_S2_tune_lr.png").stat().st_size > 10_000
