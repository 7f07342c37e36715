"""``plankflux synth trap|cytosense --out DIR``: write synthetic data in the real formats."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="generate synthetic data in the real formats (docs/synthetic_data.md)",
        description="Generate synthetic data sets, deterministic per seed.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    trap = kinds.add_parser("trap", help="a sediment-trap campaign (five domains, 14 classes)")
    trap.add_argument("--out", required=True, help="new folder to write the campaign into")
    trap.add_argument(
        "--scale",
        choices=("tiny", "demo", "paper"),
        default="demo",
        help="tiny: a few hundred 32-px particles; demo: a few thousand at 64 px; "
        "paper: the real campaign sizes at 224 px (default: demo)",
    )
    trap.add_argument("--seed", type=int, default=0)
    trap.set_defaults(func=run_trap)

    cyto = kinds.add_parser("cytosense", help="CytoSense image-profile pairs (Paper B)")
    cyto.add_argument(
        "--kind",
        dest="dataset",  # not "kind": that name holds the sub-command
        choices=("lab", "sea", "uto"),
        default="lab",
        help="lab: cultures, balanced; sea: in situ, long-tailed, shifted; "
        "uto: in situ, unlabelled (default: lab)",
    )
    cyto.add_argument("--out", required=True, help="new folder to write the data set into")
    cyto.add_argument(
        "--scale",
        choices=("tiny", "demo", "paper"),
        default="demo",
        help="tiny: tens of particles; demo: hundreds to ~1,500; "
        "paper: LAB 20,050 / SEA 9,353 / UTO 32,930 (default: demo)",
    )
    cyto.add_argument("--seed", type=int, default=0)
    cyto.set_defaults(func=run_cytosense)


def run_trap(args: argparse.Namespace) -> int:
    from plankflux.data.campaign import validate_campaign
    from plankflux.synthetic.trap import generate_trap_campaign

    root = generate_trap_campaign(args.out, scale=args.scale, seed=args.seed, progress=True)
    campaign, _ = validate_campaign(root, check_images="none")
    print(f"wrote {root}: {campaign.summary()}")
    return 0


def run_cytosense(args: argparse.Namespace) -> int:
    from plankflux.data.cytosense import load_pairs
    from plankflux.synthetic.cytosense import generate_cytosense

    root = generate_cytosense(
        args.out, kind=args.dataset, scale=args.scale, seed=args.seed, progress=True
    )
    print(f"wrote {root}: {load_pairs(root).summary()}")
    return 0
