"""Human-in-the-loop commands (DESIGN §4): ``propose``, ``ingest``, ``minboost``,
``simulate-expert``.

A round trip by hand::

    plankflux propose out/scores.parquet --campaign CAMPAIGN --out work/top1k
    # ... the expert moves wrong images to their class folder, deletes ambiguous ones ...
    plankflux ingest work/top1k --campaign CAMPAIGN          # -> work/top1k.verified.csv
    plankflux minboost out/scores.parquet --campaign CAMPAIGN \\
        --verified work/top1k.verified.csv --shown work/top1k/manifest.csv --out work/minboost
    # ... the expert deletes the wrong ones ...
    plankflux ingest work/minboost --campaign CAMPAIGN --mode minboost
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from plankflux.data.campaign import CampaignError, load_campaign
from plankflux.hitl.ingest import (
    MODES,
    VerificationError,
    default_verified_path,
    ingest_verification,
    read_verified,
)
from plankflux.hitl.minboost import minboost_candidates, read_shown_ids
from plankflux.hitl.proposals import write_proposal_folder
from plankflux.hitl.simulated_expert import simulate_expert, truth_from_campaign
from plankflux.hitl.voting import consensus, top_k_per_class

_ERRORS = (CampaignError, VerificationError, FileExistsError, FileNotFoundError, ValueError)


def add_parser(subparsers) -> None:
    propose = subparsers.add_parser(
        "propose",
        help="voting proposals (unanimous, top-K per class) into a proposal folder",
        description="Unanimous-consensus top-K proposals per class from an ensemble score "
        "table, copied (or linked) into <out>/<class>/ with <out>/manifest.csv.",
    )
    propose.add_argument("scores", help="scores.parquet of plankflux-predict")
    _campaign_arg(propose)
    propose.add_argument("--out", required=True, help="proposal folder to create")
    _k_arg(propose)
    _link_arg(propose)
    propose.set_defaults(func=run_propose)

    ingest = subparsers.add_parser(
        "ingest",
        help="read an expert-edited proposal folder into verified.csv",
        description="Left in place = confirmed, moved = relabelled, deleted = rejected. "
        "Any unexpected file or folder is an error and nothing is written.",
    )
    ingest.add_argument("proposal_dir", help="the edited proposal folder")
    _campaign_arg(ingest)
    ingest.add_argument(
        "--out", help="verified table to write (default <proposal_dir>.verified.csv)"
    )
    ingest.add_argument("--mode", choices=MODES, default="verify", help="round (default verify)")
    ingest.set_defaults(func=run_ingest)

    boost = subparsers.add_parser(
        "minboost",
        help="second proposal folder for the classes with few verified images",
        description="For each class with fewer than --min-verified verified images: the "
        "particles in every member's top-K for the class, minus those already shown.",
    )
    boost.add_argument("scores", help="scores.parquet of plankflux-predict")
    _campaign_arg(boost)
    boost.add_argument("--verified", required=True, help="verified.csv of the first round")
    boost.add_argument(
        "--shown", nargs="+", default=[], metavar="FILE",
        help="CSV files with a particle_id column (manifests) of particles already shown",
    )  # fmt: skip
    boost.add_argument("--out", required=True, help="proposal folder to create")
    boost.add_argument("--min-verified", type=int, default=100, help="default 100")
    _k_arg(boost)
    _link_arg(boost)
    boost.set_defaults(func=run_minboost)

    expert = subparsers.add_parser(
        "simulate-expert",
        help="edit a proposal folder from the campaign's known labels (experiments)",
        description="Moves wrong proposals to their true class (verify) or deletes them "
        "(minboost), deletes ambiguous ones, and prints the review effort.",
    )
    expert.add_argument("proposal_dir", help="the proposal folder to edit")
    _campaign_arg(expert)
    expert.add_argument("--mode", choices=MODES, default="verify", help="round (default verify)")
    expert.set_defaults(func=run_simulate_expert)


def _campaign_arg(parser) -> None:
    parser.add_argument("--campaign", required=True, help="campaign folder")


def _k_arg(parser) -> None:
    parser.add_argument("--k", type=int, default=1000, help="proposals per class (default 1000)")


def _link_arg(parser) -> None:
    parser.add_argument(
        "--link", action="store_true", help="symbolic links instead of copies of the images"
    )


def _read_scores(path: str) -> pd.DataFrame:
    return pd.read_parquet(path) if Path(path).suffix == ".parquet" else pd.read_csv(path)


def _counts(frame: pd.DataFrame, column: str) -> str:
    counts = frame[column].value_counts(sort=False)
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "none"


def _guard(run):
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except _ERRORS as err:
            print(err, file=sys.stderr)
            return 1

    return wrapped


@_guard
def run_propose(args: argparse.Namespace) -> int:
    campaign = load_campaign(args.campaign, check_images="none")
    classes = list(campaign.classes)
    proposals = top_k_per_class(consensus(_read_scores(args.scores), classes), args.k, classes)
    write_proposal_folder(proposals, campaign, args.out, link=args.link)
    counts = _counts(proposals, "proposed_label")
    print(f"wrote {len(proposals)} proposals into {args.out}: {counts}")
    return 0


@_guard
def run_ingest(args: argparse.Namespace) -> int:
    campaign = load_campaign(args.campaign, check_images="none")
    verified = ingest_verification(args.proposal_dir, campaign.classes, args.out, args.mode)
    out = args.out or default_verified_path(args.proposal_dir)
    print(f"wrote {out}: {len(verified)} particles; {_counts(verified, 'action')}")
    return 0


@_guard
def run_minboost(args: argparse.Namespace) -> int:
    campaign = load_campaign(args.campaign, check_images="none")
    classes = list(campaign.classes)
    candidates = minboost_candidates(
        _read_scores(args.scores),
        read_verified(args.verified),
        read_shown_ids(args.shown),
        classes,
        min_verified=args.min_verified,
        k=args.k,
    )
    write_proposal_folder(
        candidates, campaign, args.out, link=args.link, manifest_extra={"round": "minboost"}
    )
    print(
        f"wrote {len(candidates)} minboost proposals into {args.out}: "
        f"{_counts(candidates, 'proposed_label')}"
    )
    return 0


@_guard
def run_simulate_expert(args: argparse.Namespace) -> int:
    campaign = load_campaign(args.campaign, check_images="none")
    truth, ambiguous = truth_from_campaign(args.campaign)
    effort = simulate_expert(args.proposal_dir, truth, ambiguous, args.mode, campaign.classes)
    print(f"simulated expert on {args.proposal_dir}: {effort}")
    return 0
