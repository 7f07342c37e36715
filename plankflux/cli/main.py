"""``plankflux <verb>``: the one command line of plankflux.

The rule a user can guess: verbs that **train or predict** (``train``, ``predict``,
``pipeline``) are Hydra runs, configured by ``plankflux/conf`` and overrides such as
``seed=3`` or ``-m seed=0,1,2``; every other verb is a **file tool** with ordinary
``--options`` (argparse). ``plankflux --help`` lists them all; ``plankflux VERB --help``
explains one.

Each file tool lives in its own module under :mod:`plankflux.cli.tools` and exposes
``add_parser(subparsers)``, which registers a parser whose ``func`` takes the parsed
arguments and returns the exit status. Errors a user can fix (bad files, wrong
settings) are caught here, once: the message goes to stderr with exit status 1. Set
``PLANKFLUX_TRACEBACK=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from plankflux.errors import USER_ERRORS, describe

#: The Hydra verbs (functions of :mod:`plankflux.cli.hydra_tasks`, imported when run).
HYDRA_VERBS = {
    "train": "fit and test a model, or an ensemble member per seed (Hydra)",
    "predict": "score a target domain with an ensemble's checkpoints (Hydra)",
    "pipeline": "Paper A's human-in-the-loop pipeline for one target (Hydra)",
}

TOOL_MODULES = (
    "plankflux.cli.tools.synth",
    "plankflux.cli.tools.validate",
    "plankflux.cli.tools.import_campaign",
    "plankflux.cli.tools.campaign",
    "plankflux.cli.tools.stats",
    "plankflux.cli.tools.cache",
    "plankflux.cli.tools.tables",
    "plankflux.cli.tools.knn",
    "plankflux.cli.tools.flux",
    "plankflux.cli.tools.hitl",
    "plankflux.cli.tools.review",
    "plankflux.cli.tools.ecotaxa",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plankflux",
        description="plankflux: train, predict and run the papers' pipelines (Hydra "
        "verbs: overrides like seed=3, -m for sweeps), and file tools (--options).",
        epilog="The methods and every file format: docs/ in the repository.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="VERB")
    for verb, help_text in HYDRA_VERBS.items():
        # Listed for --help only: main() hands these verbs to Hydra before parsing.
        subparsers.add_parser(verb, help=help_text, add_help=False)
    for name in TOOL_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    _name_leaves(parser)
    return parser


def _name_leaves(parser: argparse.ArgumentParser) -> None:
    """Give every (sub-)parser's namespace its full name, e.g. ``plankflux tables clip``,
    for error messages (the deepest parser's default wins)."""
    parser.set_defaults(prog=parser.prog)
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        for sub in getattr(action, "choices", {}).values():
            _name_leaves(sub)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in HYDRA_VERBS:
        from plankflux.cli import hydra_tasks

        task = getattr(hydra_tasks, argv[0])
        # Hydra reads its overrides from sys.argv; DDP re-runs sys.argv[0] in each new
        # process without our verb, so point it at the verb's own script (same runs).
        script = Path(sys.argv[0]).with_name(f"plankflux-{argv[0]}")
        sys.argv = [str(script) if script.is_file() else sys.argv[0], *argv[1:]]
        task()
        return 0
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        if os.environ.get("PLANKFLUX_TRACEBACK"):
            raise
        print(f"{args.prog}: {describe(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
