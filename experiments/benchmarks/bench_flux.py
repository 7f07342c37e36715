"""Flux tables for 1,000,000 particles × 5 members: vectorised vs a per-row Python loop.

Both arms run in one process on the same synthetic campaign frames (no images):
``plankflux.flux.flux_tables`` (NumPy masks and ``bincount``) against a
straightforward loop that computes each prediction row's carbon with ``math`` and
adds it to a dict keyed by (treatment, member, sample, group). If a timed probe says
the loop would take more than ``--loop-budget`` seconds, it runs on a leading
subsample of rows and its time is extrapolated linearly (the output says so). The
loop's sums are checked against the vectorised table on the rows it ran. The vectorised
figure is the median of ``--repeats`` calls after a first one, whose time (with the
one-time costs of a fresh process) is printed too. Usage:

    .venv/bin/python experiments/benchmarks/bench_flux.py [--particles 1000000]
        [--members 5] [--samples 1000] [--repeats 5] [--loop-budget 120] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time

import numpy as np
import pandas as pd

from plankflux.data.classes import FLUX_GROUP, TRAP_CLASSES
from plankflux.flux import TABLE1, flux_by_sample, flux_tables
from plankflux.utils.atomic import atomic_open


def make_frames(n: int, n_samples: int, members: int, seed: int = 0):
    """Particles, samples and a one-treatment predictions table (n × members rows)."""
    rng = np.random.default_rng(seed)
    prior = np.array([46, 9, 8, 10, 0.4, 1.2, 1.5, 2.5, 2.5, 4, 3, 3, 3, 6])
    truth = rng.choice(len(TRAP_CLASSES), n, p=prior / prior.sum())
    ids = np.char.add("p", np.arange(n).astype(str)).astype(object)
    sample_ids = np.char.add("S", np.arange(n_samples).astype(str)).astype(object)
    particles = pd.DataFrame(
        {
            "particle_id": ids,
            "domain": "RR",
            "sample_id": sample_ids[rng.integers(0, n_samples, n)],
            "esd_um": rng.lognormal(np.log(150), 0.5, n),
            "label": "",
        }
    )
    samples = pd.DataFrame(
        {
            "sample_id": sample_ids,
            "domain": "RR",
            "depth_m": rng.choice([100.0, 200.0, 300.0], n_samples),
            "imaged_area_m2": rng.uniform(1e-4, 5e-4, n_samples),
            "deployment_days": rng.uniform(1, 5, n_samples),
        }
    )
    names = np.asarray(TRAP_CLASSES, dtype=object)
    labels = []
    for _ in range(members):  # each member relabels ~15 % of particles at random
        lab = truth.copy()
        flip = rng.random(n) < 0.15
        lab[flip] = rng.integers(0, len(TRAP_CLASSES), int(flip.sum()))
        labels.append(names[lab])
    predictions = pd.DataFrame(
        {
            "particle_id": np.tile(ids, members),
            "treatment": "model",
            "member": np.repeat(np.arange(members), n),
            "label": np.concatenate(labels),
        }
    )
    return particles, samples, predictions


def loop_lookups(particles, samples) -> tuple[dict, dict, dict]:
    """Per-particle ESD and sample, per-sample area × days: the loop's dicts."""
    esd_of = dict(zip(particles["particle_id"], particles["esd_um"], strict=True))
    sample_of = dict(zip(particles["particle_id"], particles["sample_id"], strict=True))
    denom = {
        s: a * d
        for s, a, d in zip(
            samples["sample_id"], samples["imaged_area_m2"], samples["deployment_days"], strict=True
        )
    }
    return esd_of, sample_of, denom


