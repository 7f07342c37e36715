"""Framework overhead: training images/s of ``plankflux-train`` against a bare PyTorch loop.

Both arms do the same work in this one process, with the same torch thread count:

* the same model (torchvision ResNet-18, random init, a 14-class head), optimiser
  (AdamW, lr 1e-3, weight decay 1e-2), batch size, image size, number of epochs and
  seed;
* the same data: the items of one ``TrapDataModule``'s train and val splits (uint8
  images from the decoded-image cache, ``ImagePipeline`` with the random rot90/flip
  augmentations), ``num_workers=0``, shuffled training batches, the same ``drop_last``;
* per epoch: a training pass, a validation pass (loss, accuracy, per-class and macro
  precision/recall), a metrics row written to a CSV file, a ``best`` checkpoint when the
  validation loss improves and a ``last`` one every epoch (model + optimiser state) --
  what the ``model_checkpoint`` and ``last_checkpoint`` callback configs write --
  and an early-stopping check.

The plankflux arm is ``plankflux.runs.train.run(cfg)`` on a config composed by Hydra as
``plankflux-train`` composes it (its defaults: CSV logger, checkpointing, early stopping,
progress bar, ``log_every_n_steps``, plus ``--override``), with ``test=false``. Timed in
both arms is the epoch loop: from the first training batch to the end of the last
epoch's validation and checkpoint writes (for Lightning ``on_train_start`` to
``on_train_end``); process start-up, imports, data set-up and Lightning's sanity check
are not timed (``untimed_setup_seconds`` in the JSON).

After an untimed warm-up of both arms they run interleaved, ``--repeats`` times each,
in ABBA order (bare, plankflux, plankflux, bare, ...), and the medians are reported:

    .venv/bin/python experiments/benchmarks/bench_framework_overhead.py \
        [--scale demo] [--size 64] [--epochs 3] [--batch-size 64] [--repeats 4] \
        [--threads N] [--override HYDRA_OVERRIDE ...] [--out F.json]

Overhead = plankflux time / bare time - 1 (in %), both over the same images. On a
shared machine whole runs can be slowed several-fold by other processes, so it also
prints the median of per-pair ratios, the ratio of the fastest runs, the ratio of
process CPU times and of the median training-step time (the least noisy figures), and
each arm's time split into training, validation and checkpoints/rest.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import os
import platform
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision.models import resnet18

from plankflux.datamodules.trap import TrapDataModule
from plankflux.layout import CONFIG_DIR
from plankflux.synthetic.trap import generate_trap_campaign
from plankflux.utils.atomic import atomic_open

TRAIN_DOMAINS = ["FC", "FO", "JC", "SR"]
TARGET_DOMAIN = "RR"
PATIENCE = 10  # plankflux/conf/callbacks/early_stopping.yaml


class FitTimer(L.Callback):
    """Times Lightning's epoch loop (``on_train_start`` -> ``on_train_end``) and its parts:
    training passes (epoch start -> validation start) and validation passes (validation
    start -> end, metrics computed and logged; the checkpoint writes come after)."""

    last: FitTimer | None = None

    def __init__(self):
        FitTimer.last = self
        self.total = self.cpu = self.train_phase = self.val_phase = 0.0
        self.epochs = 0
        self.step_gaps: list[float] = []  # batch end -> next batch end, within an epoch
        self._t0 = self._cpu0 = self._epoch0 = self._val0 = self._last_step = 0.0

    def on_train_start(self, trainer, pl_module):
        self._t0, self._cpu0 = time.perf_counter(), time.process_time()

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch0 = self._last_step = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        now = time.perf_counter()
        self.step_gaps.append(now - self._last_step)
        self._last_step = now

    def on_validation_start(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self._val0 = time.perf_counter()
            self.train_phase += self._val0 - self._epoch0
            self.epochs += 1

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.val_phase += time.perf_counter() - self._val0

    def on_train_end(self, trainer, pl_module):
        self.total = time.perf_counter() - self._t0
        self.cpu = time.process_time() - self._cpu0


def _train_batches(n_items: int, batch: int) -> tuple[int, bool]:
    """(images per epoch, drop_last) exactly as ``TrapDataModule._loader`` does it."""
    drop_last = n_items % batch == 1
    return (n_items - 1 if drop_last else n_items), drop_last


def make_datamodule(root: Path, cache: Path, args) -> TrapDataModule:
    dm = TrapDataModule(
        str(root),
        TRAIN_DOMAINS,
        TARGET_DOMAIN,
        image_size=args.size,
        batch_size=args.batch_size,
        cache_dir=str(cache),
    )
    dm.setup("fit")
    return dm


# ------------------------------------------------------------------------- bare arm
def bare_arm(root: Path, cache: Path, out_dir: Path, args, epochs: int) -> dict:
    """A hand-written loop doing what ``plankflux-train`` does per epoch."""
    arm_start = time.perf_counter()
    torch.use_deterministic_algorithms(False)  # torch's default (a Trainer may have set it)
    L.seed_everything(args.seed, workers=True)
    dm = make_datamodule(root, cache, args)
    train_set, val_set = dm._datasets["train"], dm._datasets["val"]
    n_classes = dm.num_classes
    names = list(dm.class_names)
    _, drop_last = _train_batches(len(train_set), args.batch_size)
    train_loader = DataLoader(
        train_set, batch_size=args.batch_size, shuffle=True, drop_last=drop_last
    )
    val_loader = DataLoader(val_set, batch_size=args.batch_size, shuffle=False)
    model = resnet18(weights=None)
    model.fc = nn.Linear(model.fc.in_features, n_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    criterion = nn.CrossEntropyLoss()
    ckpt_dir = out_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    metrics_file = open(out_dir / "metrics.csv", "w", newline="")  # noqa: SIM115
    writer = None
    best = float("inf")

    train_phase = val_phase = 0.0
    bad_epochs = epochs_run = 0
    step_gaps: list[float] = []
    start, cpu_start = time.perf_counter(), time.process_time()
    for epoch in range(epochs):
        t_epoch = time.perf_counter()
        model.train()
        loss_sum, seen = torch.zeros(()), 0
        last_step = t_epoch
        for batch in train_loader:
            images, labels = batch["image"], batch["label"]
            loss = criterion(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(labels)
            seen += len(labels)
            now = time.perf_counter()
            step_gaps.append(now - last_step)
            last_step = now
        t_val = time.perf_counter()
        train_phase += t_val - t_epoch

        model.eval()
        val_loss, val_seen = torch.zeros(()), 0
        confusion = torch.zeros(n_classes * n_classes, dtype=torch.long)
        with torch.inference_mode():
            for batch in val_loader:
                images, labels = batch["image"], batch["label"]
                logits = model(images)
                val_loss += criterion(logits, labels) * len(labels)
                val_seen += len(labels)
                confusion += torch.bincount(
                    labels * n_classes + logits.argmax(-1), minlength=n_classes**2
                )
        confusion = confusion.view(n_classes, n_classes).double()  # rows: true
        tp = confusion.diag()
        precision = torch.nan_to_num(tp / confusion.sum(0))
        recall = torch.nan_to_num(tp / confusion.sum(1))
        row = {
            "epoch": epoch,
            "train/loss": float(loss_sum / seen),
            "val/loss": float(val_loss / val_seen),
            "val/acc": float(tp.sum() / confusion.sum()),
            "val/precision_macro": float(precision.mean()),
            "val/recall_macro": float(recall.mean()),
        }
        for i, name in enumerate(names):
            row[f"val/precision_{name}"] = float(precision[i])
            row[f"val/recall_{name}"] = float(recall[i])
        if writer is None:
            writer = csv.DictWriter(metrics_file, fieldnames=list(row))
            writer.writeheader()
        writer.writerow(row)
        metrics_file.flush()
        val_phase += time.perf_counter() - t_val
        epochs_run += 1
        # As the model_checkpoint and last_checkpoint callback configs do: best when the
        # validation loss improves, last after every epoch (model + optimiser state).
        state = {
            "epoch": epoch,
            "state_dict": model.state_dict(),
            "optimizer": optimizer.state_dict(),
        }
        if row["val/loss"] < best:
            best, bad_epochs = row["val/loss"], 0
            torch.save(state, ckpt_dir / "best.pt")
        else:
            bad_epochs += 1
        torch.save(state, ckpt_dir / "last.pt")
        if bad_epochs >= PATIENCE:  # early stopping, as EarlyStopping(patience=10)
            break
    end = time.perf_counter()
    total, cpu = end - start, time.process_time() - cpu_start
    metrics_file.close()
    images, _ = _train_batches(len(train_set), args.batch_size)
    return {
        "seconds": total,
        "cpu_seconds": cpu,
        "train_seconds": train_phase,
        "val_seconds": val_phase,
        "step_seconds": statistics.median(step_gaps),
        "untimed_setup_seconds": start - arm_start,
        "images": images * epochs_run,
    }


# -------------------------------------------------------------------- plankflux arm
def plankflux_arm(root: Path, cache: Path, out_dir: Path, args, epochs: int) -> dict:
    """``plankflux.runs.train.run`` on the config ``plankflux-train`` would compose."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from plankflux.runs.train import run

    overrides = [
        f"data=synthetic_{args.scale}",
        f"data.root={root}",
        "data.synthesize=null",
        f"data.image_size={args.size}",
        f"data.batch_size={args.batch_size}",
        f"data.cache_dir={cache}",
        "model.weights=none",
        f"trainer.max_epochs={epochs}",
        f"seed={args.seed}",
        "test=false",
        f"paths.output_dir={out_dir}",
        f"paths.data_dir={out_dir / 'data'}",
        f"paths.log_dir={out_dir / 'logs'}",
        f"+callbacks.bench_timer._target_={__name__}.FitTimer",
        *args.override,
    ]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):  # what @hydra.main hands the task function
            del cfg["hydra"]
        FitTimer.last = None
        arm_start = time.perf_counter()
        summary = run(cfg)
        arm_seconds = time.perf_counter() - arm_start
    GlobalHydra.instance().clear()
    timer = FitTimer.last
    if timer is None or timer.epochs != epochs:
        raise RuntimeError(f"plankflux arm ran {timer and timer.epochs} epochs, not {epochs}")
    if summary.get("epochs_trained") != epochs:
        raise RuntimeError(f"plankflux arm stopped early: {summary}")
    images, _ = _train_batches(args.n_train, args.batch_size)
    return {
        "seconds": timer.total,
        "cpu_seconds": timer.cpu,
        "train_seconds": timer.train_phase,
        "val_seconds": timer.val_phase,
        "step_seconds": statistics.median(timer.step_gaps),
        # run(cfg) outside the epoch loop: set-up, sanity check, metrics.json
        "untimed_setup_seconds": arm_seconds - timer.total,
        "images": images * epochs,
    }


