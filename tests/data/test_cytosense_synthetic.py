"""Synthetic CytoSense data: valid pair layout, deterministic, and built so I+P beats I or P."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from plankflux.cli.main import main as cli
from plankflux.data.cytosense import load_pairs, read_profile, validate_pairs
from plankflux.synthetic.cytosense import (
    _SIZES,
    TRUTH_FILE,
    _plan,
    generate_cytosense,
    species_of,
    species_size,
)


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("kind", ["lab", "sea", "uto"])
def test_tiny_is_valid_fast_and_deterministic(tmp_path, kind):
    start = time.perf_counter()
    root = generate_cytosense(tmp_path / "a", kind, "tiny", seed=0)
    assert time.perf_counter() - start < 3.0
    assert validate_pairs(root) == []
    assert _digest(root) == _digest(generate_cytosense(tmp_path / "b", kind, "tiny", seed=0))
    assert _digest(root) != _digest(generate_cytosense(tmp_path / "c", kind, "tiny", seed=1))
    pairs = load_pairs(root)
    truth = pd.read_csv(root / TRUTH_FILE)
    assert truth["particle_id"].tolist() == pairs.pairs["particle_id"].tolist()
    if kind == "uto":
        assert (pairs.pairs["class"] == "").all() and pairs.classes == ()
        assert truth["true_class"].nunique() > 1  # the truth is kept for evaluation
    else:
        assert (pairs.pairs["class"] == truth["true_class"]).all()
        assert pairs.classes == tuple(species_of(kind, "tiny"))


def test_class_priors_lab_balanced_sea_long_tailed(tmp_path):
    lab = load_pairs(generate_cytosense(tmp_path / "lab", "lab", "tiny")).pairs["class"]
    sea = load_pairs(generate_cytosense(tmp_path / "sea", "sea", "tiny")).pairs["class"]
    assert lab.value_counts().tolist() == [10] * 6
    counts = sea.value_counts()
    assert len(counts) == 8 and counts.iloc[0] >= 4 * counts.iloc[-1]
    assert set(lab) < set(sea)  # SEA holds LAB's species and more


def test_paper_and_demo_sizes():
    rng = np.random.default_rng(0)
    for kind, n, classes in (("lab", 20_050, 24), ("sea", 9_353, 38), ("uto", 32_930, 38)):
        plan = _plan(kind, "paper", rng)
        assert len(plan) == n == _SIZES["paper"][0][kind]
        assert len(set(plan)) == len(species_of(kind, "paper")) == classes
    lab = pd.Series(_plan("lab", "paper", rng)).value_counts()
    assert lab.max() - lab.min() <= 1
    assert set(species_of("lab", "paper")) < set(species_of("sea", "paper"))
    assert len(species_of("lab", "demo")) == 12 and len(_plan("lab", "demo", rng)) == 720


def test_images_carry_a_scale_bar_and_profiles_vary_in_length(tmp_path):
    pairs = load_pairs(generate_cytosense(tmp_path / "d", "lab", "tiny"))
    lengths = set()
    for i in range(len(pairs)):
        pixels = np.asarray(Image.open(pairs.image_path(i)))
        assert pixels.ndim == 2 and pixels.shape[0] > 25 and pixels.shape[1] >= 16
        assert pixels[:25].min() < 50 and np.median(pixels[:25]) > 120  # dark bar on background
        profile = read_profile(pairs.profile_path(i))
        assert profile.shape[1] == 6 and (profile >= 0).all()
        lengths.add(len(profile))
    assert len(lengths) > 5


def _features(root: Path):
    """Per particle: fluorescence fingerprint and length (profile), centre darkness (image)."""
    pairs = load_pairs(root)
    fluor, length, centre = [], [], []
    for i in range(len(pairs)):
        profile = read_profile(pairs.profile_path(i))
        peak = profile.max(axis=0)
        fluor.append(np.log1p(peak[2:]) - np.log1p(peak[0]))  # FL bands relative to FWS
        length.append(len(profile))
        body = np.asarray(Image.open(pairs.image_path(i)), dtype=float)[25:]
        h, w = body.shape
        centre.append(
            np.median(body) - body[h // 2 - 1 : h // 2 + 2, w // 2 - 1 : w // 2 + 2].mean()
        )
    truth = pd.read_csv(root / TRUTH_FILE)["true_class"].to_numpy()
    return np.array(fluor), np.array(length), np.array(centre), truth


def test_twins_are_told_apart_by_one_modality_only(tmp_path):
    """round_chl/round_green: same image, other pigments; round_chl/ring_chl: the reverse."""
    assert species_size("round_chl") == species_size("round_green") == species_size("ring_chl")
    fluor, length, centre, truth = _features(generate_cytosense(tmp_path / "d", "lab", "tiny"))
    pigment = np.array([t.rsplit("_", 1)[1] for t in truth])
    # Profile: the nearest pigment centroid is right, so round_chl and round_green separate.
    centroids = {p: fluor[pigment == p].mean(axis=0) for p in set(pigment)}
    guess = [min(centroids, key=lambda p: np.linalg.norm(f - centroids[p])) for f in fluor]
    assert np.mean(np.array(guess) == pigment) > 0.95
    # Image: a ring's centre is background, a disc's is dark; their profiles look alike.
    disc, ring = truth == "round_chl", truth == "ring_chl"
    assert centre[disc].min() > 30 > centre[ring].max()
    assert abs(length[disc].mean() - length[ring].mean()) < 3
    assert abs(np.median(fluor[disc] - fluor[ring].mean(axis=0))) < 0.3


def test_cli_synth_cytosense(tmp_path, capsys):
    out = tmp_path / "uto"
    argv = ["synth", "cytosense", "--kind", "uto", "--scale", "tiny", "--out", str(out)]
    assert cli(argv) == 0
    assert "wrote" in capsys.readouterr().out and len(load_pairs(out)) == 80
    assert cli(argv) == 1
    assert "not empty" in capsys.readouterr().err
