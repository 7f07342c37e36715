"""Start-up time of the ``plankflux`` command: ``--help`` and ``validate`` on a small campaign.

Each command runs as a whole new process, ``--runs`` times, against the baseline of the
same interpreter doing nothing (``python -c pass``), measured in the same run. Usage:

    .venv/bin/python experiments/benchmarks/bench_startup.py [--runs 7] [--out FILE.json]

Prints the median wall time of each command and its ratio to the baseline; writes the
figures as JSON with ``--out``. The validate arm uses the synthetic ``tiny`` campaign
(350 images, checked for existence).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plankflux.synthetic.trap import generate_trap_campaign
from plankflux.utils.atomic import atomic_open


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", help="write the figures as JSON")
    args = parser.parse_args()
    plankflux = str(Path(sys.executable).with_name("plankflux"))
    with tempfile.TemporaryDirectory() as tmp:
        campaign = generate_trap_campaign(Path(tmp) / "tiny", "tiny", seed=0)
        arms = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "plankflux --help": [plankflux, "--help"],
            "plankflux validate (350 images)": [
                plankflux,
                "validate",
                str(campaign),
                "--images",
                "exists",
            ],  # fmt: skip
        }
        figures = {name: median_seconds(cmd, args.runs) for name, cmd in arms.items()}
    baseline = figures["python -c pass"]
    for name, seconds in figures.items():
        print(f"{name:32s} {seconds:6.3f} s  ({seconds / baseline:5.1f}x the bare interpreter)")
    if args.out:
        with atomic_open(args.out) as handle:
            json.dump(
                {
                    "benchmark": "plankflux command start-up (median wall seconds)",
                    "machine": platform.platform(),
                    "runs": args.runs,
                    "seconds": figures,
                    "ratio_to_bare_python": {k: v / baseline for k, v in figures.items()},
                },
                handle,
                indent=2,
            )
            handle.write("\n")


if __name__ == "__main__":
    main()
