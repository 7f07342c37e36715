"""``plankflux knn CHECKPOINT DATA --out DIR``: k-NN gallery evaluation of a trained model
on any labelled CytoSense pair data set (Paper B protocol), without training.

Use it for a data set that was not a ``targets`` entry when the model was trained, or
to evaluate one model on several data sets. The data set is read with the training
data's preprocessing sizes (stored in the checkpoint); every fold given is evaluated.
Writes the same evaluation folder as training does (``evaluation.json``,
``knn_results.csv``, ``knn_summary.csv``, ``knn_table.md``, ``embeddings.npz``).
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "knn",
        help="k-NN gallery evaluation of a trained CLIP/DINO checkpoint on a pair data set",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("checkpoint", help="best.ckpt or last.ckpt of a plankflux train run")
    parser.add_argument("data", help="labelled CytoSense pair data set (annotations.csv)")
    parser.add_argument("--out", required=True, help="evaluation folder to write")
    parser.add_argument("--name", help="the data set's name in tables (default: folder name)")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--n", type=int, nargs="+", dest="n_values", help="gallery sizes (default 1 2 4 8 16)"
    )
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="seed of the gallery draws")
    parser.add_argument("--setups", nargs="+", help="gallery->query setups (default: all nine)")
    parser.add_argument("--batch-size", type=int, help="default: the training batch size")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from plankflux.datamodules.cytosense import CytoSenseDataModule, target_datamodule
    from plankflux.eval.gallery_evaluation import evaluate_datamodule
    from plankflux.eval.knn import N_VALUES, SETUPS
    from plankflux.models.checkpoints import load_trained_system

    module, state = load_trained_system(args.checkpoint, map_location=args.device)
    trained_on = state.get(CytoSenseDataModule.CHECKPOINT_HYPER_PARAMS_KEY, {})
    like = CytoSenseDataModule(**trained_on) if trained_on else None
    spec = {"root": args.data, "num_workers": args.num_workers}
    if args.batch_size:
        spec["batch_size"] = args.batch_size
    datamodule = target_datamodule(args.name, spec, like)
    results = evaluate_datamodule(
        module,
        datamodule,
        args.out,
        folds=args.folds,
        train_data=like.name if like is not None else None,
        setups=args.setups or SETUPS,
        n_values=args.n_values or N_VALUES,
        draws=args.draws,
        k=args.k,
        seed=args.seed,
    )
    n = results["n_per_class"].max()
    at_n = results[results["n_per_class"] == n].groupby("setup", sort=False)["accuracy"].mean()
    cells = ", ".join(f"{setup} {100 * acc:.1f}%" for setup, acc in at_n.items())
    print(f"wrote {args.out}; accuracy at n={n}: {cells}")
    return 0
