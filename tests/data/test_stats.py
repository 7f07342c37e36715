"""Dataset statistics and the ``plankflux stats`` command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from plankflux.cli.main import main
from plankflux.data.campaign import write_campaign
from plankflux.data.image_cache import UnreadableImageError
from plankflux.data.stats import compute_dataset_stats, stats_from_array
from plankflux.data.transforms import load_resized, resolve_normalization


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def _constant(path, width, height, rgb):
    return _save(path, np.broadcast_to(np.array(rgb, dtype=np.uint8), (height, width, 3)))


def test_constant_images_hand_computed(tmp_path):
    a = _constant(tmp_path / "a.png", 4, 4, (10, 20, 30))
    b = _constant(tmp_path / "b.png", 4, 4, (30, 40, 50))
    for mode in ("resize", "pad"):
        mean, std = compute_dataset_stats([a, b], 4, mode)
        assert mean == pytest.approx([20 / 255, 30 / 255, 40 / 255])
        assert std == pytest.approx([10 / 255] * 3)


def test_pad_zeros_lower_the_mean_for_non_square_images(tmp_path):
    # a 4x2 (w x h) image of value v into 4 px: half the pixels are v, half are 0
    path = _constant(tmp_path / "wide.png", 4, 2, (100, 200, 50))
    v = np.array([100, 200, 50]) / 255
    mean, std = compute_dataset_stats([path], 4, "resize")
    assert mean == pytest.approx(v.tolist()) and std == pytest.approx([0, 0, 0], abs=1e-12)
    mean, std = compute_dataset_stats([path], 4, "pad")
    assert mean == pytest.approx((v / 2).tolist())
    assert std == pytest.approx((v / 2).tolist())


def test_random_images_match_numpy_and_array_path(tmp_path):
    rng = np.random.default_rng(0)
    paths = [
        _save(tmp_path / f"{i}.png", rng.integers(0, 256, (h, w, 3)))
        for i, (w, h) in enumerate([(12, 7), (20, 20), (5, 30), (9, 9), (40, 3)])
    ]
    for mode in ("resize", "pad"):
        stacked = np.stack([load_resized(p, 16, mode) for p in paths])
        pixels = stacked.reshape(-1, 3).astype(np.float64) / 255
        mean, std = compute_dataset_stats(paths, 16, mode, workers=2)
        assert mean == pytest.approx(pixels.mean(axis=0).tolist(), rel=1e-12)
        assert std == pytest.approx(pixels.std(axis=0).tolist(), rel=1e-12)
        # the array path agrees, also across its chunk boundaries
        big = np.concatenate([stacked] * 10)
        assert stats_from_array(big)[0] == pytest.approx(mean, rel=1e-12)
        assert stats_from_array(big)[1] == pytest.approx(std, rel=1e-12)


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="no images"):
        compute_dataset_stats([], 8, "resize")
    with pytest.raises(ValueError, match="N, H, W, 3"):
        stats_from_array(np.zeros((4, 4, 3), dtype=np.uint8))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(UnreadableImageError, match="bad.png"):
        compute_dataset_stats([bad], 8, "resize")


# ---------------------------------------------------------------- the command


def _campaign(root):
    rng = np.random.default_rng(1)
    rows = []
    for domain, n in (("RR", 3), ("FC", 2)):
        for i in range(n):
            pid = f"{domain}{i}"
            size = (int(rng.integers(4, 20)), int(rng.integers(4, 20)))
            _save(root / "imgs" / f"{pid}.png", rng.integers(0, 256, (*size, 3)))
            label = "aggregate" if i < n - 1 else ""
            rows.append((pid, f"imgs/{pid}.png", domain, f"{domain}-s", 100.0, label))
    particles = pd.DataFrame(
        rows, columns=["particle_id", "image", "domain", "sample_id", "esd_um", "label"]
    )
    samples = pd.DataFrame(
        {
            "sample_id": ["RR-s", "FC-s"],
            "domain": ["RR", "FC"],
            "depth_m": [100, 150],
            "imaged_area_m2": [0.01, 0.01],
            "deployment_days": [2.0, 3.0],
        }
    )
    write_campaign(root, particles, samples)
    return sorted((root / "imgs").glob("*.png"))


def _run(argv):
    return main(argv)


def test_cli_writes_json_for_both_modes(tmp_path, capsys):
    root = tmp_path / "camp"
    paths = _campaign(root)
    out = tmp_path / "out" / "stats.json"
    assert _run(["stats", str(root), "--size", "16", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "resize: mean [" in printed and "pad: mean [" in printed
    table = json.loads(out.read_text())
    assert set(table) == {"resize", "pad"}
    for mode in ("resize", "pad"):
        mean, std = compute_dataset_stats(paths, 16, mode)
        assert table[mode]["mean"] == pytest.approx(mean)
        assert table[mode]["std"] == pytest.approx(std)
        assert table[mode]["size"] == 16 and table[mode]["n_images"] == 5
        got_mean, got_std = resolve_normalization(str(out), mode)
        assert got_mean == pytest.approx(mean) and got_std == pytest.approx(std)
    assert table["pad"]["mean"] != pytest.approx(table["resize"]["mean"])


def test_cli_filters_and_single_mode(tmp_path, capsys):
    root = tmp_path / "camp"
    _campaign(root)
    out = tmp_path / "rr.json"
    argv = [
        "stats",
        str(root),
        "--size",
        "8",
        "--resize-mode",
        "pad",
        "--domains",
        "RR",
        "--labelled-only",
        "--out",
        str(out),
    ]
    assert _run(argv) == 0
    table = json.loads(out.read_text())
    assert set(table) == {"pad"}
    assert table["pad"]["n_images"] == 2 and table["pad"]["domains"] == ["RR"]
    expected = compute_dataset_stats(
        [root / "imgs" / "RR0.png", root / "imgs" / "RR1.png"], 8, "pad"
    )
    assert table["pad"]["mean"] == pytest.approx(expected[0])
    with pytest.raises(ValueError, match="no entry for resize mode 'resize'"):
        resolve_normalization(str(out), "resize")

    assert _run(["stats", str(root), "--domains", "XX"]) == 1
    assert "unknown domain(s) XX" in capsys.readouterr().err


def test_cli_reports_unreadable_image(tmp_path, capsys):
    root = tmp_path / "camp"
    _campaign(root)
    (root / "imgs" / "FC0.png").write_bytes(b"broken")
    assert _run(["stats", str(root), "--size", "8"]) == 1
    assert "FC0.png" in capsys.readouterr().err
    out = tmp_path / "s.json"
    argv = ["stats", str(root), "--size", "8", "--skip-unreadable", "--out", str(out)]
    assert _run(argv) == 0
    assert json.loads(out.read_text())["resize"]["n_images"] == 4
