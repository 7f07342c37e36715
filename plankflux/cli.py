"""``plankflux``: the plain command line for file-level tools.

Each sub-command lives in its own module under ``plankflux.commands`` and exposes
``add_parser(subparsers)``, which registers an ``argparse`` parser whose ``func``
default takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES = (
    "plankflux.commands.synth",
    "plankflux.commands.validate",
    "plankflux.commands.import_campaign",
    "plankflux.commands.stats",
    "plankflux.commands.tables",
    "plankflux.commands.knn",
    "plankflux.commands.flux",
    "plankflux.commands.hitl",
    "plankflux.commands.ecotaxa",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plankflux",
        description="File-level tools of plankflux (training runs through plankflux-train).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
