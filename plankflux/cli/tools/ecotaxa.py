"""``plankflux ecotaxa export|import``: verify proposals in EcoTaxa instead of folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from plankflux.layout import MANIFEST_FILE


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "ecotaxa",
        help="exchange proposals and verdicts with EcoTaxa",
        description="Export a proposal folder as an EcoTaxa import bundle; import the "
        "validated objects back as verified.csv.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="proposal folder -> EcoTaxa import zip")
    export.add_argument("proposals", help="proposal folder (with manifest.csv)")
    export.add_argument("--campaign", required=True)
    export.add_argument("--out", required=True, help="zip file to write")
    export.set_defaults(func=run_export)
    imp = actions.add_parser("import", help="EcoTaxa export TSV (or zip) -> verified.csv")
    imp.add_argument("export", help="TSV or zip exported from EcoTaxa")
    imp.add_argument("--proposals", required=True, help="the proposal folder it was made from")
    imp.add_argument("--campaign", required=True)
    imp.add_argument("--out", required=True, help="verified.csv to write")
    imp.set_defaults(func=run_import)


def run_export(args: argparse.Namespace) -> int:
    from plankflux.data.campaign import load_campaign
    from plankflux.hitl.ecotaxa import export_ecotaxa_bundle
    from plankflux.utils.paths import check_output

    check_output(args.out, campaign=args.campaign, proposals=args.proposals)
    campaign = load_campaign(args.campaign)
    path = export_ecotaxa_bundle(args.proposals, campaign, args.out)
    print(
        f"wrote {path}: import it into your EcoTaxa project, validate, then export the "
        f"validated objects as TSV and run `plankflux ecotaxa import`"
    )
    return 0


def run_import(args: argparse.Namespace) -> int:
    from plankflux.data.campaign import load_campaign
    from plankflux.hitl.ecotaxa import import_ecotaxa_verification
    from plankflux.utils.paths import check_output

    check_output(args.out, campaign=args.campaign, proposals=args.proposals)
    campaign = load_campaign(args.campaign, check_images="none")
    manifest = Path(args.proposals) / MANIFEST_FILE
    verified = import_ecotaxa_verification(
        args.export, manifest, args.out, classes=campaign.classes
    )
    counts = verified["action"].value_counts()
    print(f"wrote {args.out}: " + ", ".join(f"{n} {a}" for a, n in counts.items()))
    return 0
