"""k-NN gallery grid (9 setups × 5 gallery sizes × 5 draws): batched torch vs scikit-learn.

Both arms run the protocol of docs/paper_b.md in one process on the same synthetic clustered
embeddings (L2-normalised, 512-d, image and profile per sample, long-tailed gallery set
so that some classes have fewer than 16 samples) and the same galleries
(``plankflux.eval.knn.draw_galleries``):

* torch: ``plankflux.eval.knn.evaluate_knn`` — one matrix product per query chunk
  against every draw's largest gallery (smaller sizes are prefixes of it), draws
  stacked, I+P galleries merged from per-modality top-k lists;
* scikit-learn: for every gallery and setup, ``NearestNeighbors(metric="cosine",
  algorithm="brute")`` fitted on the gallery (both modalities stacked for I+P),
  ``kneighbors`` for each query modality, the same inverse-distance / exact-match vote
  in NumPy, and the same scores.

Both arms use the same number of threads (``--threads``; scikit-learn's BLAS is limited
with threadpoolctl). Both times, their ratio and the agreement of the predictions are
printed; the run fails (exit 1) if more than ``--max-mismatch`` of the predictions
differ (float32 rounding can flip a near-tie). scikit-learn is needed only here
(``pip install scikit-learn``); without it the torch arm still runs and reports its
time, then the script exits 2.
Usage:

    .venv/bin/python experiments/benchmarks/bench_knn.py [--queries 20000] [--classes 24]
        [--dim 512] [--threads N] [--device cpu|cuda] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from plankflux.eval.knn import (
    EXACT_TOL,
    N_VALUES,
    SETUPS,
    draw_galleries,
    evaluate_knn,
    macro_scores,
    parse_setup,
)
from plankflux.utils.atomic import atomic_open

SKLEARN_MISSING = (
    "scikit-learn is not installed: `pip install scikit-learn` (or the optional extra "
    "`pip install -e .[bench]`) to run the comparison arm"
)


def make_embeddings(n: int, classes: int, dim: int, long_tail: bool, seed: int, noise: float):
    """Clustered unit vectors: ``({"image", "profile"}: (n, dim) float32, labels (n,))``.

    Class centres and per-modality class offsets come from a fixed seed (the same
    "species" in every set); ``seed`` draws the samples. A sample's image and profile
    embeddings are its class centre plus the modality's offset plus independent noise,
    so pooling I and P helps.
    """
    world = torch.Generator().manual_seed(12345)
    centres = torch.randn(classes, dim, generator=world)
    offsets = {m: torch.randn(classes, dim, generator=world) for m in ("image", "profile")}
    gen = torch.Generator().manual_seed(seed)
    if long_tail:  # counts from ~300 down to 5: the small classes give all they have
        weights = torch.logspace(0, -1.8, classes)
    else:
        weights = torch.ones(classes)
    labels = torch.multinomial(weights / weights.sum(), n, replacement=True, generator=gen)
    if long_tail:
        labels[: 5 * classes] = torch.arange(classes).repeat(5)  # every class at least 5
    emb = {
        m: F.normalize(
            centres[labels] + offsets[m][labels] + noise * torch.randn(n, dim, generator=gen),
            dim=1,
        )
        for m in ("image", "profile")
    }
    return emb, labels


def vote_numpy(dist: np.ndarray, codes: np.ndarray, n_classes: int) -> np.ndarray:
    """The protocol's vote from pooled neighbours ``(Q, m)``: 1/d, exact matches first."""
    exact = dist <= EXACT_TOL
    weight = np.where(exact, 0.0, 1.0 / np.maximum(dist, EXACT_TOL))
    rows = np.arange(len(dist))
    votes = np.zeros((len(dist), n_classes))
    exact_votes = np.zeros((len(dist), n_classes))
    for j in range(dist.shape[1]):  # one neighbour rank at a time: no repeated (row, class)
        votes[rows, codes[:, j]] += weight[:, j]
        exact_votes[rows, codes[:, j]] += exact[:, j]
    return np.where(exact.any(axis=1, keepdims=True), exact_votes, votes).argmax(axis=1)


