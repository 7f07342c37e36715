"""Every benchmark script still runs end to end and writes its JSON (smoke runs at tiny
sizes on the CPU; the figures themselves are not checked: speed is not a test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "experiments" / "benchmarks"

CASES = {
    "bench_image_cache.py": (
        ["--scale", "tiny", "--size", "16", "--repeats", "1", "--threads", "1"],
        lambda r: set(r["images_per_s"])
        == {"no_cache", "cache", "cache_batched", "cache_batched_loader"},
    ),
    "bench_train_throughput.py": (
        ["--scale", "tiny", "--size", "16", "--epochs", "2", "--batch-size", "16",
         "--accelerator", "cpu", "--arms", "cache", "batched_cl"],
        lambda r: [a["arm"] for a in r["arms"]] == ["cache", "batched_cl"]
        and all(a["images_per_s"] > 0 for a in r["arms"]),
    ),
    "bench_predict_throughput.py": (
        ["--scale", "tiny", "--size", "16", "--members", "2", "--batch-size", "32",
         "--repeats", "1", "--accelerator", "cpu"],
        lambda r: [a["arm"] for a in r["arms"]] == ["cache", "batched", "batched_cl"]
        and all(a["member_images_per_s"] == pytest.approx(2 * a["images_per_s"], rel=0.01)
                for a in r["arms"]),
    ),
    "bench_clip_step.py": (
        ["--scale", "tiny", "--size", "32", "--batch-size", "16", "--epochs", "2",
         "--accelerator", "cpu"],
        lambda r: [a["path"] for a in r["arms"]] == ["item", "batched", "cached"]
        and all(a["pairs_per_s"] > 0 for a in r["arms"]),
    ),
    "bench_clip_step.py --experiment dino_lab": (
        ["--scale", "tiny", "--size", "32", "--batch-size", "16", "--epochs", "2",
         "--accelerator", "cpu", "--experiment", "dino_lab", "--paths", "batched"],
        lambda r: r["experiment"] == "dino_lab" and [a["path"] for a in r["arms"]] == ["batched"]
        and r["arms"][0]["pairs_per_s"] > 0,
    ),
    "bench_flux.py": (
        ["--particles", "3000", "--samples", "20", "--loop-budget", "5"],
        lambda r: r["particles"] == 3000 and r["speedup"] > 0,
    ),
}  # fmt: skip


@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_runs_and_writes_json(script, tmp_path):
    args, check = CASES[script]
    out = tmp_path / "result.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    result = subprocess.run(
        [sys.executable, str(BENCH / script.split()[0]), *args, "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert check(json.loads(out.read_text())), out.read_text()


def test_knn_benchmark_runs_its_torch_arm_and_compares_when_scikit_learn_is_there(tmp_path):
    # scikit-learn is optional (not in .[dev]): without it the script times the torch arm,
    # says so and exits 2; with it, the two arms must agree on tiny data.
    out = tmp_path / "result.json"
    args = ["--queries", "300", "--gallery-set", "200", "--classes", "5", "--dim", "16",
            "--draws", "2", "--threads", "1", "--out", str(out)]  # fmt: skip
    result = subprocess.run(
        [sys.executable, str(BENCH / "bench_knn.py"), *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(out.read_text())
    assert report["cells"] == 9 * 5 * 2 and report["torch_s"] > 0
    try:
        import sklearn  # noqa: F401
    except ImportError:
        assert result.returncode == 2, result.stdout + result.stderr[-2000:]
        assert report["sklearn_s"] is None and "pip install scikit-learn" in result.stdout
    else:
        assert result.returncode == 0, result.stdout + result.stderr[-2000:]
        assert report["predictions"] == 9 * 5 * 2 * 300 and report["mismatched"] == 0


def test_gpu_benchmark_script_is_valid_bash():
    result = subprocess.run(
        ["bash", "-n", str(BENCH / "run_gpu_benchmarks.sh")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
