"""``plankflux campaign merge A B ... --out C``: several deployments in one campaign.

The campaigns are only read; ``C`` is a new folder whose rows point at the same images
(relative paths made absolute). Clashing particle or sample ids, and labels outside
the first campaign's class list, are refused before anything is written.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "campaign",
        help="work on whole campaigns: merge several deployments into one",
        description="Campaign-level operations.",
    )
    actions = parser.add_subparsers(dest="campaign_action", required=True, metavar="ACTION")
    merge = actions.add_parser(
        "merge",
        help="merge campaigns (e.g. two deployments) into a new campaign folder",
        description="The first campaign's class list is kept; every label of the others "
        "must be in it. Particle and sample ids must not repeat across campaigns.",
    )
    merge.add_argument("campaigns", nargs="+", metavar="CAMPAIGN", help="campaign folders")
    merge.add_argument("--out", required=True, metavar="DIR", help="new campaign folder")
    merge.set_defaults(func=run_merge)


def run_merge(args: argparse.Namespace) -> int:
    from plankflux.data.campaign import load_campaign, validate_campaign, write_campaign
    from plankflux.data.merge import merge_campaigns
    from plankflux.data.readers.common import prepare_output
    from plankflux.errors import PlankfluxError

    if len(args.campaigns) < 2:
        raise PlankfluxError("give at least two campaigns to merge")
    campaigns = [load_campaign(path, check_images="none") for path in args.campaigns]
    out = args.out
    for campaign in campaigns:  # the same checks as an import: never into a source
        prepare_output(campaign.root, out)
    particles, samples, classes = merge_campaigns(campaigns, out)
    write_campaign(out, particles, samples, classes)
    merged, problems = validate_campaign(out, check_images="exists")
    if problems:
        raise PlankfluxError(f"wrote {out}, but it has {len(problems)} problem(s): {problems[0]}")
    print(f"merged {len(campaigns)} campaigns into {out}: {merged.summary()}")
    return 0
