"""The plankflux command line as a user types it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

PLANKFLUX = str(Path(sys.executable).parent / "plankflux")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PLANKFLUX, *args], capture_output=True, text=True, timeout=300)


def test_synth_is_deterministic_and_validates(tmp_path):
    a, b, c = tmp_path / "A", tmp_path / "B", tmp_path / "C"
    for out, seed in ((a, "0"), (b, "0"), (c, "1")):
        result = _run("synth", "trap", "--scale", "tiny", "--seed", seed, "--out", str(out))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"wrote {out}: ")
    assert (a / "particles.csv").read_bytes() == (b / "particles.csv").read_bytes()
    assert (a / "samples.csv").read_bytes() == (b / "samples.csv").read_bytes()
    assert (a / "particles.csv").read_bytes() != (c / "particles.csv").read_bytes()

    ok = _run("validate", str(a))
    assert ok.returncode == 0 and ok.stdout.startswith(f"OK {a}: ")

    # Refuses to overwrite an existing campaign.
    again = _run("synth", "trap", "--scale", "tiny", "--out", str(a))
    assert again.returncode == 1 and "particles.csv" in again.stderr


def test_validate_names_duplicated_row(tmp_path):
    root = tmp_path / "A"
    assert _run("synth", "trap", "--scale", "tiny", "--out", str(root)).returncode == 0
    particles = pd.read_csv(root / "particles.csv", dtype=str, keep_default_na=False)
    particles = pd.concat([particles, particles.iloc[[3]]], ignore_index=True)
    particles.to_csv(root / "particles.csv", index=False)
    duplicate_id = particles["particle_id"].iloc[3]
    result = _run("validate", str(root), "--images", "exists")
    assert result.returncode == 1
    line = len(particles) + 1  # the appended row is the file's last line
    assert (
        f"particles.csv line {line} (particle_id {duplicate_id!r}), column 'particle_id': "
        f"duplicate particle_id (first seen on line 5)"
    ) in result.stderr


def test_validate_recognises_a_cytosense_pair_data_set(tmp_path):
    root = tmp_path / "LAB"
    assert (
        _run(
            "synth", "cytosense", "--kind", "lab", "--scale", "tiny", "--out", str(root)
        ).returncode
        == 0
    )
    ok = _run("validate", str(root))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"OK {root}: CytoSense pairs, 60 pairs (60 labelled), 6 classes"
    pairs = pd.read_csv(root / "annotations.csv", dtype=str, keep_default_na=False)
    profile = root / pairs["profile"].iloc[4]
    profile.write_text(profile.read_text() + "1.0,2.0\n")  # a row of 2 values, not 6
    (root / pairs["image"].iloc[7]).unlink()
    result = _run("validate", str(root))
    assert result.returncode == 1
    assert f"line 9, column 'image': image file is missing: {root / pairs['image'].iloc[7]}" in (
        result.stderr
    )
    assert pairs["profile"].iloc[4] in result.stderr
    assert result.stderr.strip().endswith(f"{root}: 2 problem(s)")
    # existence only: the broken profile is not parsed
    assert "1 problem(s)" in _run("validate", str(root), "--images", "exists").stderr
