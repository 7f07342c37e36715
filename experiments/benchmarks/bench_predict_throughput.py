"""Ensemble prediction member-images/s: today's per-item input path vs uint8 batches.

Five random-init ResNet-18 members are saved as plankflux member checkpoints and
loaded by ``EnsemblePredictor`` (one decode per batch, every member's forward on it),
then every arm predicts the target domain of the same campaign with a real Lightning
Trainer in this one process. Arms (the first is the baseline of the ratios):

* ``cache``: the decoded-image cache, per-item tensor conversion in the loader;
* ``batched``: the cache with ``data.device_transforms`` (uint8 batches, conversion and
  normalisation batched on the device);
* ``batched_cl``: the same with the members in channels-last order.

Each arm predicts once untimed (warm-up), then ``--repeats`` times timed, the scores
gathered on the CPU as the score writer does. Usage:

    .venv/bin/python experiments/benchmarks/bench_predict_throughput.py \\
        [--campaign DIR | --scale demo] [--size 224] [--members 5] [--batch-size 512] \\
        [--precision 32-true bf16-mixed] [--accelerator gpu] [--workers 8] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from bench_common import device_name

from plankflux.datamodules.trap import TrapDataModule
from plankflux.models.classifier import ParticleClassifier
from plankflux.models.ensemble import EnsemblePredictor
from plankflux.synthetic.trap import generate_trap_campaign
from plankflux.utils.atomic import atomic_open

ARMS = {"cache": (False, False), "batched": (True, False), "batched_cl": (True, True)}


def save_members(folder: Path, class_names, size: int, n: int) -> list[Path]:
    """``n`` random-init members written as plankflux member checkpoints."""
    paths = []
    for i in range(n):
        torch.manual_seed(i)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            member = ParticleClassifier(class_names, weights="none", image_size=size)
        path = folder / f"member{i}" / "best.ckpt"
        path.parent.mkdir(parents=True)
        checkpoint = {"state_dict": member.state_dict(), "hyper_parameters": dict(member.hparams)}
        torch.save(checkpoint, path)
        paths.append(path)
    return paths


def run_arm(root: Path, members: list[Path], arm: str, precision: str, args, cache: Path):
    device_transforms, channels_last = ARMS[arm]
    dm = TrapDataModule(
        str(root),
        ["RR"],
        "RR",
        image_size=args.size,
        batch_size=args.batch_size,
        num_workers=args.workers,
        pin_memory=args.accelerator != "cpu",
        cache_dir=str(cache),
        device_transforms=device_transforms,
    )
    model = EnsemblePredictor(members, channels_last=channels_last)
    trainer = L.Trainer(
        accelerator=args.accelerator,
        devices=1,
        precision=precision,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    seconds, images = [], 0
    for repeat in range(args.repeats + 1):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        outputs = trainer.predict(model, datamodule=dm, return_predictions=True)
        probs = torch.cat([o["probs"] for o in outputs], dim=-2).float().cpu()
        if repeat:  # the first pass warms up (cuDNN autotuning, page cache)
            seconds.append(time.perf_counter() - start)
            images += probs.shape[1]
    rate = images / sum(seconds)
    return {
        "arm": arm,
        "device_transforms": device_transforms,
        "channels_last": channels_last,
        "precision": precision,
        "images_per_s": round(rate, 1),
        "member_images_per_s": round(rate * len(members), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign")
    parser.add_argument("--scale", default="demo", choices=("tiny", "demo", "paper"))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--precision", nargs="+", default=["32-true"])
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--out")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_predict_"))
    try:
        root = (
            Path(args.campaign)
            if args.campaign
            else generate_trap_campaign(work / "campaign", scale=args.scale, seed=0)
        )
        classes = TrapDataModule(str(root), ["RR"], "RR").class_names
        members = save_members(work / "members", classes, args.size, args.members)
        arms = []
        for precision in args.precision:
            for name in args.arms:
                arm = run_arm(root, members, name, precision, args, work / "cache")
                arms.append(arm)
                print(
                    f"{name:12s} precision={precision:10s} {arm['images_per_s']:9.1f} images/s"
                    f" = {arm['member_images_per_s']:9.1f} member-images/s"
                )
        base = arms[0]["images_per_s"]
        for arm in arms:
            arm["ratio_to_first_arm"] = round(arm["images_per_s"] / base, 2)
        print("ratios to the first arm:", [a["ratio_to_first_arm"] for a in arms])
        device = device_name(args.accelerator)
        result = {
            "benchmark": f"ensemble prediction ({args.members} ResNet-18 members)",
            "device": device,
            "torch": torch.__version__,
            "lightning": L.__version__,
            "campaign": str(root) if args.campaign else f"synthetic {args.scale}",
            "image_size": args.size,
            "batch_size": args.batch_size,
            "workers": args.workers,
            "repeats": args.repeats,
            "arms": arms,
        }
        if args.out:
            with atomic_open(args.out) as handle:
                json.dump(result, handle, indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
