"""``plankflux review``: verify a proposal folder in a local web page.

::

    plankflux review WORKSPACE/proposals --campaign CAMPAIGN
    # open the printed http://127.0.0.1:PORT/?token=... address; Finish writes verified.csv

The page writes the same ``verified.csv`` as ``plankflux ingest`` would for the same
decisions and never touches the proposal folder, unless asked with ``--update-folder``
(which moves and deletes the copies as decided, and serves nothing).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from plankflux.layout import REVIEW_MODES, SCORES_FILE, Workspace

# The library (pandas, bottle) is imported inside the command: `plankflux --help` stays fast.


def add_parser(subparsers) -> None:
    review = subparsers.add_parser(
        "review",
        help="verify a proposal folder in a local web page (writes verified.csv)",
        description="Serve a local page over a proposal folder: one class at a time, "
        "images sorted by ensemble score, keyboard first. Decisions are saved as they are "
        "made; Finish writes the same verified.csv as `plankflux ingest`.",
    )
    review.add_argument("proposal_dir", help="the proposal folder (e.g. WORKSPACE/proposals)")
    review.add_argument("--campaign", required=True, help="campaign folder")
    review.add_argument(
        "--mode", choices=REVIEW_MODES, help="round (default: minboost for a minboost folder)"
    )
    review.add_argument(
        "--out",
        help="verified table to write (default: WORKSPACE/verified.csv or "
        "WORKSPACE/minboost_verified.csv for a pipeline workspace's folder, else "
        "<proposal_dir>.verified.csv)",
    )
    review.add_argument(
        "--scores", help="scores.parquet for each member's vote (default: WORKSPACE/ood/)"
    )
    review.add_argument(
        "--host", default="127.0.0.1",
        help="interface to serve on (default 127.0.0.1, this computer only; 0.0.0.0 = all)",
    )  # fmt: skip
    review.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    review.add_argument("--page-size", type=int, default=24, help="images per page (default 24)")
    review.add_argument("--open", action="store_true", help="open the page in a web browser")
    review.add_argument(
        "--update-folder", action="store_true",
        help="move and delete the proposal copies as decided on the page, then exit",
    )  # fmt: skip
    review.set_defaults(func=run_review)


def workspace_defaults(proposal_dir: Path) -> tuple[Path | None, Path | None]:
    """``(verified table, scores)`` of a pipeline workspace's ``proposals/`` or
    ``minboost/`` folder (its parent holds ``ood/``); ``(None, None)`` elsewhere."""
    folder = Path(proposal_dir).resolve()
    ws = Workspace(folder.parent)
    if not ws.ensemble("ood").is_dir():
        return None, None
    scores = ws.ensemble("ood") / SCORES_FILE
    scores = scores if scores.is_file() else None
    if folder == ws.proposals.resolve():
        return ws.verified, scores
    if folder == ws.minboost.resolve():
        return ws.minboost_verified, scores
    return None, scores


def run_review(args: argparse.Namespace) -> int:
    from plankflux.data.campaign import load_campaign
    from plankflux.errors import PlankfluxError
    from plankflux.hitl.review import ReviewSession, read_review_scores, review_state_path
    from plankflux.review.server import ReviewServer

    if args.page_size < 1:
        raise PlankfluxError(f"--page-size must be >= 1, got {args.page_size}")
    campaign = load_campaign(args.campaign, check_images="none")
    out, scores = workspace_defaults(Path(args.proposal_dir))
    scores_path = args.scores or scores
    if args.scores and not Path(args.scores).is_file():
        raise PlankfluxError(f"score table not found: {args.scores}")
    session = ReviewSession(
        args.proposal_dir,
        campaign,
        mode=args.mode,
        out=args.out or out,
        scores=read_review_scores(scores_path, campaign.classes),
    )
    if args.update_folder:
        counts = session.apply_to_folder()
        print(
            f"updated {session.proposal_dir}: " + ", ".join(f"{k} {v}" for k, v in counts.items())
        )
        return 0
    server = ReviewServer(session, host=args.host, port=args.port, page_size=args.page_size)
    signal.signal(signal.SIGTERM, _interrupt)  # a stop by `kill` frees the lock as Ctrl+C does
    try:
        progress = session.progress()
        vanished = session.vanished()
        print(
            f"plankflux review: {session.proposal_dir} ({session.mode} round, {progress['total']} "
            f"images in {len(progress['classes'])} classes, {progress['decided']} decided)\n"
            f"  open {server.url}\n"
            f"  decisions are saved in {review_state_path(session.proposal_dir)} as you make them; "
            f"Finish writes {session.out}\n"
            f"  Ctrl+C stops the server (nothing is lost; run the same command to resume)",
            flush=True,
        )
        if session.foreign_out():
            print(
                f"plankflux review: {session.out} already exists and this review did not write "
                "it: Finish will keep it and refuse; pass --out to write elsewhere",
                file=sys.stderr,
                flush=True,
            )
        if vanished:
            print(
                f"plankflux review: {len(vanished)} proposal image(s) are no longer in the folder "
                f"(moved or deleted by hand?), e.g. {session.proposal_dir / vanished[0].file}: the "
                "page shows the campaign's original instead; the page's decisions, not the "
                "folder, make verified.csv",
                file=sys.stderr,
                flush=True,
            )
        if args.open:
            import webbrowser

            webbrowser.open(server.url)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    left = len(session.undecided())
    done = f"{session.out} written" if session.finished else f"{left} image(s) left to decide"
    print(f"plankflux review: stopped; decisions saved ({done})", flush=True)
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
