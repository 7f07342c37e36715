"""``plankflux validate DIR``: check a trap campaign and report every problem."""

from __future__ import annotations

import argparse
import sys

from plankflux.data.campaign import validate_campaign


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a trap campaign (particles.csv, samples.csv, images)",
        description="Print a one-line OK summary, or every problem found (exit status 1).",
    )
    parser.add_argument("campaign", help="campaign folder")
    parser.add_argument(
        "--images",
        choices=("decode", "exists", "none"),
        default="decode",
        help="how images are checked: fully decoded (default), existence only, or not at all",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    campaign, problems = validate_campaign(args.campaign, check_images=args.images)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{args.campaign}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    missing_esd = int(campaign.particles["esd_um"].isna().sum())
    note = f"; {missing_esd} particles without esd_um (no carbon)" if missing_esd else ""
    print(f"OK {args.campaign}: {campaign.summary()}{note}")
    return 0