def sklearn_grid(gallery, gallery_codes, query, query_codes, galleries, k, n_classes):
    """The same grid with scikit-learn's brute-force cosine NearestNeighbors."""
    from sklearn.neighbors import NearestNeighbors

    rows, preds = [], {}
    for (n, draw), idx in galleries.items():
        idx = idx.numpy()
        for setup in SETUPS:
            g_mods, q_mods = parse_setup(setup)
            points = np.concatenate([gallery[m][idx] for m in g_mods])
            point_codes = np.tile(gallery_codes[idx], len(g_mods))
            index = NearestNeighbors(
                n_neighbors=min(k, len(points)), metric="cosine", algorithm="brute"
            ).fit(points)
            dists, codes = [], []
            for m in q_mods:  # an I+P query pools k neighbours per modality
                d, i = index.kneighbors(query[m])
                dists.append(d)
                codes.append(point_codes[i])
            pred = vote_numpy(np.concatenate(dists, 1), np.concatenate(codes, 1), n_classes)
            preds[(setup, n, draw)] = pred
            rows.append((setup, n, draw, *macro_scores(query_codes, pred, n_classes)))
    return rows, preds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--gallery-set", type=int, default=3_000, help="labelled samples")
    parser.add_argument("--classes", type=int, default=24)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--noise", type=float, default=4.0, help="per-dimension noise sd")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        help="threads of both arms: torch's intra-op threads and scikit-learn's BLAS "
        "(threadpoolctl); default: torch's default (the machine's cores)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-mismatch", type=float, default=1e-4, help="fraction allowed")
    parser.add_argument("--out", help="write the figures to this JSON file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    shape = (args.classes, args.dim)
    gallery, g_labels = make_embeddings(args.gallery_set, *shape, True, seed=0, noise=args.noise)
    query, q_labels = make_embeddings(args.queries, *shape, False, seed=1, noise=args.noise)
    galleries = draw_galleries(g_labels, N_VALUES, args.draws, seed=0)
    small = int((torch.bincount(g_labels) < max(N_VALUES)).sum())
    print(
        f"{args.queries:,} queries, gallery set {args.gallery_set:,} ({args.classes} classes, "
        f"{small} with fewer than {max(N_VALUES)}), dim {args.dim}, "
        f"{len(SETUPS)} setups x {len(N_VALUES)} sizes x {args.draws} draws, k={args.k}"
    )

    if args.device != "cpu":  # warm up the device so the timing is the grid's
        evaluate_knn(gallery, g_labels, query, q_labels, n_values=(1,), draws=1, device=args.device)
    start = time.perf_counter()
    frame, torch_preds = evaluate_knn(
        gallery,
        g_labels,
        query,
        q_labels,
        draws=args.draws,
        k=args.k,
        seed=0,
        device=args.device,
        return_predictions=True,
    )
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    torch_s = time.perf_counter() - start
    print(
        f"torch ({args.device}, {torch.get_num_threads()} threads): {torch_s:.2f} s "
        f"for {len(frame)} grid cells"
    )
    result = {
        "queries": args.queries,
        "gallery_set": args.gallery_set,
        "classes": args.classes,
        "dim": args.dim,
        "cells": len(frame),
        "torch_device": args.device,
        "torch_threads": torch.get_num_threads(),
        "torch_s": torch_s,
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
    }

    try:
        import sklearn  # noqa: F401
    except ImportError:
        print(SKLEARN_MISSING)
        result["sklearn_s"] = None
        _write(args.out, result)
        return 2

    # scikit-learn sees the same float32 embeddings and the same integer class codes.
    g_np = {m: v.numpy() for m, v in gallery.items()}
    q_np = {m: v.numpy() for m, v in query.items()}
    classes = np.unique(np.concatenate([g_labels.numpy(), q_labels.numpy()]))
    g_codes = np.searchsorted(classes, g_labels.numpy())
    q_codes = np.searchsorted(classes, q_labels.numpy())
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    with threadpool_limits(limits=torch.get_num_threads()):  # the same threads as torch
        start = time.perf_counter()
        sk_rows, sk_preds = sklearn_grid(
            g_np, g_codes, q_np, q_codes, galleries, args.k, len(classes)
        )
        sklearn_s = time.perf_counter() - start

    total = mismatched = 0
    for key, pred in sk_preds.items():
        mine = np.searchsorted(classes, torch_preds[key])
        mismatched += int((mine != pred).sum())
        total += len(pred)
    sk_acc = {(s, n, d): acc for s, n, d, acc, *_ in sk_rows}
    acc_diff = max(
        abs(row.accuracy - sk_acc[(row.setup, row.n_per_class, row.draw)])
        for row in frame.itertuples()
    )
    print(
        f"scikit-learn NearestNeighbors (brute, cosine, {torch.get_num_threads()} threads): "
        f"{sklearn_s:.2f} s"
    )
    print(f"speed-up torch vs scikit-learn: {sklearn_s / torch_s:.1f}x")
    print(
        f"predictions differing: {mismatched:,} of {total:,} ({mismatched / total:.2e}); "
        f"max accuracy difference {acc_diff:.2e}"
    )
    result.update(
        sklearn_s=sklearn_s,
        speedup=sklearn_s / torch_s,
        predictions=total,
        mismatched=mismatched,
        max_accuracy_diff=acc_diff,
    )
    _write(args.out, result)
    if mismatched > args.max_mismatch * total:
        print(f"FAIL: more than {args.max_mismatch:.0e} of the predictions differ")
        return 1
    return 0


def _write(path: str | None, result: dict) -> None:
    if path:
        with atomic_open(path) as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    sys.exit(main())
