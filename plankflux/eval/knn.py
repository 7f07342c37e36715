"""k-NN gallery evaluation of image/profile embeddings (Paper B, docs/paper_b.md), in batched torch.

Protocol:

* **Gallery**: ``n`` labelled samples per class drawn at random from the gallery set
  (a class with fewer gives all it has), ``n ∈ {1, 2, 4, 8, 16}``, 5 draws each. One
  draw's gallery is shared by all nine setups, so setups are compared on the same
  samples; within a draw the sizes are nested (the first ``n`` of one shuffle per
  class, :func:`draw_galleries`).
* **Classifier**: cosine similarity, the ``k = 3`` nearest gallery points vote with
  weight ``1 / d``, ``d = 1 − cos``; an exact match (``d ≤ EXACT_TOL``) wins outright —
  if any of a query's neighbours is one, only exact matches vote (as scikit-learn's
  ``weights="distance"``). Vote ties go to the lowest class code. Gallery points at
  exactly the same distance at the k-th place (duplicate embeddings) are taken in
  gallery order, which :func:`evaluate_knn` and :func:`knn_predict` may see differently.
* **Setups** ``gallery->query`` with each side ``I``, ``P`` or ``I+P``: an ``I+P``
  gallery indexes the image and the profile embedding of every gallery sample together
  (``2·G`` points, both carrying its label); an ``I+P`` query takes ``k`` neighbours
  for *each* of its two embeddings and pools all ``2k`` votes.
* **Scores** per (setup, n, draw): accuracy and macro precision / recall / F1 with the
  conventions of :func:`plankflux.eval.metrics.classification_report` (a class present
  in the queries but never predicted has precision 0; classes absent from the queries
  count only in precision, and only when predicted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

SIDES: dict[str, tuple[str, ...]] = {
    "I": ("image",),
    "P": ("profile",),
    "I+P": ("image", "profile"),
}
SETUPS: tuple[str, ...] = tuple(f"{g}->{q}" for g in SIDES for q in SIDES)
N_VALUES: tuple[int, ...] = (1, 2, 4, 8, 16)
METRICS: tuple[str, ...] = ("accuracy", "macro_precision", "macro_recall", "macro_f1")
RESULT_COLUMNS: tuple[str, ...] = ("setup", "n_per_class", "draw", *METRICS)
EXACT_TOL = 1e-6  # float32 cosines of a 512-d unit vector with itself: within ~5e-7 of 1


def parse_setup(setup: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``"I+P->P"`` (or ``"I+P→P"``) → ``(("image", "profile"), ("profile",))``."""
    gallery, sep, query = setup.replace("→", "->").replace(" ", "").partition("->")
    if not sep or gallery not in SIDES or query not in SIDES:
        raise ValueError(f"setup {setup!r} is not gallery->query with sides in {list(SIDES)}")
    return SIDES[gallery], SIDES[query]


# --------------------------------------------------------------------------- galleries


def _ranked_draw(labels: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """A random order of the samples in ``labels`` ``(N,)`` and each one's rank in its class.

    Returns ``(order, rank)``, both ``(N,)`` ``int64`` on the CPU: ``order`` lists the
    samples rank-major (all classes' rank-0 samples by class code, then rank 1, ...), so
    the samples of rank ``< n`` — ``n`` random ones per class, all of a smaller class — are
    a prefix of it, and ``rank[i]`` is the rank of sample ``order[i]``.
    """
    labels = torch.as_tensor(labels).cpu()
    _, codes = torch.unique(labels, return_inverse=True)
    order = torch.argsort(torch.rand(len(codes), generator=generator))  # random permutation
    order = order[torch.argsort(codes[order], stable=True)]  # grouped by class, random inside
    counts = torch.bincount(codes)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(codes)) - starts[codes[order]]  # position within its class
    major = torch.argsort(rank, stable=True)  # rank-major, class order inside a rank
    return order[major], rank[major]


