"""Paper B tables from a hand-made sweep of k-NN evaluations, checked against hand sums.

Accuracy of a row = BASE[setup] + DELTA[n] + the run's level + a per-(fold, draw)
offset. Two folds with offsets (-.03, -.01) and (+.01, +.03) pool to mean 0 and
sd sqrt((9 + 1 + 1 + 9) / 3) = 2.582 %; one fold with (-.01, +.01) to sd 1.414 %; the
cross-domain run's folds 0 and 1 (one draw each, -.02 and +.02) to sd 2.828 %.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from plankflux.cli.main import main as cli
from plankflux.eval.knn import SETUPS
from plankflux.tables.clip_tables import (
    collect_knn_results,
    paper_b_claims,
    table2,
    table3,
    table4,
    table5,
    table6,
    write_clip_tables,
)

BASE = dict(zip(SETUPS, (0.80, 0.50, 0.70, 0.45, 0.60, 0.55, 0.82, 0.62, 0.85), strict=True))
DELTA = {1: -0.20, 4: 0.0}
TWO_FOLDS, ONE_FOLD = math.sqrt(20 / 3), math.sqrt(2)  # sd in % (see module docstring)
CLIP = {"model": "clip", "image_tower": "efficientnet_b0", "profile_tower": "cnn", "seed": 0}


def write_eval(run_dir, name, meta, folds, level, setups=SETUPS):
    """``run_dir/knn/name/`` with ``folds = {fold: [offset per draw]}``."""
    folder = run_dir / "knn" / name
    folder.mkdir(parents=True)
    (folder / "evaluation.json").write_text(json.dumps({**meta, "checkpoint": "x.ckpt"}))
    rows = []
    for fold, offsets in folds.items():
        for setup in setups:
            for n, delta in DELTA.items():
                for draw, offset in enumerate(offsets):
                    acc = BASE[setup] + delta + level + offset
                    rows.append((fold, setup, n, draw, acc, acc - 0.1, acc - 0.1, acc - 0.1))
    columns = ["fold", "setup", "n_per_class", "draw", "accuracy"]
    columns += ["macro_precision", "macro_recall", "macro_f1"]
    pd.DataFrame(rows, columns=columns).to_csv(folder / "knn_results.csv", index=False)


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "sweep"
    lab = {**CLIP, "loss": "infonce", "train_data": "LAB", "eval_data": "LAB"}
    write_eval(root / "lab_infonce/fold0", "LAB", lab, {0: [-0.03, -0.01]}, 0.0)
    write_eval(root / "lab_infonce/fold1", "LAB", lab, {1: [0.01, 0.03]}, 0.0)
    write_eval(
        root / "lab_infonce/fold0", "SEA", {**lab, "eval_data": "SEA"},
        {0: [-0.02], 1: [0.02]}, -0.30,
    )  # fmt: skip
    # Found first on disk, listed after EfficientNet-B0 (the paper's tower order).
    vit = {**lab, "image_tower": "vit_tiny_patch16_224"}
    write_eval(root / "a_vit/fold0", "LAB", vit, {0: [-0.01, 0.01]}, 0.02)
    siglip = {**lab, "loss": "siglip"}
    write_eval(root / "lab_siglip/fold0", "LAB", siglip, {0: [-0.01, 0.01]}, -0.05)
    both = {**lab, "train_data": "LAB+UTO", "eval_data": "SEA"}
    write_eval(root / "combined/run0", "SEA", both, {0: [-0.01, 0.01]}, -0.20)
    dino = {**CLIP, "model": "dino", "loss": None, "profile_tower": None}
    dino |= {"train_data": "LAB", "eval_data": "LAB"}
    write_eval(root / "dino/fold0", "LAB", dino, {0: [0.0]}, -0.20, setups=["I->I"])
    return root


def cells(table, *columns):
    return [(round(r[f"{c}_mean"], 6), round(r[f"{c}_sd"], 6)) for _, r in table.iterrows()
            for c in columns]  # fmt: skip


def test_collect_labels_every_row(sweep):
    results = collect_knn_results(sweep)
    assert len(results) == 9 * 2 * (4 + 2 + 2 + 2 + 2) + 2  # setups × n × (fold, draw) rows
    runs = results.groupby("run")["method"].first().to_dict()
    assert runs == {"a_vit/fold0": "InfoNCE", "combined/run0": "InfoNCE",
                    "dino/fold0": "DINO", "lab_infonce/fold0": "InfoNCE",
                    "lab_infonce/fold1": "InfoNCE", "lab_siglip/fold0": "Sigmoid"}  # fmt: skip
    assert sorted(results["domains"].unique()) == ["LAB", "LAB+UTO→SEA", "LAB→SEA"]
    dino = results[results["model"] == "dino"]
    assert dino["loss"].isna().all() and dino["profile_tower"].isna().all()
    assert set(dino["setup"]) == {"I->I"}


def test_table2_in_domain_clip_at_largest_n(sweep):
    table = table2(collect_knn_results(sweep))
    keys = ["domains", "method", "image_tower", "profile_tower"]
    assert table[keys].values.tolist() == [
        ["LAB", "InfoNCE", "efficientnet_b0", "cnn"],
        ["LAB", "InfoNCE", "vit_tiny_patch16_224", "cnn"],
        ["LAB", "Sigmoid", "efficientnet_b0", "cnn"],
    ]
    assert table["runs"].tolist() == [2, 1, 1]
    s2, s1 = round(TWO_FOLDS, 6), round(ONE_FOLD, 6)
    assert cells(table, "I->I", "P->P", "I+P->I+P") == [
        (80.0, s2), (60.0, s2), (85.0, s2),
        (82.0, s1), (62.0, s1), (87.0, s1),
        (75.0, s1), (55.0, s1), (80.0, s1),
    ]  # fmt: skip
    at_one = table2(collect_knn_results(sweep), n=1)
    assert at_one["I+P->I+P_mean"].round(6).tolist() == [65.0, 67.0, 60.0]


def test_table3_nine_setups_per_group(sweep):
    table = table3(collect_knn_results(sweep))
    assert list(table.columns) == [
        "domains", "method", "image_tower", "profile_tower", "setup",
        "runs", "n1_mean", "n1_sd", "n4_mean", "n4_sd",
    ]  # fmt: skip
    assert len(table) == 5 * 9 + 1  # five CLIP groups of nine setups, DINO's I->I
    groups = table[["domains", "method", "image_tower"]].drop_duplicates().values.tolist()
    assert groups == [
        ["LAB", "InfoNCE", "efficientnet_b0"],
        ["LAB", "InfoNCE", "vit_tiny_patch16_224"],
        ["LAB", "Sigmoid", "efficientnet_b0"],
        ["LAB", "DINO", "efficientnet_b0"],
        ["LAB→SEA", "InfoNCE", "efficientnet_b0"],
        ["LAB+UTO→SEA", "InfoNCE", "efficientnet_b0"],
    ]
    first = table.iloc[:9]
    assert first["setup"].tolist() == list(SETUPS)
    n1 = [60.0, 30.0, 50.0, 25.0, 40.0, 35.0, 62.0, 42.0, 65.0]  # BASE − 20 %, no level
    assert first["n1_mean"].round(6).tolist() == n1
    dino = table[table["method"] == "DINO"].iloc[0]
    assert (dino["setup"], dino["profile_tower"], dino["runs"]) == ("I->I", "–", 1)
    assert (round(dino["n1_mean"], 6), round(dino["n4_mean"], 6)) == (40.0, 60.0)
    assert math.isnan(dino["n4_sd"])  # one (fold, draw) row: no sd


def test_tables_4_5_6(sweep):
    results = collect_knn_results(sweep)
    t4 = table4(results)
    assert t4[["domains", "method", "runs"]].values.tolist() == [["LAB→SEA", "InfoNCE", 1]]
    s = round(math.sqrt(8), 6)  # folds 0 and 1 of SEA: offsets -2 and +2 %
    assert cells(t4, *SETUPS) == [(round(100 * (b - 0.30), 6), s) for b in BASE.values()]

    t5 = table5(results, n=4)
    assert t5[["eval_data", "train_data"]].values.tolist() == [["SEA", "LAB"], ["SEA", "LAB+UTO"]]
    assert cells(t5, "I->I", "I+P->I+P") == [
        (50.0, s), (55.0, s), (60.0, round(ONE_FOLD, 6)), (65.0, round(ONE_FOLD, 6)),
    ]  # fmt: skip

    t6 = table6(results)
    assert t6[["method", "domains", "image_tower", "profile_tower"]].values.tolist() == [
        ["InfoNCE", "LAB", "efficientnet_b0", "cnn"],
        ["InfoNCE", "LAB", "vit_tiny_patch16_224", "cnn"],
        ["DINO", "LAB", "efficientnet_b0", "–"],
    ]
    assert t6["I->I_mean"].round(6).tolist() == [80.0, 82.0, 60.0]
    assert t6["I+P->I+P_mean"].round(6).tolist()[:2] == [85.0, 87.0]
    assert math.isnan(t6["I+P->I+P_mean"].iloc[2])


def test_write_all_tables(sweep, tmp_path):
    out = tmp_path / "out"
    written = write_clip_tables(sweep, out)
    names = [f"table{k}.{e}" for k in "23456" for e in ("csv", "md")]
    assert list(written) == [*names, "figure_gallery_size.csv", "figure_gallery_size.png",
                             "claims.json", "claims.md"]  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == sorted(written)

    md2 = (out / "table2.md").read_text().splitlines()
    assert md2[0] == "Accuracy (%) at n = 4 per class, mean ± sd over folds × draws."
    assert md2[2] == "| domains | method | image tower | profile tower | I→I | P→P | I+P→I+P |"
    assert (
        md2[4] == "| LAB | InfoNCE | efficientnet_b0 | cnn | 80.0 ± 2.6 | 60.0 ± 2.6 | 85.0 ± 2.6 |"
    )
    assert (
        md2[6] == "| LAB | Sigmoid | efficientnet_b0 | cnn | 75.0 ± 1.4 | 55.0 ± 1.4 | 80.0 ± 1.4 |"
    )
    md6 = (out / "table6.md").read_text().splitlines()
    assert md6[-1] == "| DINO | LAB | efficientnet_b0 | – | 60.0 | – |"
    md3 = (out / "table3.md").read_text()
    assert "### LAB · DINO · efficientnet_b0\n\n| setup | n=1 | n=4 |" in md3
    assert "| I+P→I+P | 65.0 ± 2.6 | 85.0 ± 2.6 |" in md3

    curves = pd.read_csv(out / "figure_gallery_size.csv")
    assert len(curves) == (5 * 9 + 1) * 2
    first = curves.iloc[0]
    assert (first["domains"], first["setup"], first["n_per_class"]) == ("LAB", "I->I", 1)
    assert first["accuracy_mean"] == pytest.approx(60.0)
    assert (out / "figure_gallery_size.png").stat().st_size > 10_000


def test_tables_without_runs_are_skipped(sweep, tmp_path):
    for folder in ("dino", "combined", "lab_infonce/fold0/knn/SEA"):
        for path in sorted((sweep / folder).rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
    written = write_clip_tables(sweep, tmp_path / "out", tables=("2", "4", "5", "6"))
    assert list(written) == ["table2.csv", "table2.md", "claims.json", "claims.md"]
    with pytest.raises(ValueError, match="table 6 needs DINO evaluations"):
        write_clip_tables(sweep, tmp_path / "out", tables=("6",))
    with pytest.raises(ValueError, match=r"n=8 is not among the gallery sizes .*: \[1, 4\]"):
        write_clip_tables(sweep, tmp_path / "out", n=8)


def test_errors_name_the_folder_or_file(sweep, tmp_path):
    with pytest.raises(FileNotFoundError, match="sweep folder .*nowhere does not exist"):
        collect_knn_results(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no k-NN evaluations .* under .*empty"):
        collect_knn_results(tmp_path / "empty")
    csv = sweep / "lab_siglip/fold0/knn/LAB/knn_results.csv"
    pd.read_csv(csv).drop(columns="fold").to_csv(csv, index=False)
    with pytest.raises(
        ValueError, match=r"lab_siglip/fold0/knn/LAB/knn_results.csv lacks column\(s\) \['fold'\]"
    ):
        collect_knn_results(sweep)
    meta = sweep / "dino/fold0/knn/LAB/evaluation.json"
    meta.write_text(json.dumps({"model": "dino", "image_tower": "efficientnet_b0"}))
    with pytest.raises(ValueError, match=r"dino/fold0/knn/LAB/evaluation.json lacks key\(s\)"):
        collect_knn_results(sweep)


def test_cli_writes_chosen_tables(sweep, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["tables", "clip", str(sweep), "--out", str(out), "--table", "2", "--table", "6"]
    assert cli([*args, "--n", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "claims.json", "claims.md", "table2.csv", "table2.md", "table6.csv", "table6.md",
    ]  # fmt: skip
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote 6 files to {out}: table2.csv")
    assert "Paper B's claims at n = 1 per class" in printed and "I+P > I" in printed
    table6_csv = pd.read_csv(out / "table6.csv")
    assert table6_csv["I->I_mean"].round(6).tolist() == [60.0, 62.0, 40.0]
    assert (out / "table2.md").read_text().startswith("Accuracy (%) at n = 1 per class")

    assert cli(["tables", "clip", str(tmp_path / "nowhere"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("plankflux tables clip: sweep folder ") and "nowhere" in err


def test_an_exact_repeat_of_an_evaluation_counts_once(sweep):
    import shutil

    once = collect_knn_results(sweep)
    repeat = sweep / "cross_domain_sweep" / "0" / "knn" / "LAB"
    shutil.copytree(sweep / "lab_infonce" / "fold0" / "knn" / "LAB", repeat)
    assert len(collect_knn_results(sweep)) == len(once)  # same config and seed: one run
    changed = pd.read_csv(repeat / "knn_results.csv")
    changed.loc[0, "accuracy"] += 0.01  # another seed: a run of its own
    changed.to_csv(repeat / "knn_results.csv", index=False)
    assert len(collect_knn_results(sweep)) == len(once) + len(changed)


def test_the_paper_b_notebook_reads_these_tables(sweep, tmp_path, monkeypatch):
    """notebooks/paper_b_tables.ipynb, its code cells run in order on the tables of the
    hand-made sweep (plain Python: no Jupyter needed)."""
    from pathlib import Path

    notebook = Path(__file__).resolve().parents[2] / "notebooks" / "paper_b_tables.ipynb"
    cells = json.loads(notebook.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    write_clip_tables(sweep, tmp_path / "tables")
    monkeypatch.setenv("PLANKFLUX_TABLES", str(tmp_path / "tables"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {}
    exec(compile(code, str(notebook), "exec"), namespace)
    # I+P->I+P 85 % against the better single modality, I->I 80 %, in every run group
    assert namespace["t2"]["gain_I+P"].round(6).tolist() == [5.0, 5.0, 5.0]
    assert namespace["pairs"].loc[("efficientnet_b0", "cnn")].round(6).to_dict() == {
        "InfoNCE": 80.0,
        "Sigmoid": 75.0,
    }
    assert len(namespace["fig"].axes) == 3  # LAB, LAB→SEA, LAB+UTO→SEA
    import matplotlib.pyplot as plt

    plt.close("all")


def test_paper_b_claims_over_folds_or_draws(sweep):
    """At n = 4. In-domain InfoNCE units (run, fold), mean over draws: I+P->I+P 83, 87, 87
    (0.85 + fold offsets -0.02, +0.02 and the ViT run's +0.02); I->I 5 points lower."""
    from scipy import stats

    claims = {c["claim"]: c for c in paper_b_claims(collect_knn_results(sweep))}
    assert len(claims) == 4
    ip_i = claims["I+P > I: I+P->I+P > I->I"]
    assert sorted(ip_i["arms"]["I+P->I+P"]["values"]) == pytest.approx([83.0, 87.0, 87.0])
    assert sorted(ip_i["arms"]["I->I"]["values"]) == pytest.approx([78.0, 82.0, 82.0])
    expected = stats.ttest_ind([83, 87, 87], [78, 82, 82], equal_var=False)
    assert ip_i["p"] == pytest.approx(expected.pvalue, rel=1e-6)
    assert ip_i["holds"] is False and expected.pvalue > 0.05  # three folds: not significant
    ip_p = claims["I+P > P: I+P->I+P > P->P"]
    assert ip_p["holds"] is True  # 25 points above
    # Sigmoid has one fold: both arms fall back to gallery draws, and the note says so.
    loss = claims["InfoNCE >= Sigmoid (I+P->I+P)"]
    assert sorted(loss["arms"]["Sigmoid"]["values"]) == pytest.approx([79.0, 81.0])
    assert loss["holds"] is True and "gallery" in loss["note"]
    dino = claims["CLIP I->I > DINO I->I"]
    assert dino["arms"]["DINO"]["values"] == pytest.approx([60.0])
    assert dino["holds"] is None  # one DINO value: no test
