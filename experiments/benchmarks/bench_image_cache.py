"""Images/s through TrapDataModule's training loader, with and without the decoded-image cache.

Both arms run in the same process on the same campaign, split, image size and
augmentation; the cached arm's one-off build time is reported separately. Usage:

    .venv/bin/python experiments/benchmarks/bench_image_cache.py \
        [--campaign DIR | --scale demo] [--size 64] [--epochs 3] [--workers 0] [--out FILE.json]

Prints one line per arm and the ratio; writes the figures as JSON with ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from plankflux.datamodules.trap import TrapDataModule
from plankflux.synthetic.trap import generate_trap_campaign
from plankflux.utils.atomic import atomic_open


def images_per_second(dm: TrapDataModule, epochs: int) -> float:
    """Iterate the training loader ``epochs`` times, touching every batch."""
    n, start = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in dm.train_dataloader():
            n += len(batch["label"])
            batch["image"].sum()  # make sure the tensor is really materialised
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", help="existing campaign (default: a fresh synthetic one)")
    parser.add_argument("--scale", default="demo", choices=("tiny", "demo", "paper"))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--resize-mode", default="resize", choices=("resize", "pad"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--out", help="write the figures to this JSON file")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_cache_"))
    try:
        root = (
            Path(args.campaign)
            if args.campaign
            else generate_trap_campaign(work / "campaign", scale=args.scale, seed=0)
        )
        common = dict(
            root=str(root),
            train_domains=["FC", "FO", "JC", "SR", "RR"],
            target_domain="RR",
            image_size=args.size,
            resize_mode=args.resize_mode,
            batch_size=args.batch_size,
            num_workers=args.workers,
        )
        plain = TrapDataModule(**common)
        plain.setup("fit")
        cached = TrapDataModule(**common, cache_dir=str(work / "cache"))
        start = time.perf_counter()
        cached.setup("fit")  # builds the cache
        build_s = time.perf_counter() - start

        images_per_second(plain, 1)  # warm the OS file cache so both arms read from memory
        without = images_per_second(plain, args.epochs)
        with_cache = images_per_second(cached, args.epochs)
        result = {
            "benchmark": "decoded-image cache, TrapDataModule train loader",
            "machine": f"{platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} torch threads",
            "campaign": str(root) if args.campaign else f"synthetic {args.scale}",
            "train_images": len(plain.splits["train"]),
            "image_size": args.size,
            "resize_mode": args.resize_mode,
            "workers": args.workers,
            "epochs": args.epochs,
            "no_cache_images_per_s": round(without, 1),
            "cache_images_per_s": round(with_cache, 1),
            "cache_build_s": round(build_s, 2),
            "speedup": round(with_cache / without, 2),
        }
        print(f"without cache: {without:9.1f} images/s")
        print(f"with cache:    {with_cache:9.1f} images/s (one-off build {build_s:.1f} s)")
        print(f"ratio:         {with_cache / without:9.2f}x")
        if args.out:
            with atomic_open(args.out) as handle:
                json.dump(result, handle, indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
