"""plankflux-pipeline end to end on the tiny campaign: simulated and human expert, resume."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

BIN = Path(sys.executable).parent
TINY = [
    "experiment=pipeline_demo",
    "data=synthetic_tiny",
    "members=[0]",
    "trainer.max_epochs=3",
    "proposals.k=10",
    "minboost.min_verified=5",
    "minboost.k=30",
]


def _env(tmp: Path) -> dict:
    return {
        **os.environ,
        "WANDB_MODE": "offline",
        "PLANKFLUX_DATA_DIR": str(tmp / "data"),
        "PLANKFLUX_LOG_DIR": str(tmp / "logs"),
    }


def _pipeline(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(BIN / "plankflux-pipeline"), *TINY, *args],
        env=_env(tmp),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipeline")
    from plankflux.synthetic.trap import generate_trap_campaign

    campaign = generate_trap_campaign(tmp / "data" / "synthetic_trap_tiny_seed0", "tiny", 0)
    before = _digest(campaign)
    result = _pipeline(tmp)
    return tmp, campaign, before, result


def test_simulated_run_writes_every_stage(simulated):
    tmp, campaign, before, result = simulated
    ws = tmp / "logs" / "pipeline" / "RR"
    for path in (
        "ood/member_0/checkpoints/best.ckpt",
        "ood/scores.parquet",
        "proposals/manifest.csv",
        "verified.csv",
        "minboost/manifest.csv",
        "minboost_verified.csv",
        "flux/flux_summary.csv",
        "flux/flux_by_sample.csv",
        "flux/fig5_human_vs_measured.png",
        "flux/fig8_flux_profiles.png",
        "summary.json",
    ):
        assert (ws / path).is_file(), path
    summary = json.loads((ws / "summary.json").read_text())
    assert set(summary["accuracy"]) == {"ood", "top1k", "verify", "minboost"}
    shown = summary["review_effort"]["verify"]["shown"]
    manifest = pd.read_csv(ws / "proposals" / "manifest.csv", keep_default_na=False)
    verified = pd.read_csv(ws / "verified.csv", keep_default_na=False)
    assert shown == len(manifest) == len(verified) > 0
    # The simulated expert left only true labels.
    truth = pd.read_csv(campaign / "synthetic_truth.csv", keep_default_na=False)
    truth = truth.set_index("particle_id")["true_label"]
    kept = verified[verified["action"] != "rejected"]
    assert (kept["label"].to_numpy() == truth[kept["particle_id"]].to_numpy()).all()
    assert "plankflux pipeline: target RR, 1 members" in result.stdout
    # The human reference is the original annotation of every particle: compared.
    assert "human-label flux (label_original, coverage >= 1.00): MAE vs measured" in result.stdout
    assert "Paper A's claims, over members (Welch t, two-sided, alpha 0.05):" in result.stdout
    assert "review effort: images shown / target images" in result.stdout
    # Lightning's messages reach the console once (Hydra's format), without its adverts.
    console = result.stdout + result.stderr
    assert "Seed set to 0" in console and "\nINFO: " not in console
    assert "💡 Tip" not in console and "LeafSpec" not in console
    assert "Test metric" not in console  # members print one line each, not Lightning's table
    assert "plankflux train: run folder " in console
    # The user's campaign is untouched after the whole pipeline.
    assert _digest(campaign) == before


def test_rerun_resumes_without_retraining(simulated):
    tmp, _, _, _ = simulated
    ws = tmp / "logs" / "pipeline" / "RR"
    ckpt = ws / "ood" / "member_0" / "checkpoints" / "best.ckpt"
    mtime = ckpt.stat().st_mtime_ns
    before = json.loads((ws / "summary.json").read_text())
    _pipeline(tmp)
    assert ckpt.stat().st_mtime_ns == mtime
    assert json.loads((ws / "summary.json").read_text()) == before


def test_human_expert_stops_and_resumes(simulated):
    tmp, campaign, _, _ = simulated
    ws = tmp / "logs" / "human"
    ws.mkdir()
    shutil.copytree(tmp / "logs" / "pipeline" / "RR" / "ood", ws / "ood")  # reuse the OOD stage
    first = _pipeline(tmp, "expert=human", f"hydra.run.dir={ws}")
    assert "Verify the proposals in" in first.stdout
    assert not (ws / "verified.csv").exists() and (ws / "proposals" / "manifest.csv").exists()
    # The person confirms every proposal (changes nothing) and runs the printed command.
    ingest = next(
        line.strip()
        for line in first.stdout.splitlines()
        if line.strip().startswith("plankflux ingest")
    )
    subprocess.run(
        [str(BIN / "plankflux"), *shlex.split(ingest)[1:]],
        check=True,
        env=_env(tmp),
        capture_output=True,
    )
    verified = pd.read_csv(ws / "verified.csv", keep_default_na=False)
    assert (verified["action"] == "confirmed").all()
    second = _pipeline(tmp, "expert=human", f"hydra.run.dir={ws}")
    assert f"Verify the proposals in {ws / 'minboost'}" in second.stdout


def test_stopped_after_proposals_resumes_to_the_same_outputs(simulated):
    """A run stopped after the proposal stage, then resumed, ends where an
    uninterrupted run ends (training is deterministic on the CPU)."""
    tmp, _, _, _ = simulated
    reference = tmp / "logs" / "pipeline" / "RR"
    ws = tmp / "logs" / "stopped"
    ws.mkdir()
    shutil.copytree(reference / "ood", ws / "ood")  # the same (deterministic) OOD stage
    stopped = _pipeline(tmp, "expert=human", f"hydra.run.dir={ws}")  # stops at proposals
    assert "Verify the proposals in" in stopped.stdout and not (ws / "verified.csv").exists()
    _pipeline(tmp, f"hydra.run.dir={ws}")  # resumed, simulated expert
    for name in ("verified.csv", "minboost_verified.csv", "flux/flux_summary.csv"):
        assert (ws / name).read_bytes() == (reference / name).read_bytes(), name
    ours = json.loads((ws / "summary.json").read_text())
    theirs = json.loads((reference / "summary.json").read_text())
    ours.pop("flux_dir"), theirs.pop("flux_dir")
    assert ours == theirs


def test_the_paper_a_notebook_reads_the_workspace(simulated, monkeypatch):
    """notebooks/paper_a_pipeline.ipynb, its code cells run in order as plain Python on
    this run's workspace."""
    tmp, campaign, _, _ = simulated
    ws = tmp / "logs" / "pipeline" / "RR"
    notebook = Path(__file__).resolve().parents[2] / "notebooks" / "paper_a_pipeline.ipynb"
    cells = json.loads(notebook.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    monkeypatch.setenv("PLANKFLUX_WORKSPACE", str(ws))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {}
    exec(compile(code, str(notebook), "exec"), namespace)
    summary = json.loads((ws / "summary.json").read_text())
    accuracy = namespace["accuracy"]
    assert list(accuracy.index) == ["ood", "top1k", "verify", "minboost"]
    assert accuracy.loc["verify", "mean"] == summary["accuracy"]["verify"]["mean"]
    samples = pd.read_csv(campaign / "samples.csv")
    rr = samples[samples["domain"] == "RR"]
    assert sorted(namespace["per_sample"].index) == sorted(rr["sample_id"])
    assert len(namespace["fig"].axes[0].patches) == 4 * len(rr)  # a bar per treatment
    import matplotlib.pyplot as plt

    plt.close("all")