# ----------------------------------------------------------------------------- main
@contextlib.contextmanager
def quiet():
    """Silence warnings (random-init ResNet, Lightning tips) and INFO logging."""
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logging.disable(previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="demo", choices=("tiny", "demo"))
    parser.add_argument("--campaign", help="an existing campaign folder instead of --scale")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=4, help="timed runs of each arm")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--override", nargs="*", default=[], help="extra Hydra overrides, plankflux arm only"
    )
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    os.environ.setdefault("WANDB_MODE", "offline")
    work = Path(tempfile.mkdtemp(prefix="bench_overhead_"))
    try:
        if args.campaign:
            root = Path(args.campaign)
        else:
            root = generate_trap_campaign(work / "campaign", scale=args.scale, seed=0)
        cache = work / "cache"
        with quiet():
            dm = make_datamodule(root, cache, args)  # builds the decoded-image cache once
            n_train = args.n_train = len(dm.splits["train"])
            n_val = len(dm.splits["val"])
            print(
                f"{n_train} train / {n_val} val images, {args.size} px, batch {args.batch_size}, "
                f"{args.epochs} epochs, {torch.get_num_threads()} torch threads"
            )
            # Untimed warm-up of both code paths (allocator, page cache, lazy imports).
            bare_arm(root, cache, work / "warmup_bare", args, 1)
            plankflux_arm(root, cache, work / "warmup_plankflux", args, 1)

        runs: dict[str, list[dict]] = {"bare": [], "plankflux": []}
        load_before = os.getloadavg()[0]
        arms = (("bare", bare_arm), ("plankflux", plankflux_arm))
        for rep in range(args.repeats):
            # ABBA order, so that a drift in machine load favours neither arm.
            for name, arm in arms if rep % 2 == 0 else arms[::-1]:
                out_dir = work / f"{name}_{rep}"
                with quiet():
                    result = arm(root, cache, out_dir, args, args.epochs)
                shutil.rmtree(out_dir, ignore_errors=True)
                result["images_per_s"] = result["images"] / result["seconds"]
                result["load_avg_1min"] = os.getloadavg()[0]
                runs[name].append(result)
                rest = result["seconds"] - result["train_seconds"] - result["val_seconds"]
                print(
                    f"  {name:9s} run {rep}: {result['images_per_s']:7.1f} images/s "
                    f"(epoch loop {result['seconds']:.2f} s = training "
                    f"{result['train_seconds']:.2f} + validation {result['val_seconds']:.2f} "
                    f"+ checkpoints/rest {rest:.2f}; median step "
                    f"{1000 * result['step_seconds']:.0f} ms; load {result['load_avg_1min']:.1f})",
                    flush=True,
                )

        def median(name: str, key: str) -> float:
            return statistics.median(r[key] for r in runs[name])

        def min_of(name: str, key: str) -> float:
            return min(r[key] for r in runs[name])

        def overhead(key: str) -> float:
            return 100 * (median("plankflux", key) / median("bare", key) - 1)

        images = runs["bare"][0]["images"]
        bare_ips = images / median("bare", "seconds")
        fw_ips = images / median("plankflux", "seconds")
        # Each plankflux run against the bare run next to it (similar machine load).
        paired = statistics.median(
            100 * (f["seconds"] / b["seconds"] - 1)
            for b, f in zip(runs["bare"], runs["plankflux"], strict=True)
        )
        rest = {
            name: statistics.median(
                r["seconds"] - r["train_seconds"] - r["val_seconds"] for r in rs
            )
            for name, rs in runs.items()
        }
        summary = {
            "bare_images_per_s": round(bare_ips, 1),
            "plankflux_images_per_s": round(fw_ips, 1),
            "overhead_pct": round(overhead("seconds"), 1),
            "paired_overhead_pct": round(paired, 1),
            "best_of_overhead_pct": round(
                100 * (min_of("plankflux", "seconds") / min_of("bare", "seconds") - 1), 1
            ),
            "cpu_time_overhead_pct": round(overhead("cpu_seconds"), 1),
            "median_step_overhead_pct": round(overhead("step_seconds"), 1),
            "phase_seconds_median": {
                name: {
                    "training": round(median(name, "train_seconds"), 3),
                    "validation": round(median(name, "val_seconds"), 3),
                    "checkpoints_and_rest": round(rest[name], 3),
                }
                for name in runs
            },
            "load_avg_1min": [round(load_before, 2)]
            + [
                round(r["load_avg_1min"], 2)
                for b, f in zip(*runs.values(), strict=True)
                for r in (b, f)
            ],
        }
        print()
        print(
            f"{n_train} train / {n_val} val images, {args.size} px, batch {args.batch_size}, "
            f"{args.epochs} epochs x {args.repeats} runs per arm, "
            f"{torch.get_num_threads()} torch threads"
        )
        print(f"bare PyTorch loop : {bare_ips:7.1f} images/s (median)")
        print(f"plankflux-train   : {fw_ips:7.1f} images/s (median)")
        print(
            f"overhead          : {overhead('seconds'):+.1f} % "
            f"(median of paired runs {paired:+.1f} %, fastest runs "
            f"{summary['best_of_overhead_pct']:+.1f} %, process CPU time "
            f"{overhead('cpu_seconds'):+.1f} %, median training step "
            f"{overhead('step_seconds'):+.1f} %)"
        )
        for name in runs:
            ph = summary["phase_seconds_median"][name]
            print(
                f"  {name:9s} median s: training {ph['training']:.2f}, validation "
                f"{ph['validation']:.2f}, checkpoints and rest {ph['checkpoints_and_rest']:.2f}"
            )
        result = {
            "benchmark": "plankflux-train overhead over a bare PyTorch loop",
            "device": f"CPU {platform.machine()}, {torch.get_num_threads()} torch threads",
            "cpu_count": os.cpu_count(),
            "campaign": str(root) if args.campaign else f"synthetic {args.scale}",
            "image_size": args.size,
            "batch_size": args.batch_size,
            "epochs": args.epochs,
            "repeats": args.repeats,
            "train_images": n_train,
            "val_images": n_val,
            "overrides": args.override,
            **summary,
            "runs": {
                name: [{k: round(v, 3) for k, v in r.items()} for r in rs]
                for name, rs in runs.items()
            },
        }
        if args.out:
            with atomic_open(args.out) as handle:
                json.dump(result, handle, indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
