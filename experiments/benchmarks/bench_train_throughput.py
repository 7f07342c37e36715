"""Training images/s of one ResNet-18 member: input path × memory format × precision.

Every arm trains the same model on the same split with a real Lightning Trainer in
this one process; the first epoch of each arm is a warm-up and is not timed. Input
paths (``--arms``, in this order; the first is the baseline of the ratios):

* ``pil``: decode and resize with PIL in the loader, per-item tensors (no cache);
* ``cache``: the decoded-image cache, per-item conversion and augmentation;
* ``batched``: the cache with ``data.device_transforms``: uint8 batches, conversion,
  augmentation and normalisation batched on the training device;
* ``batched_cl``: the same with ``model.channels_last``;
* ``batched_cl_compile``: the same with ``model.compile`` (``torch.compile``).

Run it on the machine you care about (GPU: ``--accelerator gpu --workers 8``):

    .venv/bin/python experiments/benchmarks/bench_train_throughput.py \
        [--campaign DIR | --scale demo] [--size 224] [--epochs 3] \
        [--precision 32-true bf16-mixed] [--arms pil cache batched batched_cl]

Prints images/s per arm and ratios against the first arm; ``--out`` writes JSON with
the device, versions, batch size, precision and images/s of every arm.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import warnings
from pathlib import Path

import lightning as L
import torch
from bench_common import EpochTimer, device_name

from plankflux.datamodules.trap import TrapDataModule
from plankflux.models.classifier import ParticleClassifier
from plankflux.synthetic.trap import generate_trap_campaign
from plankflux.utils.atomic import atomic_open

ARMS = {  # name: (cache, device_transforms, channels_last, compile)
    "pil": (False, False, False, False),
    "cache": (True, False, False, False),
    "batched": (True, True, False, False),
    "batched_cl": (True, True, True, False),
    "batched_cl_compile": (True, True, True, True),
}


def run_arm(root: Path, arm: str, cache_dir: Path, precision: str, args) -> dict:
    cached, device_transforms, channels_last, compile = ARMS[arm]
    L.seed_everything(0, workers=True)
    dm = TrapDataModule(
        str(root),
        ["FC", "FO", "JC", "SR"],
        "RR",
        image_size=args.size,
        batch_size=args.batch_size,
        num_workers=args.workers,
        pin_memory=args.accelerator != "cpu",
        cache_dir=str(cache_dir) if cached else None,
        device_transforms=device_transforms,
    )
    timer = EpochTimer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ParticleClassifier(
            dm.class_names, weights="none", channels_last=channels_last, compile=compile
        )
        trainer = L.Trainer(
            max_epochs=args.epochs,
            accelerator=args.accelerator,
            devices=1,
            precision=precision,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            callbacks=[timer],
        )
        trainer.fit(model, datamodule=dm)
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    return {
        "arm": arm,
        "cache": cached,
        "device_transforms": device_transforms,
        "channels_last": channels_last,
        "compile": compile,
        "precision": precision,
        "images_per_s": round(timer.rate, 1),
        "peak_gpu_mib": round(peak) if peak else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign")
    parser.add_argument("--scale", default="demo", choices=("tiny", "demo", "paper"))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--precision", nargs="+", default=["32-true"])
    parser.add_argument("--arms", nargs="+", default=list(ARMS)[:4], choices=list(ARMS))
    parser.add_argument("--out")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    try:
        root = (
            Path(args.campaign)
            if args.campaign
            else generate_trap_campaign(work / "campaign", scale=args.scale, seed=0)
        )
        arms = []
        for precision in args.precision:
            for name in args.arms:
                arm = run_arm(root, name, work / "cache", precision, args)
                arms.append(arm)
                print(
                    f"{name:20s} precision={precision:10s} "
                    f"{arm['images_per_s']:9.1f} images/s"
                    + (f"  peak GPU {arm['peak_gpu_mib']} MiB" if arm["peak_gpu_mib"] else "")
                )
        base = arms[0]["images_per_s"]
        for arm in arms:
            arm["ratio_to_first_arm"] = round(arm["images_per_s"] / base, 2)
        print("ratios to the first arm:", [a["ratio_to_first_arm"] for a in arms])
        device = device_name(args.accelerator)
        result = {
            "benchmark": "ResNet-18 member training throughput",
            "device": device,
            "campaign": str(root) if args.campaign else f"synthetic {args.scale}",
            "image_size": args.size,
            "batch_size": args.batch_size,
            "torch": torch.__version__,
            "lightning": L.__version__,
            "workers": args.workers,
            "timed_epochs": args.epochs - 1,
            "arms": arms,
        }
        if args.out:
            with atomic_open(args.out) as handle:
                json.dump(result, handle, indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
