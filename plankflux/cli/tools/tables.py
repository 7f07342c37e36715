"""``plankflux tables study|ensemble|clip``: the papers' tables from finished runs.

``study`` gives Paper A's Figures S1–S3 from a sweep, ``ensemble`` the per-member test
metrics, ``clip`` Paper B's Tables 2–6 and gallery-size figure from k-NN evaluations.
"""

from __future__ import annotations

import argparse

from plankflux.errors import PlankfluxError

#: The studies of ``plankflux.tables.studies.STUDIES`` (written out for a fast --help;
#: a test keeps the two equal).
STUDY_NAMES = ("tune_lr", "tune_preprocess", "tune_wd")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("tables", help="turn finished runs into the papers' tables")
    kinds = parser.add_subparsers(dest="table", required=True, metavar="TABLE")
    study = kinds.add_parser(
        "study",
        help="Figure S1-S3 tables and bar plots from a tune_preprocess/tune_lr/tune_wd sweep",
    )
    study.add_argument("sweep", help="multirun folder of the sweep")
    study.add_argument(
        "--study", choices=STUDY_NAMES, help="which study (default: the sweep's task name)"
    )
    study.add_argument("--out", required=True, help="folder for the CSV, Markdown and PNG")
    study.set_defaults(func=run_study)
    ensemble = kinds.add_parser(
        "ensemble",
        help="per-member and mean ± sd test metrics (14-class and original scheme)",
    )
    ensemble.add_argument("run", help="run or multirun folder holding the members")
    ensemble.add_argument("--out", required=True)
    ensemble.set_defaults(func=run_ensemble)
    clip = kinds.add_parser(
        "clip",
        help="Paper B Tables 2-6 and the gallery-size figure from k-NN evaluations",
    )
    clip.add_argument("sweep", help="folder holding runs with knn/<name>/ evaluations")
    clip.add_argument("--out", required=True, help="folder for the CSV, Markdown and PNG")
    clip.add_argument(
        "--table",
        action="append",
        choices=("2", "3", "4", "5", "6", "gallery"),
        help="table to write (repeatable; default: all)",
    )
    clip.add_argument(
        "--n", type=int, help="gallery size of Tables 2, 4, 5, 6 (default: the largest)"
    )
    clip.set_defaults(func=run_clip)


def _report_unfinished(folder: str) -> None:
    import sys

    from plankflux.tables.unfinished import describe_unfinished

    line = describe_unfinished(folder)
    if line:
        print(f"plankflux tables: {line}", file=sys.stderr)


def run_ensemble(args: argparse.Namespace) -> int:
    from plankflux.tables.ensemble_metrics import write_ensemble_metrics

    _report_unfinished(args.run)
    written = write_ensemble_metrics(args.run, args.out)
    print(f"wrote {len(written)} files to {args.out}")
    return 0


def run_clip(args: argparse.Namespace) -> int:
    from plankflux.tables.clip_tables import TABLES, write_clip_tables

    _report_unfinished(args.sweep)
    written = write_clip_tables(args.sweep, args.out, args.table or TABLES, n=args.n)
    print(f"wrote {len(written)} files to {args.out}: " + ", ".join(written))
    print(written["claims.md"].read_text(), end="")
    return 0


def run_study(args: argparse.Namespace) -> int:
    from plankflux.tables.studies import write_study_tables

    study = args.study or _study_from_sweep(args.sweep)
    _report_unfinished(args.sweep)
    paths = write_study_tables(args.sweep, study, args.out)
    print(f"{study}: " + ", ".join(str(p) for p in paths.values()))
    return 0


def _study_from_sweep(sweep: str) -> str:
    from pathlib import Path

    from omegaconf import OmegaConf

    root = Path(sweep)
    if not root.is_dir():
        raise PlankfluxError(
            f"{sweep} is not a folder (the sweep's output folder, e.g. "
            "logs/tune_lr/multiruns/<date>)"
        )
    configs = list(root.glob("**/.hydra/config.yaml"))
    tasks = set()
    for config in configs:
        task = OmegaConf.load(config).get("task_name")
        if task in STUDY_NAMES:
            return task
        tasks.add(str(task) if task is not None else "(no task_name)")
    if not configs:  # --study would not help: there are no runs to tabulate
        raise PlankfluxError(
            f"{sweep} holds no Hydra runs (no .hydra/config.yaml below it): pass the output "
            "folder of a study sweep, e.g. `plankflux train -m experiment=tune_lr ...` writes "
            "logs/tune_lr/multiruns/<date>"
        )
    raise PlankfluxError(
        f"the runs under {sweep} are {sorted(tasks)}, not one of Paper A's studies "
        f"{list(STUDY_NAMES)}; if they are one under another name, pass --study"
    )
