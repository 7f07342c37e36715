"""``plankflux validate DIR``: check a trap campaign or a CytoSense pair data set and
report every problem.

The layout is recognised by its index file: ``particles.csv`` (trap campaign, Paper A)
or ``annotations.csv`` (CytoSense image–profile pairs, Paper B).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plankflux.layout import ANNOTATIONS_FILE, PARTICLES_FILE

# --images for a pair data set: "decode" also parses every profile CSV.
PAIR_CHECKS = {"decode": "parse", "exists": "exists", "none": "none"}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a trap campaign (particles.csv, samples.csv, images) or a CytoSense "
        "pair data set (annotations.csv, images, profiles)",
        description="Print a one-line OK summary, or every problem found (exit status 1).",
    )
    parser.add_argument("campaign", help="campaign or pair data set folder")
    parser.add_argument(
        "--images",
        choices=("decode", "exists", "none"),
        default="decode",
        help="how files are checked: images decoded and profiles parsed (default), "
        "existence only, or not at all",
    )
    parser.set_defaults(func=run)


def _report(folder: str, problems) -> int:
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{folder}: {len(problems)} problem(s)", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    from plankflux.data.audit import degenerate_images, duplicate_images, unsplittable_classes
    from plankflux.data.campaign import validate_campaign
    from plankflux.data.cytosense import load_pairs, validate_pairs

    root = Path(args.campaign)
    if (root / ANNOTATIONS_FILE).is_file() and not (root / PARTICLES_FILE).is_file():
        problems = validate_pairs(root, check_files=PAIR_CHECKS[args.images])
        if problems:
            return _report(args.campaign, problems)
        pairs = load_pairs(root, check_files="none")
        print(f"OK {args.campaign}: CytoSense pairs, {pairs.summary()}")
        return 0
    campaign, problems = validate_campaign(args.campaign, check_images=args.images)
    warnings = []
    if not problems and args.images == "decode":
        problems, warnings = duplicate_images(campaign)
    if problems:
        return _report(args.campaign, problems)
    if args.images == "decode":
        warnings += degenerate_images(campaign)
    missing_esd = int(campaign.particles["esd_um"].isna().sum())
    note = f"; {missing_esd} particles without esd_um (no carbon)" if missing_esd else ""
    print(f"OK {args.campaign}: {campaign.summary()}{note}")
    for warning in warnings:
        print(f"warning: {warning}")
    for note in campaign.ignored_columns:
        print(f"note: {note}")
    for line in unsplittable_classes(campaign):
        print(f"note: {line}")
    return 0
