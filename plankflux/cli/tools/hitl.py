"""Human-in-the-loop commands (docs/paper_a.md): ``propose``, ``ingest``, ``minboost``,
``simulate-expert``.

A round trip by hand::

    plankflux propose out/scores.parquet --campaign CAMPAIGN --out work/top1k
    # ... the expert moves wrong images to their class folder, deletes ambiguous ones ...
    plankflux ingest work/top1k --campaign CAMPAIGN          # -> work/top1k.verified.csv
    plankflux minboost out/scores.parquet --campaign CAMPAIGN \\
        --verified work/top1k.verified.csv --out work/minboost
    # ... the expert deletes the wrong ones ...
    plankflux ingest work/minboost --campaign CAMPAIGN --mode minboost
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from plankflux.layout import REVIEW_MODES as MODES

if TYPE_CHECKING:
    import pandas as pd

    from plankflux.data.campaign import Campaign

# The library is imported inside each command, so that `plankflux --help` starts fast.


def add_parser(subparsers) -> None:
    propose = subparsers.add_parser(
        "propose",
        help="voting proposals (unanimous, top-K per class) into a proposal folder",
        description="Unanimous-consensus top-K proposals per class from an ensemble score "
        "table, copied (or linked) into <out>/<class>/ with <out>/manifest.csv.",
    )
    propose.add_argument("scores", help="scores.parquet of plankflux predict")
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
        description="For each class with fewer than --min-verified verified images, on its "
        "own (Paper A): the particles in every member's top-K for the class, minus those "
        "verified as that class. A particle may be proposed for two classes.",
    )
    boost.add_argument("scores", help="scores.parquet of plankflux predict")
    _campaign_arg(boost)
    boost.add_argument("--verified", required=True, help="verified.csv of the first round")
    boost.add_argument(
        "--shown", nargs="+", default=[], metavar="FILE",
        help="optional: CSV files with a particle_id column (e.g. manifests) of particles "
        "to leave out of every class (Paper A leaves out only those verified as the class)",
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


def _counts(frame: pd.DataFrame, column: str) -> str:
    counts = frame[column].value_counts(sort=False)
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "none"


def _campaign(path: str) -> Campaign:
    from plankflux.data.campaign import load_campaign

    return load_campaign(path, check_images="none")


def run_propose(args: argparse.Namespace) -> int:
    from plankflux.hitl import steps
    from plankflux.layout import read_scores

    campaign = _campaign(args.campaign)
    scores = read_scores(args.scores, require_rows=True)
    proposals = steps.propose(scores, campaign, args.out, args.k, args.link)
    counts = _counts(proposals, "proposed_label")
    n_scored = scores["particle_id"].nunique()
    print(
        f"wrote {len(proposals)} proposals into {args.out}: {counts} (only particles every "
        f"member puts in the same class are proposed; {n_scored} were scored)"
    )
    return 0


def run_ingest(args: argparse.Namespace) -> int:
    from plankflux.hitl.ingest import default_verified_path, ingest_verification
    from plankflux.utils.paths import check_output

    out = args.out or default_verified_path(args.proposal_dir)
    check_output(out, campaign=args.campaign, proposals=args.proposal_dir)
    campaign = _campaign(args.campaign)
    verified = ingest_verification(
        args.proposal_dir,
        campaign.classes,
        args.out,
        args.mode,
        particle_ids=set(campaign.particles["particle_id"]),
    )
    print(f"wrote {out}: {len(verified)} particles; {_counts(verified, 'action')}")
    return 0


def run_minboost(args: argparse.Namespace) -> int:
    from plankflux.errors import PlankfluxError
    from plankflux.hitl import steps
    from plankflux.hitl.minboost import read_shown_ids
    from plankflux.layout import read_scores, read_verified

    campaign = _campaign(args.campaign)
    known = set(campaign.particles["particle_id"])
    shown = read_shown_ids(args.shown)
    if shown - known:
        raise PlankfluxError(
            f"--shown: {len(shown - known)} particle_id(s) not in the campaign, e.g. "
            f"{sorted(shown - known)[:5]}"
        )
    candidates = steps.boost(
        read_scores(args.scores, require_rows=True),
        read_verified(args.verified, known, campaign.classes),
        shown,
        campaign,
        args.out,
        min_verified=args.min_verified,
        k=args.k,
        link=args.link,
    )
    print(
        f"wrote {len(candidates)} minboost proposals into {args.out}: "
        f"{_counts(candidates, 'proposed_label')}"
    )
    return 0


def run_simulate_expert(args: argparse.Namespace) -> int:
    from plankflux.hitl import steps

    campaign = _campaign(args.campaign)
    effort = steps.simulate(args.proposal_dir, campaign, args.mode)
    print(f"simulated expert on {args.proposal_dir}: {effort}")
    return 0
