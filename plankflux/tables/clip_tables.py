"""Paper B's Tables 2–6 and the gallery-size figure, pivoted from k-NN evaluations.

Every evaluation of a trained model lives in ``<run>/knn/<eval_name>/`` below a sweep
folder, with ``evaluation.json`` (model, loss, towers, train/eval data, seed) and
``knn_results.csv`` (one row per fold × setup × n × draw; see
:mod:`plankflux.eval.knn`). Runs sharing (method, towers, train data, eval data) —
e.g. the five folds of a sweep — are pooled: a cell is the mean ± sd (ddof=1) of the
accuracy over all pooled (fold, draw) rows, in percent.

Every table frame has key columns, then ``runs`` (runs pooled), then a
``<column>_mean`` and ``<column>_sd`` pair per value column (setups spelled ``I->P``,
or ``n<k>`` for gallery sizes). CLIP-only tables (2, 4, 5) leave DINO out; DINO
appears in Table 3 (its I->I row), Table 6 and the figure.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from plankflux.eval.knn import METRICS, SETUPS, summarise_knn
from plankflux.utils.atomic import atomic_open, atomic_path, write_csv_atomic

log = logging.getLogger(__name__)

EVALUATION_FILE, RESULTS_FILE = "evaluation.json", "knn_results.csv"
CSV_COLUMNS = ("fold", "setup", "n_per_class", "draw", *METRICS)
JSON_KEYS = ("model", "image_tower", "train_data", "eval_data", "seed")
CLIP_KEYS = ("loss", "profile_tower")  # may be null (or absent) for DINO only
METHODS = {"infonce": "InfoNCE", "siglip": "Sigmoid"}  # the paper calls SigLIP "Sigmoid"
TABLES = ("2", "3", "4", "5", "6", "gallery")
GROUP = ("domains", "method", "image_tower", "profile_tower")
# Display order of rows (unknown values follow, alphabetically).
ORDER = {
    "method": ("InfoNCE", "Sigmoid", "DINO"),
    "image_tower": (
        "efficientnet_b0",
        "convnext_femto",
        "vit_tiny_patch16_224",
        "efficientnet_b4",
        "convnext_tiny",
        "vit_small_patch16_224",
    ),  # fmt: skip
    "profile_tower": ("cnn", "bilstm", "transformer", "–"),
    "data": ("LAB", "UTO", "SEA"),
    "setup": SETUPS,
}


def collect_knn_results(sweep: str | os.PathLike) -> pd.DataFrame:
    """Every ``knn_results.csv`` row below ``sweep`` with its evaluation's fields.

    Columns: the csv's columns, then ``model, loss, image_tower, profile_tower,
    train_data, eval_data, seed, run`` (run folder relative to ``sweep``), ``method``
    (``InfoNCE``/``Sigmoid``/``DINO``) and ``domains`` (``"LAB→SEA"``, or ``"LAB"``
    in-domain). ``loss``/``profile_tower`` are None for DINO.
    """
    sweep = Path(sweep)
    if not sweep.is_dir():
        raise FileNotFoundError(f"sweep folder {sweep} does not exist")
    frames, seen = [], {}
    for path in sorted(sweep.glob(f"**/knn/*/{EVALUATION_FILE}")):
        if not (path.parent / RESULTS_FILE).is_file():
            log.warning("%s has no %s (unfinished?); left out", path.parent, RESULTS_FILE)
            continue
        # The same experiment twice (same config and seed: CPU runs are bit-identical,
        # e.g. LAB's in-domain fold of a cross-domain sweep and of the Table 2 sweep)
        # counts once; pooling both would shrink the sd without new information.
        content = (path.read_bytes(), (path.parent / RESULTS_FILE).read_bytes())
        if content in seen:
            log.info("%s repeats %s exactly; counted once", path.parent, seen[content])
            continue
        seen[content] = path.parent
        frames.append(_read_evaluation(path, sweep))
    if not frames:
        raise FileNotFoundError(
            f"no k-NN evaluations (knn/<name>/{EVALUATION_FILE} + {RESULTS_FILE}) under {sweep}"
        )
    return pd.concat(frames, ignore_index=True)


def _read_evaluation(path: Path, sweep: Path) -> pd.DataFrame:
    meta = json.loads(path.read_text())
    model = meta.get("model")
    required = JSON_KEYS + (CLIP_KEYS if model != "dino" else ())
    missing = [k for k in required if k not in meta]
    if missing:
        raise ValueError(f"{path} lacks key(s) {missing}")
    if model == "dino":
        method = "DINO"
    elif model == "clip" and meta["loss"] in METHODS:
        method = METHODS[meta["loss"]]
    else:
        raise ValueError(f"{path}: unknown model/loss {model!r}/{meta.get('loss')!r}")
    csv = path.parent / RESULTS_FILE
    frame = pd.read_csv(csv)
    missing = [c for c in CSV_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{csv} lacks column(s) {missing}")
    frame["setup"] = frame["setup"].str.replace("→", "->").str.replace(" ", "")
    unknown = sorted(set(frame["setup"]) - set(SETUPS))
    if unknown:
        raise ValueError(f"{csv}: unknown setup(s) {unknown}")
    train, test = str(meta["train_data"]), str(meta["eval_data"])
    return frame.assign(
        model=model,
        loss=meta.get("loss"),
        image_tower=meta["image_tower"],
        profile_tower=meta.get("profile_tower"),
        train_data=train,
        eval_data=test,
        seed=meta["seed"],
        run=path.parent.parent.parent.relative_to(sweep).as_posix(),
        method=method,
        domains=train if train == test else f"{train}→{test}",
    )


# --------------------------------------------------------------------------- pivoting


def _rank(column: str, value: str) -> tuple:
    """Sort key of one row label (known values first, in :data:`ORDER`)."""
    if column in ("domains", "train_data", "eval_data"):
        sides = [[_rank("data", p) for p in side.split("+")] for side in value.split("→")]
        return (len(sides), len(sides[0]), sides)  # in-domain, then single, then combined
    known = ORDER.get(column, ())
    return (known.index(value) if value in known else len(known), value)


def _sorted(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    def key(col: pd.Series) -> pd.Series:
        values = sorted(set(col), key=lambda v: _rank(col.name, v))
        return col.map({v: i for i, v in enumerate(values)})

    return table.sort_values(list(keys), key=key, kind="stable").reset_index(drop=True)


def _pivot(
    rows: pd.DataFrame, keys: Sequence[str], across: str, columns: Sequence, label=str
) -> pd.DataFrame:
    """Accuracy % per ``keys`` group (rows) × value of ``across`` (``columns``).

    Returns ``keys..., runs, <label(c)>_mean, <label(c)>_sd, ...``; a column with no
    rows in a group is NaN. Empty when ``rows`` is.
    """
    keys = list(keys)
    if rows.empty:
        return pd.DataFrame()
    rows = rows.fillna({k: "–" for k in keys})  # DINO's null profile tower must not drop out
    summary = summarise_knn(rows, by=[*keys, across])
    wide = summary.pivot(index=keys, columns=across, values=["accuracy_mean", "accuracy_sd"])
    out = rows.groupby(keys, sort=False)["run"].nunique().rename("runs").to_frame()
    for c in columns:
        for stat in ("mean", "sd"):
            values = wide[f"accuracy_{stat}"].get(c, pd.Series(np.nan, index=wide.index))
            out[f"{label(c)}_{stat}"] = 100 * values.reindex(out.index)
    return _sorted(out.reset_index(), keys)


def _combined(train_data: pd.Series) -> pd.Series:
    """Runs trained on several data sets at once (``"LAB+UTO"``)."""
    return train_data.str.contains("+", regex=False)


def _at_n(results: pd.DataFrame, n: int | None) -> pd.DataFrame:
    n = int(results["n_per_class"].max()) if n is None else n
    return results[results["n_per_class"] == n]


def table2(results: pd.DataFrame, n: int | None = None) -> pd.DataFrame:
    """In-domain CLIP: rows ``domains, method, image_tower, profile_tower``; columns
    I->I, P->P, I+P->I+P at gallery size ``n`` (default: the largest present)."""
    rows = _at_n(results, n)
    rows = rows[(rows["train_data"] == rows["eval_data"]) & (rows["model"] == "clip")]
    return _pivot(rows, GROUP, "setup", ("I->I", "P->P", "I+P->I+P"))


def table3(results: pd.DataFrame) -> pd.DataFrame:
    """Nine-setup breakdown (also appendix A.2–A.4): rows ``domains, method,
    image_tower, profile_tower, setup`` (setups present, canonical order); columns
    ``n<k>`` for every gallery size present."""
    ns = sorted(int(n) for n in results["n_per_class"].unique())
    return _pivot(results, [*GROUP, "setup"], "n_per_class", ns, label=lambda n: f"n{n}")


def table4(results: pd.DataFrame, n: int | None = None) -> pd.DataFrame:
    """Cross-domain CLIP from one training set (train != eval, no ``+``): rows
    ``domains, method, image_tower, profile_tower``; columns the nine setups at ``n``."""
    rows = _at_n(results, n)
    cross = (rows["train_data"] != rows["eval_data"]) & ~_combined(rows["train_data"])
    return _pivot(rows[cross & (rows["model"] == "clip")], GROUP, "setup", SETUPS)


def table5(results: pd.DataFrame, n: int | None = None) -> pd.DataFrame:
    """Combined training: CLIP runs with ``+`` in train_data and, for comparison, every
    CLIP run evaluated on the same eval data. Rows ``eval_data, train_data, method,
    image_tower, profile_tower``; columns the nine setups at ``n``."""
    rows = _at_n(results, n)
    rows = rows[rows["model"] == "clip"]
    targets = set(rows.loc[_combined(rows["train_data"]), "eval_data"])
    keys = ("eval_data", "train_data", "method", "image_tower", "profile_tower")
    return _pivot(rows[rows["eval_data"].isin(targets)], keys, "setup", SETUPS)


def table6(results: pd.DataFrame, n: int | None = None) -> pd.DataFrame:
    """DINO vs InfoNCE on every domains pair DINO was evaluated on: rows ``method,
    domains, image_tower, profile_tower``; columns I->I and I+P->I+P (NaN for DINO)."""
    rows = _at_n(results, n)
    rows = rows[rows["method"].isin(["DINO", "InfoNCE"])]
    rows = rows[rows["domains"].isin(rows.loc[rows["method"] == "DINO", "domains"])]
    keys = ("method", "domains", "image_tower", "profile_tower")
    return _pivot(rows, keys, "setup", ("I->I", "I+P->I+P"))


def gallery_curves(results: pd.DataFrame) -> pd.DataFrame:
    """Figure data: ``domains, method, image_tower, profile_tower, setup, n_per_class,
    runs, accuracy_mean, accuracy_sd`` (%), one row per plotted point."""
    rows = results.fillna({k: "–" for k in GROUP})
    keys = [*GROUP, "setup", "n_per_class"]
    out = summarise_knn(rows, by=keys)
    out[["accuracy_mean", "accuracy_sd"]] *= 100
    runs = rows.groupby(keys, sort=False)["run"].nunique().rename("runs").reset_index()
    out = out.merge(runs, on=keys)[[*keys, "runs", "accuracy_mean", "accuracy_sd"]]
    return _sorted(out, keys)


# --------------------------------------------------------------------------- claims


def _units(rows: pd.DataFrame) -> tuple[pd.Series, str]:
    """Accuracy per replicate: a trained model's fold (mean over gallery draws), or the
    draws themselves when an arm has a single fold."""
    per_fold = rows.groupby(["run", "fold"])["accuracy"].mean()
    if len(per_fold) >= 2:
        return per_fold, "folds"
    return rows["accuracy"], "gallery draws"


def _arms(a: pd.DataFrame, b: pd.DataFrame) -> tuple[list[float], list[float], str]:
    ua, kind_a = _units(a)
    ub, kind_b = _units(b)
    if kind_a != kind_b:  # compare like with like
        ua, ub, kind_a = a["accuracy"], b["accuracy"], "gallery draws"
    note = (
        ""
        if kind_a == "folds"
        else "one trained model per arm: the draws of the gallery are the replicates, "
        "so the test covers gallery sampling, not training"
    )
    return [100 * float(x) for x in ua], [100 * float(x) for x in ub], note


def paper_b_claims(results: pd.DataFrame, n: int | None = None) -> list[dict]:
    """Paper B's orderings at gallery size ``n`` (default: the largest), tested with
    Welch's t over folds (or gallery draws when an arm has one fold):
    I+P->I+P above I->I and above P->P (in-domain CLIP), InfoNCE at least Sigmoid
    (in-domain I+P->I+P), CLIP I->I above DINO I->I (where DINO was evaluated)."""
    from plankflux.eval.claims import compare

    rows = _at_n(results, n)
    clip = rows[(rows["model"] == "clip") & (rows["train_data"] == rows["eval_data"])]
    infonce = clip[clip["method"] == "InfoNCE"]
    main = infonce if len(infonce) else clip
    found = []
    quantity = "k-NN accuracy (%), in-domain CLIP"
    for single in ("I->I", "P->P"):
        a, b, note = _arms(main[main["setup"] == "I+P->I+P"], main[main["setup"] == single])
        found.append(compare(f"I+P > {single[0]}: I+P->I+P > {single}", "I+P->I+P", a, single,
                             b, ">", quantity, note=note))  # fmt: skip
    both = clip[clip["setup"] == "I+P->I+P"]
    a, b, note = _arms(both[both["method"] == "InfoNCE"], both[both["method"] == "Sigmoid"])
    found.append(compare("InfoNCE >= Sigmoid (I+P->I+P)", "InfoNCE", a, "Sigmoid", b, ">",
                         quantity, kind="at_least", note=note))  # fmt: skip
    dino = rows[(rows["method"] == "DINO") & (rows["setup"] == "I->I")]
    clip_ii = rows[(rows["method"] == "InfoNCE") & (rows["setup"] == "I->I")]
    clip_ii = clip_ii[clip_ii["domains"].isin(set(dino["domains"]))]
    a, b, note = _arms(clip_ii, dino)
    found.append(compare("CLIP I->I > DINO I->I", "CLIP", a, "DINO", b, ">",
                         "k-NN accuracy (%), image galleries and queries", note=note))  # fmt: skip
    return found


# --------------------------------------------------------------------------- rendering


def _cell(mean: float, sd: float) -> str:
    if np.isnan(mean):
        return "–"
    return f"{mean:.1f}" + ("" if np.isnan(sd) else f" ± {sd:.1f}")


def to_markdown(table: pd.DataFrame, keys: Sequence[str], caption: str = "") -> str:
    """Markdown of a table frame: key columns, then ``mean ± sd`` cells (``–`` if NaN)."""
    values = [c.removesuffix("_mean") for c in table.columns if c.endswith("_mean")]
    header = [k.replace("_", " ") for k in keys] + [v.replace("->", "→") for v in values]
    lines = [caption, ""] if caption else []
    lines += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for _, row in table.iterrows():
        cells = [str(row[k]) for k in keys]
        cells += [_cell(row[f"{v}_mean"], row[f"{v}_sd"]) for v in values]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _towers(image: str, profile: str) -> str:
    return image if profile == "–" else f"{image} + {profile}"


def table3_markdown(table: pd.DataFrame) -> str:
    """One block per (domains, method, towers): rows setups, columns gallery sizes."""
    blocks = []
    for group, block in table.groupby(list(GROUP), sort=False):
        title = f"### {group[0]} · {group[1]} · {_towers(*group[2:])}"
        block = block.rename(columns=lambda c: c.replace("n", "n=", 1) if c[1:2].isdigit() else c)
        blocks.append(title + "\n\n" + to_markdown(block, ["setup"]).replace("->", "→"))
    caption = "Accuracy (%) per gallery size n, mean ± sd over folds × draws.\n\n"
    return caption + "\n".join(blocks)


def gallery_figure(curves: pd.DataFrame, path: Path) -> None:
    """Accuracy vs n (log2 axis) per setup, one panel per (domains, method, towers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(curves.groupby(list(GROUP), sort=False))
    ncols = min(3, len(groups))
    nrows = -(-len(groups) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.5 * ncols, 3.6 * nrows), squeeze=False)
    for ax, (group, block) in zip(axes.flat, groups, strict=False):
        for setup, line in block.groupby("setup", sort=False):
            x, y = line["n_per_class"], line["accuracy_mean"]
            sd = line["accuracy_sd"].fillna(0)
            color = f"C{SETUPS.index(setup)}"  # one colour per setup in every panel
            ax.plot(x, y, marker="o", ms=3, color=color, label=setup.replace("->", "→"))
            ax.fill_between(x, y - sd, y + sd, color=color, alpha=0.15)
        ns = sorted(block["n_per_class"].unique())
        ax.set_xscale("log", base=2)
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.set_title(f"{group[0]} · {group[1]}\n{_towers(*group[2:])}", fontsize="small")
        ax.set_xlabel("gallery samples per class (n)")
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize="x-small", ncol=3)
    for ax in axes.flat[len(groups) :]:
        ax.set_visible(False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- writing

_NEEDS = {
    "2": "in-domain CLIP evaluations",
    "3": "any evaluation",
    "4": "cross-domain CLIP evaluations from a single training set",
    "5": "CLIP runs trained on combined data (train_data with '+')",
    "6": "DINO evaluations",
    "gallery": "any evaluation",
}


def write_clip_tables(
    sweep: str | os.PathLike,
    out_dir: str | os.PathLike,
    tables: Sequence[str] = TABLES,
    n: int | None = None,
) -> dict[str, Path]:
    """Write ``table<k>.csv``/``.md`` and ``figure_gallery_size.csv``/``.png``.

    ``n`` is the gallery size of Tables 2, 4, 5, 6 (default: the largest present). A
    table without matching runs is skipped (logged); returns ``{file name: path}``.
    """
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise ValueError(f"unknown table(s) {unknown}; known: {list(TABLES)}")
    results = collect_knn_results(sweep)
    present = sorted(int(v) for v in results["n_per_class"].unique())
    if n is not None and n not in present:
        raise ValueError(f"n={n} is not among the gallery sizes in {sweep}: {present}")
    n = present[-1] if n is None else n
    caption = f"Accuracy (%) at n = {n} per class, mean ± sd over folds × draws."
    builders = {
        "2": lambda: (table2(results, n), GROUP),
        "3": lambda: (table3(results), None),
        "4": lambda: (table4(results, n), GROUP),
        "5": lambda: (table5(results, n), ("eval_data", "train_data", *GROUP[1:])),
        "6": lambda: (table6(results, n), ("method", "domains", *GROUP[2:])),
    }
    out, written, skipped = Path(out_dir), {}, []
    for name in tables:
        if name == "gallery":
            curves = gallery_curves(results)
            paths = [out / "figure_gallery_size.csv", out / "figure_gallery_size.png"]
            write_csv_atomic(curves, paths[0])
            gallery_figure(curves, paths[1])
        else:
            table, keys = builders[name]()
            if table.empty:
                log.info("table %s skipped: no %s in %s", name, _NEEDS[name], sweep)
                skipped.append(f"table {name} needs {_NEEDS[name]}")
                continue
            paths = [out / f"table{name}.csv", out / f"table{name}.md"]
            write_csv_atomic(table, paths[0])
            text = table3_markdown(table) if keys is None else to_markdown(table, keys, caption)
            with atomic_open(paths[1]) as handle:
                handle.write(text)
        written.update({p.name: p for p in paths})
    if not written:
        raise ValueError(f"no table could be built from {sweep}: " + "; ".join(skipped))
    claims = paper_b_claims(results, n)
    paths = [out / "claims.json", out / "claims.md"]
    with atomic_open(paths[0]) as handle:
        json.dump(claims, handle, indent=2)
    with atomic_open(paths[1]) as handle:
        handle.write(claims_markdown(claims, n))
    written.update({p.name: p for p in paths})
    return written


def claims_markdown(claims: Sequence[dict], n: int) -> str:
    """Paper B's claims as printed lines under a heading (``claims.md``)."""
    from plankflux.eval.claims import format_claims

    head = f"Paper B's claims at n = {n} per class (Welch t, two-sided, alpha 0.05):"
    return "\n".join([head, *format_claims(claims)]) + "\n"
