"""k-NN gallery protocol on constructed embeddings."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from plankflux.eval.knn import (
    RESULT_COLUMNS,
    SETUPS,
    draw_galleries,
    evaluate_knn,
    gallery_seed,
    knn_predict,
    macro_scores,
    parse_setup,
    sample_gallery,
    summarise_knn,
)
from plankflux.eval.metrics import classification_report


def _at(*degrees: float) -> torch.Tensor:
    """Unit vectors in the plane at the given angles: ``(len, 2)``."""
    rad = torch.tensor(degrees, dtype=torch.float64) * math.pi / 180
    return torch.stack([rad.cos(), rad.sin()], dim=1)


def _clusters(n_per_class: list[int], dim: int = 16, noise: float = 0.3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(len(n_per_class), dim, generator=gen)
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(n_per_class)])
    image = centers[labels] + noise * torch.randn(len(labels), dim, generator=gen)
    profile = centers[labels] + noise * torch.randn(len(labels), dim, generator=gen)
    return {"image": image, "profile": profile}, labels


# --------------------------------------------------------------------------- galleries


def test_sample_gallery_takes_n_per_class_and_all_of_a_small_class():
    labels = torch.tensor([0] * 10 + [1] * 2 + [2] * 5)
    idx = sample_gallery(labels, 4, torch.Generator().manual_seed(0))
    counts = torch.bincount(labels[idx], minlength=3).tolist()
    assert counts == [4, 2, 4]  # class 1 has only 2: it gives both
    assert torch.equal(idx, idx.unique())  # sorted, no repeats
    again = sample_gallery(labels, 4, torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)
    draws = {
        tuple(sample_gallery(labels, 4, torch.Generator().manual_seed(s)).tolist())
        for s in range(10)
    }
    assert len(draws) > 1


def test_draw_galleries_is_reproducible_and_uniform_in_size():
    labels = torch.tensor([0] * 20 + [1] * 3)
    a = draw_galleries(labels, (1, 4), draws=3, seed=7)
    b = draw_galleries(labels, (1, 4), draws=3, seed=7)
    assert a.keys() == b.keys() == {(n, d) for n in (1, 4) for d in range(3)}
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert {len(a[(4, d)]) for d in range(3)} == {7}


def test_draw_galleries_nest_sizes_within_a_draw_and_differ_across_draws():
    labels = torch.tensor([0] * 30 + [1] * 3 + [2] * 12)
    galleries = draw_galleries(labels, (1, 2, 4, 8, 16), draws=4, seed=3)
    for d in range(4):
        sizes = [set(galleries[(n, d)].tolist()) for n in (1, 2, 4, 8, 16)]
        assert all(small <= large for small, large in zip(sizes, sizes[1:], strict=False))
        assert torch.bincount(labels[galleries[(8, d)]]).tolist() == [8, 3, 8]
        # the n = 16 gallery is sample_gallery's with that size's seed, as before nesting
        gen = torch.Generator().manual_seed(gallery_seed(3, 16, d))
        assert torch.equal(galleries[(16, d)], sample_gallery(labels, 16, gen))
    # a size's gallery does not depend on which other sizes are asked for
    alone = draw_galleries(labels, (4,), draws=4, seed=3)
    larger = draw_galleries(labels, (4, 32), draws=4, seed=3)
    for d in range(4):
        assert torch.equal(alone[(4, d)], galleries[(4, d)])
        assert torch.equal(larger[(4, d)], galleries[(4, d)])
        assert set(galleries[(16, d)].tolist()) <= set(larger[(32, d)].tolist())
    with pytest.raises(ValueError, match="draws must be >= 1"):
        draw_galleries(labels, (4,), draws=0)
    assert len({tuple(galleries[(4, d)].tolist()) for d in range(4)}) == 4


# --------------------------------------------------------------------------- voting


def test_inverse_distance_weighting_by_hand():
    # query at 0°; class 0 at 10°, class 1 at 20° and 25°: the majority loses to the
    # closer point because 1/d(10°) > 1/d(20°) + 1/d(25°).
    d = {a: 1 - math.cos(math.radians(a)) for a in (10, 20, 25)}
    assert 1 / d[10] > 1 / d[20] + 1 / d[25]
    gallery, labels = _at(10, 20, 25), torch.tensor([0, 1, 1])
    assert knn_predict(gallery, labels, _at(0)).tolist() == [0]
    # class 0 at 20°, class 1 at 21° and 22°: now the two votes of class 1 win
    d = {a: 1 - math.cos(math.radians(a)) for a in (20, 21, 22)}
    assert 1 / d[20] < 1 / d[21] + 1 / d[22]
    assert knn_predict(_at(20, 21, 22), labels, _at(0)).tolist() == [1]
    # only k = 3 neighbours vote: a fourth, class-0 point further away changes nothing
    assert knn_predict(_at(20, 21, 22, 23), torch.tensor([0, 1, 1, 0]), _at(0)).tolist() == [1]


def test_exact_match_wins_outright():
    # class 1 has two points half a degree away (1/d ≈ 26,000 each); class 0 one exact
    # copy. (EXACT_TOL = 1e-6 ≈ 0.08°: float32 cosines of a vector with itself stay
    # within ~5e-7 of 1 at 512 dimensions.)
    gallery = _at(0, 0.5, -0.5)
    labels = torch.tensor([0, 1, 1])
    assert knn_predict(gallery, labels, _at(0)).tolist() == [0]
    # without the copy, class 1 wins
    assert knn_predict(gallery[1:], labels[1:], _at(0)).tolist() == [1]


def test_iplusp_query_pools_both_modalities_votes():
    # image query: its 3 neighbours are class 0 at 30-40° (weak votes);
    # profile query: 3 neighbours of class 1 at 5-10° (strong votes). Image alone says 0,
    # profile alone says 1, the pooled 2k votes say 1.
    gallery = torch.cat([_at(30, 35, 40), _at(5, 8, 10), _at(170, 175, 180)])
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    image_q, profile_q = _at(0), _at(0)
    image_gallery = gallery.clone()
    image_gallery[3:6] = _at(90, 95, 100)  # in image space class 1 is far away
    assert knn_predict(image_gallery, labels, image_q).tolist() == [0]
    pooled = knn_predict(
        torch.cat([image_gallery, gallery]), labels.repeat(2), [image_q, profile_q]
    )
    assert pooled.tolist() == [1]


def test_iplusp_pooling_changes_a_decision_in_the_grid():
    # Two classes; the query (class 1) has an image close to class 0's image and a
    # profile very close to class 1's profile: I->I errs, P->P is right, and pooling the
    # image and profile queries over the I+P gallery (k = 1 each) is right too.
    gallery = {
        "image": torch.cat([_at(0), _at(12)]).float(),
        "profile": torch.cat([_at(0), _at(60)]).float(),
    }
    query = {"image": _at(5).float(), "profile": _at(58).float()}
    frame, preds = evaluate_knn(
        gallery, [0, 1], query, [1], n_values=(1,), draws=1, k=1, return_predictions=True
    )
    assert preds[("I->I", 1, 0)].tolist() == [0]
    assert preds[("P->P", 1, 0)].tolist() == [1]
    # pooled: the image query's neighbour votes 1/d(5°) ≈ 262.9 for class 0, the profile
    # query's 1/d(2°) ≈ 1641.6 for class 1
    assert preds[("I+P->I+P", 1, 0)].tolist() == [1]
    assert frame.set_index("setup").loc["I+P->I+P", "accuracy"] == 1.0
    assert frame.set_index("setup").loc["I->I", "accuracy"] == 0.0


def test_gallery_smaller_than_k_and_string_labels():
    frame = evaluate_knn(
        {"image": _at(0, 90).float(), "profile": _at(0, 90).float()},
        ["diatom", "ciliate"],
        {"image": _at(10, 80).float(), "profile": _at(10, 80).float()},
        ["diatom", "ciliate"],
        n_values=(4,),
        draws=2,
    )
    assert (frame["accuracy"] == 1.0).all()
    assert len(frame) == 9 * 2


# --------------------------------------------------------------------------- the grid


@pytest.mark.parametrize(
    "g_counts,q_counts", [([12, 3, 9, 7], [20, 20, 20, 20]), ([5, 1], [30, 7])]
)
def test_grid_matches_knn_predict_on_every_setup_and_draw(g_counts, q_counts):
    # The batched grid (union similarity block, stacked draws, merged I+P neighbours)
    # must give exactly what knn_predict gives on each explicitly built gallery; the
    # second case has galleries smaller than k (n = 1: two points).
    gallery, g_labels = _clusters(g_counts, noise=1.2, seed=1)
    query, q_labels = _clusters(q_counts, noise=1.2, seed=2)
    frame, preds = evaluate_knn(
        gallery,
        g_labels,
        query,
        q_labels,
        n_values=(1, 4),
        draws=3,
        seed=5,
        chunk_size=23,
        return_predictions=True,
    )
    assert list(frame.columns) == list(RESULT_COLUMNS)
    assert len(frame) == 9 * 2 * 3
    assert frame["n_per_class"].tolist() == ([1] * 3 + [4] * 3) * 9
    assert frame["setup"].drop_duplicates().tolist() == list(SETUPS)
    galleries = draw_galleries(g_labels, (1, 4), 3, seed=5)
    for (n, draw), idx in galleries.items():
        for setup in SETUPS:
            g_mods, q_mods = parse_setup(setup)
            g_emb = torch.cat([gallery[m][idx] for m in g_mods])
            g_lab = g_labels[idx].repeat(len(g_mods))
            expected = knn_predict(g_emb, g_lab, [query[m] for m in q_mods])
            assert np.array_equal(preds[(setup, n, draw)], expected.numpy()), (setup, n, draw)
            row = frame[(frame.setup == setup) & (frame.n_per_class == n) & (frame.draw == draw)]
            acc = (expected == q_labels).double().mean().item()
            assert row["accuracy"].item() == pytest.approx(acc)


def test_macro_scores_follow_the_project_conventions():
    rng = np.random.default_rng(0)
    true = rng.integers(0, 4, 200)  # class 4 never occurs in truth ...
    pred = np.where(rng.random(200) < 0.6, true, rng.integers(0, 5, 200))  # ... but is predicted
    pred[true == 3] = 0  # class 3 never predicted: precision 0
    acc, p, r, f1 = macro_scores(true, pred, 5)
    names = [f"c{i}" for i in range(5)]
    report = classification_report([names[i] for i in true], [names[i] for i in pred], names)
    report = report.loc["macro"]
    assert acc == pytest.approx((true == pred).mean())
    assert [p, r, f1] == pytest.approx([report.precision, report.recall, report.f1])


def test_summary_mean_and_sd_over_draws():
    results = pd.DataFrame(
        {
            "setup": ["I->I"] * 3 + ["P->P"] * 3,
            "n_per_class": [1] * 6,
            "draw": [0, 1, 2] * 2,
            "accuracy": [0.5, 0.7, 0.9, 1.0, 1.0, 1.0],
            "macro_precision": [0.1] * 6,
            "macro_recall": [0.2] * 6,
            "macro_f1": [0.3] * 6,
        }
    )
    summary = summarise_knn(results).set_index("setup")
    assert summary.loc["I->I", "accuracy_mean"] == pytest.approx(0.7)
    assert summary.loc["I->I", "accuracy_sd"] == pytest.approx(0.2)  # ddof=1
    assert summary.loc["P->P", "accuracy_sd"] == 0.0
    assert summary.loc["I->I", "n"] == 3


def test_bad_arguments():
    with pytest.raises(ValueError, match="gallery->query"):
        parse_setup("I+P")
    assert parse_setup("I+P → P") == (("image", "profile"), ("profile",))
    with pytest.raises(ValueError, match="need"):
        evaluate_knn({"image": torch.zeros(2, 3)}, [0, 1], {"image": torch.zeros(1, 3)}, [0])
    with pytest.raises(ValueError, match="n_per_class"):
        sample_gallery(torch.tensor([0, 1]), 0)


def test_embeddings_need_not_be_normalised():
    gallery = torch.tensor([[3.0, 0.0], [0.0, 0.5]])
    query = F.normalize(torch.tensor([[1.0, 0.2]])) * 7
    assert knn_predict(gallery, torch.tensor([4, 9]), query).tolist() == [4]
