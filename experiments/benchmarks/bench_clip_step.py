"""Paper B's CLIP pre-training: image–profile pairs per second through a real training run.

Composes ``plankflux train experiment=clip_lab`` (EfficientNet-B0 image tower, CNN
profile tower, InfoNCE; or ``--experiment dino_lab``, the DINO baseline with its 2 + 6
multi-crop views, scaled with ``--size``) on a synthetic LAB-like data set, then trains
it with a real Lightning Trainer in this process, without validation, checkpoints or
loggers; the first epoch is a warm-up and is not timed. Arms, all measured in this same
run (the first is the baseline of the ratios): each ``--paths`` × ``--workers``, where
``item`` is the per-pair path (decode each PNG, parse each profile CSV, augment, all in
the loader) and ``batched`` is ``data.device_transforms=true`` (the loader decodes and
resizes; the random augmentation, or DINO's views, run on whole batches on the device)
and ``cached`` adds the decoded pair cache (``data.cache_dir``: no file read after the
first epoch). Usage:

    .venv/bin/python experiments/benchmarks/bench_clip_step.py [--scale demo|paper]
        [--size 224] [--batch-size 512] [--epochs 3] [--workers 0 8] [--paths item batched cached]
        [--experiment clip_lab|dino_lab] [--precision bf16-mixed] [--accelerator gpu]
        [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import hydra
import lightning as L
import torch
from bench_common import EpochTimer, device_name
from hydra import compose, initialize_config_dir

from plankflux.layout import CONFIG_DIR
from plankflux.utils.atomic import atomic_open

PATHS = ("item", "batched", "cached")


def run_arm(args, path: str, workers: int, data_dir: Path) -> dict:
    overrides = [
        f"experiment={args.experiment}",
        f"data=synthetic_lab_{args.scale}",
        f"paths.data_dir={data_dir}",
        f"data.image_size={args.size}",
        f"data.image_pad_size={round(args.size * 236 / 224)}",
        f"data.batch_size={args.batch_size}",
        f"data.num_workers={workers}",
        f"data.pin_memory={args.accelerator != 'cpu'}",
        f"data.device_transforms={path != 'item'}",
        f"data.cache_dir={data_dir / 'cache' if path == 'cached' else 'null'}",
        "model.image_tower.pretrained=false",  # speed does not depend on the start
    ]
    if args.experiment == "dino_lab":  # DINO's views at its ratio 224 : 96
        overrides += [
            f"data.multicrop.global_size={args.size}",
            f"data.multicrop.local_size={round(args.size * 96 / 224)}",
        ]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    L.seed_everything(0, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    model = hydra.utils.instantiate(
        cfg.model, class_names=list(datamodule.class_names), _convert_="all"
    )
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator=args.accelerator,
        devices=1,
        precision=args.precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[timer],
    )
    trainer.fit(model, datamodule=datamodule)
    return {
        "path": path,
        "workers": workers,
        "image_tower": cfg.model.image_tower.name,
        "pairs_per_s": round(timer.rate, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="demo", choices=("tiny", "demo", "paper"))
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0])
    parser.add_argument("--paths", nargs="+", default=["item", "batched", "cached"], choices=PATHS)
    parser.add_argument("--experiment", default="clip_lab", choices=("clip_lab", "dino_lab"))
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--out")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="bench_clip_"))
    arms = [run_arm(args, p, w, data_dir) for p in args.paths for w in args.workers]
    for arm in arms:
        arm["ratio_to_first_arm"] = round(arm["pairs_per_s"] / arms[0]["pairs_per_s"], 2)
        print(f"{arm['path']:8s} workers={arm['workers']:<3d} {arm['pairs_per_s']:9.1f} pairs/s")
    device = device_name(args.accelerator)
    result = {
        "benchmark": f"{args.experiment} training step (Paper B): per-pair vs batched augmentation",
        "experiment": args.experiment,
        "device": device,
        "torch": torch.__version__,
        "lightning": L.__version__,
        "data": f"synthetic LAB {args.scale}",
        "image_size": args.size,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "timed_epochs": args.epochs - 1,
        "arms": arms,
    }
    if args.out:
        with atomic_open(args.out) as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