def loop_flux(lookups, predictions, n_rows: int) -> dict:
    """The straightforward way: one Python iteration per prediction row."""
    esd_of, sample_of, denom = lookups
    params = {g: (shape, a, b) for g, shape, a, b in TABLE1.rows}
    sums: dict = {}
    rows = predictions.iloc[:n_rows]
    for pid, treatment, member, label in zip(
        rows["particle_id"], rows["treatment"], rows["member"], rows["label"], strict=True
    ):
        group = FLUX_GROUP[label]
        if group is None:
            continue
        shape, a, b = params[group]
        e = esd_of[pid]
        if shape == "sphere":
            v = 4 / 3 * math.pi * (e / 2) ** 3
        elif shape == "cylinder":
            w = 264 * e / (e + 584)
            v = math.pi / w * (e / 2) ** 2 * math.pi * (w / 2) ** 2
        elif shape == "ellipsoid":
            w = 0.54 * e
            v = 4 / 3 * (e**2 / w / 2) * math.pi * (w / 2) ** 2
        else:
            w = 0.63 * e
            v = math.pi / w * (e / 2) ** 2 * w * w / 4
        s = sample_of[pid]
        flux = a * v**b / 12.011 / denom[s]
        for key in ((treatment, member, s, group), (treatment, member, s, "total")):
            sums[key] = sums.get(key, 0.0) + flux
    return sums


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--loop-budget", type=float, default=120.0, help="seconds")
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed calls after the first (median reported)"
    )
    parser.add_argument("--out", help="write the figures to this JSON file")
    args = parser.parse_args()

    particles, samples, predictions = make_frames(args.particles, args.samples, args.members)
    n_rows = len(predictions)

    # The first call also pays one-time costs (lazy imports, Arrow kernels): it is
    # reported apart; the figure is the median of the calls after it, as a user's
    # second table in a session (or timeit) would see it.
    times = []
    for _ in range(1 + max(args.repeats, 0)):
        start = time.perf_counter()
        by_sample, summary = flux_tables((particles, samples), predictions)
        times.append(time.perf_counter() - start)
    first_call_s = times[0]
    vectorised_s = float(np.median(times[1:])) if len(times) > 1 else first_call_s

    start = time.perf_counter()
    lookups = loop_lookups(particles, samples)
    setup_s = time.perf_counter() - start
    probe = min(n_rows, 100_000)
    start = time.perf_counter()
    sums = loop_flux(lookups, predictions, probe)
    probe_s = time.perf_counter() - start
    loop_rows, loop_measured_s = probe, probe_s
    if setup_s + probe_s * n_rows / probe <= args.loop_budget and probe < n_rows:
        start = time.perf_counter()
        sums = loop_flux(lookups, predictions, n_rows)
        loop_rows, loop_measured_s = n_rows, time.perf_counter() - start
    loop_s = setup_s + loop_measured_s * n_rows / loop_rows
    extrapolated = loop_rows < n_rows

    # Check: the loop's sums equal the vectorised table on the rows the loop saw.
    check = flux_by_sample((particles, samples), predictions.iloc[:loop_rows])
    check = check.set_index(["treatment", "member", "sample_id", "class_group"])
    keys = list(sums)
    got = check.loc[keys, "flux_mmol_m2_d"].to_numpy()
    max_rel = float(np.max(np.abs(got - np.array([sums[k] for k in keys])) / got))
    assert max_rel < 1e-9, f"loop and vectorised disagree (max relative error {max_rel:.2e})"

    note = (
        f" (extrapolated from {loop_rows:,} of {n_rows:,} rows: {loop_measured_s:.1f} s, "
        f"plus {setup_s:.1f} s building its dicts)"
        if extrapolated
        else ""
    )
    print(f"rows: {n_rows:,} ({args.particles:,} particles x {args.members} members)")
    print(
        f"vectorised flux_tables: {vectorised_s:.2f} s (flux_by_sample + flux_summary; median "
        f"of {len(times) - 1} calls after the first, which took {first_call_s:.2f} s)"
    )
    print(f"per-row Python loop:    {loop_s:.1f} s{note}; sums only, no summary")
    print(f"speed-up: {loop_s / vectorised_s:.0f}x; loop vs vectorised max rel diff {max_rel:.1e}")
    if args.out:
        result = {
            "particles": args.particles,
            "members": args.members,
            "samples": args.samples,
            "rows": n_rows,
            "vectorised_s": vectorised_s,
            "vectorised_first_call_s": first_call_s,
            "vectorised_repeats": len(times) - 1,
            "loop_s": loop_s,
            "loop_setup_s": setup_s,
            "loop_rows_timed": loop_rows,
            "loop_extrapolated": extrapolated,
            "speedup": loop_s / vectorised_s,
            "output_rows": len(by_sample),
            "summary_rows": len(summary),
            "python": platform.python_version(),
            "machine": platform.processor() or platform.machine(),
        }
        with atomic_open(args.out) as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
