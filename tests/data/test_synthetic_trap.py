"""The synthetic trap campaign: real format, deterministic, and classes that really differ."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from plankflux.data.campaign import PARTICLES_FILE, SAMPLES_FILE, validate_campaign
from plankflux.data.classes import DOMAINS, TRAP_CLASSES, to_original_scheme
from plankflux.synthetic.trap import (
    CLASS_PRIORS,
    SCALES,
    TRUTH_FILE,
    generate_trap_campaign,
    pixel_size_um,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return generate_trap_campaign(tmp_path_factory.mktemp("trap") / "campaign", "tiny", seed=0)


def _particles(root: Path) -> pd.DataFrame:
    p = pd.read_csv(root / PARTICLES_FILE, dtype=str, keep_default_na=False)
    truth = pd.read_csv(root / TRUTH_FILE, dtype=str, keep_default_na=False)
    return p.merge(truth, on="particle_id", validate="1:1")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _foreground(path: Path) -> np.ndarray:
    """Pixels clearly brighter than the background (the border's median)."""
    grey = np.asarray(Image.open(path).convert("L"), dtype=float)
    border = np.r_[grey[0], grey[-1], grey[:, 0], grey[:, -1]]
    spread = np.median(np.abs(border - np.median(border))) + 1.0
    return grey - np.median(border) > max(4 * spread, 10)


def _elongation(mask: np.ndarray) -> float:
    """sqrt of the ratio of the principal second moments of a mask (1 = round)."""
    y, x = np.nonzero(mask)
    if len(y) < 5:  # too few pixels for a meaningful shape
        return np.nan
    lo, hi = np.linalg.eigvalsh(np.cov(np.stack([x, y])))
    return float(np.sqrt(hi / max(lo, 1e-3)))


def test_writes_a_valid_campaign(tiny):
    campaign, problems = validate_campaign(tiny, check_images="decode")
    assert problems == []
    p, s = campaign.particles, campaign.samples
    assert 300 <= len(p) <= 400
    assert p["particle_id"].is_unique
    assert set(p["domain"]) == set(DOMAINS) == set(s["domain"])
    assert (p["label"] == "").any(), "unlabelled particles are expected"
    # As in Paper A's campaigns: every particle has an original annotation.
    assert (p["label_original"] != "").all()
    assert set(p["magnification"].unique()) <= {7.0, 10.0, 20.0}
    for column in (
        "depth_m",
        "imaged_area_m2",
        "deployment_days",
        "measured_flux_mmol_m2_d",
        "measured_flux_sd",
    ):
        assert (s[column] > 0).all(), column
    assert s["measured_flux_mmol_m2_d"].between(0.05, 60).all()
    assert (s["deployment_days"].between(1, 5)).all()
    assert s.groupby("domain").size().ge(2).all()
    # Rows come grouped by domain and sample, images in their <domain>/<sample> folder.
    assert list(dict.fromkeys(p["domain"])) == list(DOMAINS)
    expected = "images/" + p["domain"] + "/" + p["sample_id"] + "/" + p["particle_id"] + ".png"
    assert (p["image"] == expected).all()
    with Image.open(tiny / p["image"].iat[0]) as im:
        assert im.mode == "RGB"


def test_images_vary_in_size_around_nominal(tiny):
    sizes = {Image.open(tiny / rel).size for rel in _particles(tiny)["image"][:60]}
    assert len(sizes) > 10
    assert all(0.5 * 32 <= side <= 1.4 * 32 for size in sizes for side in size)
    assert any(w != h for w, h in sizes)


def test_same_seed_is_byte_identical_and_other_seed_differs(tmp_path, tiny):
    again = generate_trap_campaign(tmp_path / "again", "tiny", seed=0)
    for name in (PARTICLES_FILE, SAMPLES_FILE, TRUTH_FILE):
        assert _digest(again / name) == _digest(tiny / name), name
    images = _particles(tiny)["image"]
    for rel in images.iloc[:: len(images) // 7]:
        assert _digest(again / rel) == _digest(tiny / rel), rel

    other = generate_trap_campaign(tmp_path / "other", "tiny", seed=1)
    assert _digest(other / PARTICLES_FILE) != _digest(tiny / PARTICLES_FILE)
    assert _digest(other / SAMPLES_FILE) != _digest(tiny / SAMPLES_FILE)
    rel = images.iat[0]
    assert _digest(other / rel) != _digest(tiny / rel)


def test_refuses_to_overwrite_a_campaign(tmp_path, tiny):
    before = _digest(tiny / PARTICLES_FILE)
    with pytest.raises(ValueError, match="already holds a campaign"):
        generate_trap_campaign(tiny, "tiny", seed=3)
    assert _digest(tiny / PARTICLES_FILE) == before
    (tmp_path / PARTICLES_FILE).write_text("mine\n")
    with pytest.raises(ValueError, match="already holds a campaign"):
        generate_trap_campaign(tmp_path, "tiny")
    assert (tmp_path / PARTICLES_FILE).read_text() == "mine\n"


@pytest.mark.parametrize("kwargs", [{"scale": "huge"}, {"seed": -1}])
def test_rejects_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate_trap_campaign(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x" / PARTICLES_FILE).exists()
    assert SCALES == ("tiny", "demo", "paper")


def test_every_class_labelled_in_rr_and_overall_and_every_domain_has_common_ones(tiny):
    p = _particles(tiny)
    labelled = p[p["label"] != ""]
    assert (labelled["label"] == labelled["true_label"]).all()
    assert set(labelled["label"]) == set(TRAP_CLASSES)
    assert set(labelled.loc[labelled["domain"] == "RR", "label"]) == set(TRAP_CLASSES)
    ood = labelled[labelled["domain"] != "RR"]
    assert set(ood["label"]) == set(TRAP_CLASSES), "an RR-free training set sees every class"
    counts = pd.crosstab(labelled["label"], labelled["domain"])
    for domain in DOMAINS:
        for cls in ("aggregate", "long_pellet", "short_pellet", "mini_pellet"):
            assert counts.loc[cls, domain] >= 2, (cls, domain)
        assert counts[domain].idxmax() == "aggregate", domain


def test_class_priors_differ_between_domains_and_rare_classes_stay_rare(tiny):
    priors = pd.DataFrame(CLASS_PRIORS, index=TRAP_CLASSES)
    priors /= priors.sum()
    tv = 0.5 * (priors["FC"] - priors["SR"]).abs().sum()
    assert tv > 0.15
    p = _particles(tiny)
    share = pd.crosstab(p["true_label"], p["domain"], normalize="columns")
    assert 0.5 * (share["FC"] - share["SR"]).abs().sum() > 0.1
    for cls in ("salp_pellet", "rhizaria"):
        assert (p["true_label"] == cls).mean() < 0.05, cls
    assert (share.idxmax() == "aggregate").all()


def test_original_labels_disagree_sometimes_and_some_are_ambiguous(tiny):
    p = _particles(tiny)
    original = to_original_scheme(p["label_original"])  # old names are all known
    truth = to_original_scheme(p["true_label"])
    disagree = np.mean(np.asarray(original) != np.asarray(truth))
    assert 0.12 < disagree < 0.28  # Paper A: about 80 % agreement
    labelled = p[p["label"] != ""]  # the revised labels are the true classes
    assert (labelled["label"] == labelled["true_label"]).all()
    ambiguous = (p["ambiguous"] == "true").mean()
    assert 0.005 < ambiguous < 0.15
    assert set(p["ambiguous"]) <= {"true", "false"}


def test_esd_is_positive_and_follows_the_drawn_size(tiny):
    p = _particles(tiny)
    esd = p["esd_um"].astype(float)
    assert (esd > 0).all()
    assert esd.between(5, 1000).all()
    solid = p[~p["true_label"].isin(["noise", "fiber_blur", "bubble", "rhizaria"])]
    area = np.array([_foreground(tiny / rel).sum() for rel in solid["image"]])
    px = np.array([pixel_size_um(int(m), "tiny") for m in solid["magnification"]])
    esd_px = solid["esd_um"].astype(float).to_numpy() / px
    measured = 2 * np.sqrt(area / np.pi)
    assert np.corrcoef(esd_px, measured)[0, 1] > 0.8
    by_class = esd.groupby(p["true_label"]).median()
    assert by_class["mini_pellet"] < by_class["short_pellet"] < by_class["aggregate"]


def test_shapes_differ_by_class(tiny):
    p = _particles(tiny)
    elongation = {
        cls: np.nanmedian(
            [_elongation(_foreground(tiny / rel)) for rel in p.loc[p["true_label"] == cls, "image"]]
        )
        for cls in ("long_pellet", "short_pellet", "mini_pellet", "bubble")
    }
    assert elongation["long_pellet"] > elongation["short_pellet"] > elongation["mini_pellet"]
    assert elongation["bubble"] < elongation["short_pellet"]
    # Bubbles are bright rings with a clear centre; noise is nearly empty.
    fill = {
        cls: np.mean(
            [_foreground(tiny / rel).mean() for rel in p.loc[p["true_label"] == cls, "image"]]
        )
        for cls in ("aggregate", "noise")
    }
    assert fill["noise"] < 0.2 * fill["aggregate"]
    rims = []
    for rel in p.loc[p["true_label"] == "bubble", "image"]:
        grey = np.asarray(Image.open(tiny / rel).convert("L"), dtype=float)
        rims.append(grey.max() - np.median(grey[_foreground(tiny / rel)]))
    assert np.mean(rims) > 0


def test_domains_look_different(tiny):
    p = _particles(tiny)
    mean_rgb = {
        d: np.mean(
            [
                np.asarray(Image.open(tiny / rel), dtype=float).reshape(-1, 3).mean(0)
                for rel in p.loc[p["domain"] == d, "image"]
            ],
            axis=0,
        )
        for d in DOMAINS
    }
    for i, a in enumerate(DOMAINS):
        for b in DOMAINS[i + 1 :]:
            assert np.abs(mean_rgb[a] - mean_rgb[b]).max() > 5, (a, b)
    # RR is the grainiest: pixel-to-pixel noise along the (particle-free) top row.
    grain = {
        d: np.median(
            [
                np.diff(np.asarray(Image.open(tiny / rel).convert("L"), float)[0]).std()
                for rel in p.loc[p["domain"] == d, "image"]
            ]
        )
        for d in DOMAINS
    }
    assert max(grain, key=grain.get) == "RR"


def test_the_original_annotation_gives_nearly_the_true_flux(tiny):
    """Paper A's human-label flux (every particle's original annotation) stays close to
    the true and the measured flux: the annotators' confusions roughly cancel in carbon
    (tiny campaign, seed 0: 5 % off the true flux, 14 % off the measured one)."""
    from plankflux.data.campaign import load_campaign
    from plankflux.flux.predictions import human_predictions
    from plankflux.flux.tables import flux_by_sample

    campaign = load_campaign(tiny, check_images="none")
    p = _particles(tiny)
    truth = p[["particle_id"]].assign(treatment="true", member=0, label=p["true_label"])
    both = pd.concat([truth, human_predictions(campaign.particles)], ignore_index=True)
    by_sample = flux_by_sample(campaign, both)
    total = by_sample[by_sample["class_group"] == "total"]
    wide = total.pivot(index="sample_id", columns="treatment", values="flux_mmol_m2_d")
    assert (total.loc[total["treatment"] == "human", "coverage"] == 1.0).all()
    assert (wide["human"] - wide["true"]).abs().mean() < 0.15 * wide["true"].mean()
    measured = campaign.samples.set_index("sample_id")["measured_flux_mmol_m2_d"]
    assert (wide["human"] - measured).abs().mean() < 0.3 * measured.mean()
