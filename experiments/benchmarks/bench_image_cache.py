"""Model-ready training images/s from TrapDataModule: PIL decoding, the cache, uint8 batches.

Three arms run in the same process on the same campaign, split, image size and
augmentation, each ending in the augmented ``(B, 3, S, S)`` float batch a training step
consumes:

* ``no_cache``: decode and resize every image with PIL, per-item tensor conversion and
  augmentation in the loader (``cache_dir=None``);
* ``cache``: the decoded-image cache, per-item conversion and augmentation;
* ``cache_batched``: the cache with ``device_transforms=True``: one memmap indexing per
  batch, then conversion and augmentation of the whole uint8 batch on ``--device``
  (``cpu`` here, ``cuda`` on a GPU host: what a training step then does);
* ``cache_batched_loader``: the same loader alone, its uint8 batches not transformed:
  what the CPU must deliver when the transform runs on a GPU.

The cached arms' one-off build time is reported separately. Usage:

    .venv/bin/python experiments/benchmarks/bench_image_cache.py \
        [--campaign DIR | --scale demo] [--size 64] [--epochs 1] [--repeats 5] [--workers 0] \
        [--device cpu|cuda] [--out FILE.json]

Prints one line per arm and the ratios to ``no_cache``; writes JSON with ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from plankflux.datamodules.trap import TrapDataModule
from plankflux.synthetic.trap import generate_trap_campaign
from plankflux.utils.atomic import atomic_open


def images_per_second(
    dm: TrapDataModule, epochs: int, device: torch.device, transform: bool = True
) -> float:
    """Iterate the training loader ``epochs`` times, each batch moved to ``device`` and,
    with ``transform``, made model-ready there (augmented; the batched path transforms
    on the device, the per-item path already did in the loader)."""
    n, start = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in dm.train_dataloader():
            images = batch["image"].to(device, non_blocking=True)
            if transform and dm.batch_transform is not None:
                images = dm.batch_transform(images, train=True)
            n += len(batch["label"])
            # Eager tensors are complete when returned; CUDA work is awaited below. (No
            # touching sum: summing 19 MB of uint8 costs more than fetching it.)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", help="existing campaign (default: a fresh synthetic one)")
    parser.add_argument("--scale", default="demo", choices=("tiny", "demo", "paper"))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--resize-mode", default="resize", choices=("resize", "pad"))
    parser.add_argument("--epochs", type=int, default=1, help="epochs per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per arm (median)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="where batches are made model-ready")
    parser.add_argument(
        "--threads", type=int, help="torch threads (default: torch's); 1 on a loaded machine"
    )
    parser.add_argument("--out", help="write the figures to this JSON file")
    args = parser.parse_args()

    if args.threads:
        # On a machine shared with other jobs, a multi-threaded op waits for its
        # descheduled threads: one scheduler time slice per op, whatever the arm.
        torch.set_num_threads(args.threads)
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
        device = torch.device(args.device)
        arms = {
            "no_cache": {},
            "cache": {"cache_dir": str(work / "cache")},
            "cache_batched": {"cache_dir": str(work / "cache"), "device_transforms": True},
        }
        modules, build_s = {}, None
        for name, extra in arms.items():
            modules[name] = TrapDataModule(**common, **extra)
            start = time.perf_counter()
            modules[name].setup("fit")  # the first cached arm builds the cache
            if name == "cache":
                build_s = time.perf_counter() - start
        # Warm the OS file cache so every arm reads from memory.
        images_per_second(modules["no_cache"], 1, device)
        # Arms interleaved, each timed --repeats times, medians kept: a machine whose
        # load changes during the run then biases no arm.
        timings = {name: [] for name in modules}
        timings["cache_batched_loader"] = []
        for _ in range(args.repeats):
            for name, dm in modules.items():
                timings[name].append(images_per_second(dm, args.epochs, device))
            loader_only = images_per_second(modules["cache_batched"], args.epochs, device, False)
            timings["cache_batched_loader"].append(loader_only)
        rates = {name: float(np.median(values)) for name, values in timings.items()}
        base = rates["no_cache"]
        result = {
            "benchmark": "model-ready training batches from TrapDataModule",
            "machine": f"{platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} torch threads",
            "device": str(device),
            "campaign": str(root) if args.campaign else f"synthetic {args.scale}",
            "train_images": len(modules["no_cache"].splits["train"]),
            "image_size": args.size,
            "resize_mode": args.resize_mode,
            "batch_size": args.batch_size,
            "workers": args.workers,
            "epochs": args.epochs,
            "repeats": args.repeats,
            "all_images_per_s": {k: [round(v, 1) for v in vs] for k, vs in timings.items()},
            "torch": torch.__version__,
            "images_per_s": {name: round(rate, 1) for name, rate in rates.items()},
            "ratio_to_no_cache": {name: round(rate / base, 2) for name, rate in rates.items()},
            "cache_build_s": round(build_s, 2),
        }
        for name, rate in rates.items():
            print(f"{name:20s} {rate:9.1f} images/s  {rate / base:6.2f}x")
        print(f"(one-off cache build {build_s:.1f} s)")
        if args.out:
            with atomic_open(args.out) as handle:
                json.dump(result, handle, indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
