"""``plankflux stats CAMPAIGN``: per-channel mean/std of a campaign's images.

Prints one line per resize mode and, with ``--out``, writes a JSON file that the
``normalize`` option of the data config accepts as a path::

    {"resize": {"mean": [..], "std": [..], "size": 224, "n_images": N, ...},
     "pad":    {...}}
"""

from __future__ import annotations

import argparse
import json
import sys

from plankflux.errors import PlankfluxError

#: ``plankflux.data.transforms.RESIZE_MODES``, written out so that the help needs no torch
#: (a test keeps the two equal).
RESIZE_MODES = ("resize", "pad")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="per-channel image mean/std of a campaign (for normalisation)",
        description=(
            "Compute per-channel mean and std (pixels in [0, 1]) of a campaign's images "
            "after resizing, for the 'dataset statistics' normalisation."
        ),
    )
    parser.add_argument("campaign", help="campaign folder")
    parser.add_argument("--size", type=int, default=224, help="image size in px (default 224)")
    parser.add_argument(
        "--resize-mode",
        default="both",
        help="resize (squash to a square), pad (keep aspect, pad black), pad_median (pad "
        "with the border median), pad_<0-255> (pad with that grey), or both = resize and "
        "pad (default)",
    )
    parser.add_argument("--domains", nargs="+", metavar="DOMAIN", help="only these domains")
    parser.add_argument("--labelled-only", action="store_true", help="only particles with a label")
    parser.add_argument(
        "--skip-unreadable",
        action="store_true",
        help="decode every image first and leave out unreadable ones instead of failing",
    )
    parser.add_argument("--workers", type=int, default=None, help="decoding threads")
    parser.add_argument("--out", metavar="FILE.json", help="also write the statistics as JSON")
    parser.set_defaults(func=run)


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in values) + "]"


def run(args: argparse.Namespace) -> int:
    from plankflux.data.campaign import load_campaign
    from plankflux.data.image_cache import UnreadableImageError
    from plankflux.data.stats import compute_dataset_stats
    from plankflux.data.transforms import check_resize_mode
    from plankflux.utils.atomic import atomic_open
    from plankflux.utils.paths import check_output

    if args.size < 1:
        print(f"--size must be >= 1, got {args.size}", file=sys.stderr)
        return 2
    campaign = load_campaign(
        args.campaign,
        check_images="decode" if args.skip_unreadable else "exists",
        skip_unreadable=args.skip_unreadable,
    )
    if campaign.skipped:
        print(f"skipped {len(campaign.skipped)} unreadable image(s)", file=sys.stderr)

    rows = campaign.particles
    if args.domains:
        unknown = sorted(set(args.domains) - set(rows["domain"]))
        if unknown:
            known = ", ".join(sorted(set(rows["domain"])))
            print(f"unknown domain(s) {', '.join(unknown)}; campaign has: {known}", file=sys.stderr)
            return 1
        rows = rows[rows["domain"].isin(args.domains)]
    if args.labelled_only:
        rows = rows[rows["label"] != ""]
    if rows.empty:
        print("no images selected", file=sys.stderr)
        return 1
    paths = campaign.image_paths(rows)

    modes = list(RESIZE_MODES) if args.resize_mode == "both" else [args.resize_mode]
    for mode in modes:
        check_resize_mode(mode)
    table = {}
    for mode in modes:
        try:
            mean, std = compute_dataset_stats(
                paths, args.size, mode, progress=sys.stderr.isatty(), workers=args.workers
            )
        except UnreadableImageError as err:
            raise PlankfluxError(
                f"{err}\n(use --skip-unreadable to leave such images out)"
            ) from err
        table[mode] = {
            "mean": mean,
            "std": std,
            "size": args.size,
            "n_images": len(paths),
            "domains": sorted(set(rows["domain"])),
            "labelled_only": bool(args.labelled_only),
        }
        print(f"{mode}: mean {_fmt(mean)} std {_fmt(std)} ({len(paths)} images, {args.size}px)")

    if args.out:
        check_output(args.out, campaign=args.campaign)
        with atomic_open(args.out) as handle:
            json.dump(table, handle, indent=2)
            handle.write("\n")
        print(f"wrote {args.out}")
    return 0