def sample_gallery(
    labels: Tensor, n_per_class: int, generator: torch.Generator | None = None
) -> Tensor:
    """Indices of ``n_per_class`` random samples of every class in ``labels`` ``(N,)``.

    A class with fewer samples gives all it has. Returns sorted ``int64`` indices on the
    CPU; the same ``generator`` state gives the same draw, and with the same state a
    larger ``n_per_class`` gives a superset (the galleries of one draw are nested).
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    order, rank = _ranked_draw(labels, generator)
    return order[rank < n_per_class].sort().values


def gallery_seed(seed: int, n_per_class: int, draw: int) -> int:
    """The generator seed that :func:`sample_gallery` is given for one gallery draw."""
    return (seed * 1_000_003 + n_per_class * 10_007 + draw) % (2**63)


#: Each draw's shuffle is seeded as earlier releases seeded its n = 16 gallery, whatever
#: sizes are asked for: a size's gallery never depends on which other sizes are asked.
SEEDING_SIZE = 16


def ranked_draws(labels: Tensor, draws: int, seed: int) -> list[tuple[Tensor, Tensor]]:
    """:func:`_ranked_draw` of every draw, seeded by :func:`gallery_seed` ``(seed,
    SEEDING_SIZE, draw)``: each draw's n = 16 gallery is the one :func:`sample_gallery`
    draws with that seed, and every other size's is a prefix (n < 16) or an extension
    (n > 16) of it, per class."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    return [
        _ranked_draw(labels, torch.Generator().manual_seed(gallery_seed(seed, SEEDING_SIZE, d)))
        for d in range(draws)
    ]


def draw_galleries(
    labels: Tensor, n_values: Sequence[int] = N_VALUES, draws: int = 5, seed: int = 0
) -> dict[tuple[int, int], Tensor]:
    """``{(n, draw): indices}`` for every gallery size and draw.

    One random order per draw (:func:`ranked_draws`): a draw's gallery of size ``n`` is
    the first ``n`` samples of every class in that order, so it contains the draw's
    smaller galleries (n = 1 ⊂ 2 ⊂ 4 ...). Draws are independent of each other.
    """
    if min(n_values) < 1:
        raise ValueError(f"gallery sizes must be >= 1, got {list(n_values)}")
    out = {}
    for draw, (order, rank) in enumerate(ranked_draws(labels, draws, seed)):
        for n in n_values:
            out[(n, draw)] = order[rank < n].sort().values
    return out


# --------------------------------------------------------------------------- voting


def _nearest(sims: Tensor, codes: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Cosines ``(..., G)`` → distances ``1 − cos`` and class codes ``(..., k)`` of the k
    nearest; ``codes`` ``(G,)`` or ``(..., G)`` broadcastable to ``sims``."""
    top, idx = sims.topk(min(k, sims.shape[-1]), dim=-1)
    return 1.0 - top, codes.expand_as(sims).gather(-1, idx)


def _vote(dist: Tensor, codes: Tensor, n_classes: int) -> Tensor:
    """Pooled neighbours ``dist, codes (..., m)`` → predicted class codes ``(...)``.

    Weight ``1/d``; if any pooled neighbour is an exact match (``d <= EXACT_TOL``) only
    exact matches vote. Padding columns carry ``d = inf`` (weight 0). Ties go to the
    lowest class code (``argmax``).
    """
    exact = dist <= EXACT_TOL
    shape = (*dist.shape[:-1], n_classes)
    if not bool(exact.any()):  # the usual case: no exact-match bookkeeping
        return dist.new_zeros(shape).scatter_add_(-1, codes, dist.reciprocal()).argmax(dim=-1)
    weight = torch.where(exact, torch.zeros_like(dist), 1.0 / dist.clamp_min(EXACT_TOL))
    votes = dist.new_zeros(shape).scatter_add_(-1, codes, weight)
    exact_votes = dist.new_zeros(shape).scatter_add_(-1, codes, exact.to(dist.dtype))
    has_exact = exact.any(dim=-1, keepdim=True)
    return torch.where(has_exact, exact_votes, votes).argmax(dim=-1)


def knn_predict(
    gallery_emb: Tensor,
    gallery_labels: Tensor,
    query_emb: Tensor | Sequence[Tensor],
    k: int = 3,
    chunk_size: int = 8192,
) -> Tensor:
    """Cosine k-NN with inverse-distance votes.

    Args:
        gallery_emb: ``(G, D)``; for an I+P gallery stack both modalities' rows
            (``(2G, D)``) and repeat the labels.
        gallery_labels: ``(G,)`` integer labels.
        query_emb: ``(Q, D)``, or a sequence of ``(Q, D)`` tensors (one per modality of
            the same queries) whose ``k`` neighbours each are pooled into one vote.
        k: neighbours per query embedding.
        chunk_size: queries per similarity block (memory: ``chunk × G`` floats).

    Returns:
        ``(Q,)`` predicted labels, values taken from ``gallery_labels``.
    """
    queries = [query_emb] if isinstance(query_emb, Tensor) else list(query_emb)
    gallery = F.normalize(gallery_emb, dim=1)
    classes, codes = torch.unique(torch.as_tensor(gallery_labels), return_inverse=True)
    codes = codes.to(gallery.device)
    preds = []
    for start in range(0, len(queries[0]), chunk_size):
        found = []
        for q in queries:  # an I+P query pools the k neighbours of each of its embeddings
            sims = F.normalize(q[start : start + chunk_size].to(gallery), dim=1) @ gallery.T
            found.append(_nearest(sims, codes, k))
        dist = torch.cat([d for d, _ in found], dim=1)
        preds.append(_vote(dist, torch.cat([c for _, c in found], dim=1), len(classes)))
    out = torch.cat(preds) if preds else torch.empty(0, dtype=torch.long, device=gallery.device)
    return classes.to(out.device)[out]


# --------------------------------------------------------------------------- scores


def macro_scores(true_codes: np.ndarray, pred_codes: np.ndarray, n_classes: int) -> list[float]:
    """``[accuracy, macro precision, macro recall, macro F1]`` from integer class codes.

    Same conventions as :func:`plankflux.eval.metrics.classification_report` (module
    docstring), computed from a bincount confusion matrix.
    """
    cm = np.bincount(true_codes * n_classes + pred_codes, minlength=n_classes**2)
    cm = cm.reshape(n_classes, n_classes).astype(float)
    tp, support, predicted = np.diag(cm), cm.sum(1), cm.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, np.where(support > 0, 0.0, np.nan))
        recall = np.where(support > 0, tp / support, np.nan)
        denom = precision + recall
        f1 = np.where(support > 0, np.where(denom > 0, 2 * precision * recall / denom, 0.0), np.nan)
    accuracy = float(tp.sum() / cm.sum()) if cm.sum() else float("nan")

    def nanmean(x: np.ndarray) -> float:
        return float(np.nanmean(x)) if (~np.isnan(x)).any() else float("nan")

    return [accuracy, nanmean(precision), nanmean(recall), nanmean(f1)]


# --------------------------------------------------------------------------- the grid


def _neighbour_lists(sims: Tensor, codes: Tensor, bounds: Sequence[int], k: int):
    """The k nearest of every (query modality, gallery modality, draw), per gallery size.

    ``sims`` ``(Mq, Qc, Mg, draws, G)`` holds cosines to each draw's largest gallery in
    rank-major order (:func:`_ranked_draw`), so the gallery of the i-th size is the prefix
    ``[:bounds[i]]`` (a view: no copy); ``codes`` ``(draws, G)`` are their classes. Yields,
    per size, cosines and class codes ``(Mq, Qc, Mg, draws, kk)``, nearest first,
    ``kk = min(k, bounds[i])``.
    """
    for end in bounds:
        # Each prefix is ranked whole: on a CPU topk of a wide row (k·64 <= width) takes a
        # partial sort that is faster than ranking a narrower segment and merging.
        top, idx = sims[..., :end].topk(min(k, end), dim=-1)
        yield top, codes[:, :end].expand(*sims.shape[:-1], end).gather(-1, idx)


def _candidates(dist: Tensor, near: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Every neighbour list a setup can need, side by side: ``(Qc, draws, P)`` each.

    ``dist``, ``near`` ``(M, Qc, M, draws, kk)``: distances and classes of the ``kk``
    nearest of each (query modality, gallery modality) pair. Columns: those lists, query
    modality major; then, with two gallery modalities, the ``min(k, 2·kk)`` nearest of
    their union for each query modality (an I+P gallery: the top k of a union is the top
    k of the union of the parts' top k); last one padding column with ``d = inf``.
    """
    n_mod, n_q, _, draws, _ = dist.shape
    parts_d = [dist.permute(1, 3, 0, 2, 4).reshape(n_q, draws, -1)]
    parts_c = [near.permute(1, 3, 0, 2, 4).reshape(n_q, draws, -1)]
    if n_mod == 2:
        both_d = dist.permute(0, 1, 3, 2, 4).reshape(n_mod, n_q, draws, -1)  # (M, Qc, draws, 2kk)
        both_c = near.permute(0, 1, 3, 2, 4).reshape(n_mod, n_q, draws, -1)
        merged_d, pick = both_d.topk(min(k, both_d.shape[-1]), dim=-1, largest=False)
        merged_c = both_c.gather(-1, pick)
        parts_d.append(merged_d.permute(1, 2, 0, 3).reshape(n_q, draws, -1))
        parts_c.append(merged_c.permute(1, 2, 0, 3).reshape(n_q, draws, -1))
    parts_d.append(dist.new_full((n_q, draws, 1), float("inf")))
    parts_c.append(near.new_zeros((n_q, draws, 1)))
    return torch.cat(parts_d, dim=-1), torch.cat(parts_c, dim=-1)


def _pool_plan(
    parsed: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]],
    needed: Sequence[str],
    kk: int,
    k: int,
    device: torch.device,
) -> Tensor:
    """``(S, width)`` columns of :func:`_candidates` that each setup pools (padded)."""
    n_mod = len(needed)
    km = min(k, n_mod * kk)  # length of a merged (I+P gallery) list
    pad = n_mod * n_mod * kk + (n_mod * km if n_mod == 2 else 0)  # the inf column
    plans = []
    for g_mods, q_mods in parsed.values():
        picked: list[int] = []
        for qm in q_mods:
            qi = needed.index(qm)
            if len(g_mods) == 1:
                first = (qi * n_mod + needed.index(g_mods[0])) * kk
                picked += range(first, first + kk)
            else:
                first = n_mod * n_mod * kk + qi * km
                picked += range(first, first + km)
        plans.append(picked)
    width = max(len(p) for p in plans)
    return torch.tensor([p + [pad] * (width - len(p)) for p in plans], device=device)


def evaluate_knn(
    gallery: Mapping[str, Tensor],
    gallery_labels: Sequence | np.ndarray | Tensor,
    query: Mapping[str, Tensor],
    query_labels: Sequence | np.ndarray | Tensor,
    setups: Sequence[str] = SETUPS,
    n_values: Sequence[int] = N_VALUES,
    draws: int = 5,
    k: int = 3,
    seed: int = 0,
    chunk_size: int = 4096,
    device: str | torch.device | None = None,
    return_predictions: bool = False,
):
    """Run the gallery protocol over ``setups × n_values × draws``.

    Args:
        gallery: ``{"image": (Ng, D), "profile": (Ng, D)}`` embeddings of the labelled
            set galleries are drawn from (modalities a setup does not use may be absent).
        gallery_labels: ``(Ng,)`` labels (ints or strings).
        query: ``{"image": (Nq, D), "profile": (Nq, D)}`` embeddings to classify.
        query_labels: ``(Nq,)`` true labels.
        setups: ``"gallery->query"`` names, default all nine (:data:`SETUPS`).
        n_values, draws, k, seed: the protocol's parameters; galleries come from
            :func:`draw_galleries` ``(gallery_labels, n_values, draws, seed)``.
        chunk_size: queries per similarity block; memory per chunk is about
            ``4·M²·chunk·draws·G`` bytes (``M`` modalities, ``G`` the largest gallery).
        device: where to compute (default: the embeddings' device).
        return_predictions: also return ``{(setup, n, draw): (Nq,) predicted labels}``.

    Returns:
        DataFrame with :data:`RESULT_COLUMNS` (one row per setup × n × draw, in that
        order), and the predictions when asked.
    """
    parsed = {s: parse_setup(s) for s in setups}
    needed = sorted({m for g, q in parsed.values() for m in (*g, *q)})
    missing = [m for m in needed if m not in gallery or m not in query]
    if missing:
        raise ValueError(f"setups {list(setups)} need {missing} embeddings in gallery and query")
    gallery_np, query_np = _as_numpy(gallery_labels), _as_numpy(query_labels)
    classes, codes = np.unique(np.concatenate([gallery_np, query_np]), return_inverse=True)
    gallery_codes, query_codes = codes[: len(gallery_np)], codes[len(gallery_np) :]
    for m in needed:
        if len(gallery[m]) != len(gallery_np) or len(query[m]) != len(query_np):
            raise ValueError(f"{m!r} embeddings and labels differ in length")
    if len(query_np) == 0 or len(gallery_np) == 0:
        raise ValueError("empty gallery or query set")
    device = torch.device(device) if device is not None else gallery[needed[0]].device
    n_classes = len(classes)
    if min(n_values) < 1:
        raise ValueError(f"gallery sizes must be >= 1, got {list(n_values)}")

    # One similarity block per query chunk against every draw's largest gallery, laid out
    # rank-major so that each smaller gallery of the draw (the same draw, fewer per class:
    # draw_galleries) is a prefix of it: no column gathers, and each similarity is ranked
    # once (_neighbour_lists). The draws have equal sizes (min(n, class count) per class)
    # and are stacked; all nine setups are read from one pool of candidate neighbours.
    # Few, large tensor ops: each op pays thread synchronisation on a busy 2-core CPU and
    # a kernel launch on a GPU.
    n_sizes = sorted(set(n_values))
    ranked = ranked_draws(torch.from_numpy(gallery_codes), draws, seed)
    bounds = [int((ranked[0][1] < n).sum()) for n in n_sizes]  # the same in every draw
    cols = torch.stack([order[: bounds[-1]] for order, _ in ranked])  # (draws, G)
    labels = torch.from_numpy(gallery_codes)[cols].to(device)
    gal = torch.cat([F.normalize(gallery[m][cols.flatten()].to(device), dim=1) for m in needed])
    plans = {
        n: _pool_plan(parsed, needed, min(k, b), k, device)
        for n, b in zip(n_sizes, bounds, strict=True)
    }
    n_mod, width = len(needed), cols.shape[1]
    preds: dict[int, list[Tensor]] = {n: [] for n in n_sizes}
    for start in range(0, len(query_np), chunk_size):
        q = torch.cat(
            [F.normalize(query[m][start : start + chunk_size].to(device), dim=1) for m in needed]
        )  # (M·Qc, D)
        sims = (q @ gal.T).view(
            n_mod, -1, n_mod, draws, width
        )  # (M query, Qc, M gallery, draws, G)
        for n, (top, near) in zip(n_sizes, _neighbour_lists(sims, labels, bounds, k), strict=True):
            dist, near = (c[..., plans[n]] for c in _candidates(1.0 - top, near, k))
            preds[n].append(_vote(dist, near, n_classes))  # (Qc, draws, S)

    rows, predictions = [], {}
    for n in dict.fromkeys(n_values):
        pred_all = torch.cat(preds[n]).cpu().numpy()  # (Nq, draws, S)
        for s_i, setup in enumerate(parsed):
            for draw in range(draws):
                pred = pred_all[:, draw, s_i]
                rows.append((setup, n, draw, *macro_scores(query_codes, pred, n_classes)))
                if return_predictions:
                    predictions[(setup, n, draw)] = classes[pred]
    order = {s: i for i, s in enumerate(setups)}
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    frame = frame.sort_values(
        ["setup", "n_per_class", "draw"], key=lambda c: c.map(order) if c.name == "setup" else c
    ).reset_index(drop=True)
    return (frame, predictions) if return_predictions else frame


def summarise_knn(
    results: pd.DataFrame, by: Sequence[str] = ("setup", "n_per_class")
) -> pd.DataFrame:
    """Mean and sample sd (ddof=1) of each metric over draws (and folds, if stacked).

    Returns one row per ``by`` group (in order of first appearance) with columns
    ``<metric>_mean``, ``<metric>_sd`` for each of :data:`METRICS`, and ``n`` (rows
    averaged).
    """
    grouped = results.groupby(list(by), sort=False)[list(METRICS)]
    mean, sd = grouped.mean(), grouped.std(ddof=1)
    out = pd.DataFrame(index=mean.index)
    for metric in METRICS:
        out[f"{metric}_mean"] = mean[metric]
        out[f"{metric}_sd"] = sd[metric]
    out["n"] = grouped.size()
    return out.reset_index()


def _as_numpy(labels) -> np.ndarray:
    if isinstance(labels, Tensor):
        return labels.cpu().numpy()
    return np.asarray(labels)
