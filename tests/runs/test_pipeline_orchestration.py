"""The pipeline's orchestration in-process, with a fake training stage.

``run_pipeline`` gets an oracle ``fit_and_score``: every member gives the particle's
true class a score in (0.5, 0.9) and spreads the rest evenly, so the proposals, the
simulated verdicts and the labels each treatment retrains with can be predicted by
hand. The real training stage runs in ``tests/e2e/test_pipeline.py``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plankflux.data.campaign import load_campaign
from plankflux.layout import SCORES_FILE, TRUTH_FILE, Workspace
from plankflux.runs.pipeline import (
    AwaitingExpert,
    PipelineSettings,
    format_summary,
    run_pipeline,
)

K = 3


def _unit(pid: str) -> float:
    """A fixed number in [0, 1) per particle id, so scores have no ties."""
    return int(hashlib.sha256(pid.encode()).hexdigest()[:8], 16) / 2**32


class OracleEnsemble:
    """``fit_and_score`` that scores the target particles a treatment did not train on
    with two members that both know the truth; records every call."""

    def __init__(self, campaign, target: str, wrong: frozenset[str] = frozenset()):
        self.classes = list(campaign.classes)
        truth = pd.read_csv(campaign.root / TRUTH_FILE, dtype=str, keep_default_na=False)
        self.truth = truth.set_index("particle_id")["true_label"]
        particles = campaign.particles
        self.target_ids = list(particles.loc[particles["domain"] == target, "particle_id"])
        self.wrong = wrong  # both members put these in the class after their true one
        self.calls: list[tuple[str, list[str] | None]] = []

    def __call__(self, out_dir: Path, labels: Path | None) -> Path:
        trained = [] if labels is None else list(pd.read_csv(labels, dtype=str)["particle_id"])
        self.calls.append((out_dir.name, None if labels is None else trained))
        ids = [p for p in self.target_ids if p not in set(trained)]
        rows = []
        for member in (0, 1):
            for pid in ids:
                true = self.classes.index(self.truth[pid])
                if pid in self.wrong:
                    true = (true + 1) % len(self.classes)
                top = 0.5 + 0.4 * _unit(pid)
                scores = np.full(len(self.classes), (1 - top) / (len(self.classes) - 1))
                scores[true] = top
                rows.append(
                    {
                        "particle_id": pid,
                        "member": member,
                        **dict(zip(self.classes, scores, strict=True)),
                    }
                )
        out_dir.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows, columns=["particle_id", "member", *self.classes]).to_parquet(
            out_dir / SCORES_FILE
        )
        return out_dir / SCORES_FILE


def _settings(**changes) -> PipelineSettings:
    base = dict(target="RR", members=[0, 1], k=K, min_verified=4, minboost_k=20)
    return PipelineSettings(**{**base, **changes})


@pytest.fixture(scope="module")
def simulated_run(tiny_campaign, tmp_path_factory):
    campaign = load_campaign(tiny_campaign, check_images="none")
    oracle = OracleEnsemble(campaign, "RR")
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    summary = run_pipeline(_settings(), campaign, ws, oracle)
    return campaign, oracle, ws, summary


def test_proposals_are_the_top_k_of_each_class(simulated_run):
    campaign, oracle, ws, _ = simulated_run
    manifest = pd.read_csv(ws.proposals / "manifest.csv", dtype=str, keep_default_na=False)
    expected = []
    for cls in campaign.classes:
        ids = [p for p in oracle.target_ids if oracle.truth[p] == cls]
        expected += sorted(ids, key=_unit, reverse=True)[:K]
    assert sorted(manifest["particle_id"]) == sorted(expected)
    for _, row in manifest.iterrows():
        assert (ws.proposals / row["proposed_label"]).is_dir()


def test_the_simulated_expert_confirms_right_proposals_and_deletes_ambiguous_ones(simulated_run):
    campaign, _, ws, summary = simulated_run
    verified = pd.read_csv(ws.verified, dtype=str, keep_default_na=False)
    ambiguous = set(campaign.particles.loc[campaign.particles["ambiguous"], "particle_id"])
    expected = np.where(verified["particle_id"].isin(ambiguous), "rejected", "confirmed")
    assert list(verified["action"]) == list(expected)  # the oracle is never wrong: no moves
    effort = summary["review_effort"]["verify"]
    assert effort == {
        "shown": len(verified),
        "confirmed": int((expected == "confirmed").sum()),
        "moved": 0,
        "deleted": int((expected == "rejected").sum()),
    }


def test_each_treatment_retrains_with_its_own_labels(simulated_run):
    _, oracle, ws, _ = simulated_run
    manifest = pd.read_csv(ws.proposals / "manifest.csv", dtype=str, keep_default_na=False)
    verified = pd.read_csv(ws.verified, dtype=str, keep_default_na=False)
    boosted = pd.read_csv(ws.minboost_verified, dtype=str, keep_default_na=False)
    kept = verified.loc[verified["action"] == "confirmed", "particle_id"]
    boosted_kept = boosted.loc[boosted["action"] == "confirmed", "particle_id"]
    calls = dict(oracle.calls)
    assert list(calls) == ["ood", "top1k", "verify", "minboost"]
    assert calls["ood"] is None
    assert sorted(calls["top1k"]) == sorted(manifest["particle_id"])
    assert sorted(calls["verify"]) == sorted(kept)
    assert sorted(calls["minboost"]) == sorted(set(kept) | set(boosted_kept))
    assert len(boosted_kept) > 0  # the constructed case does reach the minboost round
    minboost_manifest = pd.read_csv(ws.minboost / "manifest.csv", dtype=str)
    assert (minboost_manifest["round"] == "minboost").all()
    # Paper A: an image verified as a class is not proposed for it again; one deleted
    # (ambiguous) in the first round may be.
    confirmed = verified[verified["action"] == "confirmed"]
    kept_as = set(zip(confirmed["particle_id"], confirmed["label"], strict=True))
    proposed_as = set(
        zip(minboost_manifest["particle_id"], minboost_manifest["proposed_label"], strict=True)
    )
    assert not kept_as & proposed_as


def test_summary_accuracy_and_flux_tables(simulated_run):
    _, _, ws, summary = simulated_run
    assert json.loads(ws.summary.read_text()) == summary
    for treatment in ("ood", "top1k", "verify", "minboost"):
        assert summary["accuracy"][treatment]["per_member"] == [1.0, 1.0]  # an oracle
    assert (ws.flux / "flux_summary.csv").is_file()
    assert set(summary["flux_mae_vs_measured"]) >= {"ood", "top1k", "verify", "minboost"}
    # The human reference is the original annotation of every target particle.
    assert summary["human_reference"]["column"] == "label_original"
    assert summary["human_reference"]["coverage_min"] == 1.0
    assert summary["human_reference"]["compared"] is True
    assert set(summary["flux_mae_vs_human"]) >= {"ood", "verify"}
    claims = {c["claim"]: c for c in summary["claims"]}
    assert len(claims) == 5
    held_out = claims["held-out accuracy (classifiers only): OOD < +verify"]
    assert held_out["arms"]["ood"]["values"] == [1.0, 1.0]  # the oracle's, as above
    assert held_out["holds"] is None  # equal members: no spread, no test
    accuracy = claims["target accuracy vs the original annotation: OOD < +verify"]
    # The oracle's members agree (no spread, no test) with the true classes, which the
    # original annotation matches for about 80 % of particles.
    values = accuracy["arms"]["ood"]["values"]
    assert len(values) == 2 and values[0] == values[1] and 0.6 < values[0] < 0.95
    assert accuracy["holds"] is None and accuracy["p"] is None
    effort = claims["review effort: images shown / target images"]
    shown = sum(e["shown"] for e in summary["review_effort"].values())
    assert effort["value"] == pytest.approx(shown / summary["target_images"])


def test_the_printed_summary_lists_treatments_in_one_order(simulated_run):
    *_, summary = simulated_run
    # The flux stage finds treatments in its own order; the printout must not follow it.
    shuffled = {
        **summary,
        "accuracy_vs_original": dict(reversed(summary["accuracy_vs_original"].items())),
        "flux_mae_vs_human": dict(reversed(summary["flux_mae_vs_human"].items())),
    }
    lines = format_summary(shuffled).splitlines()
    order = list(summary["accuracy"])
    assert len(order) >= 3

    def block(after: str) -> list[str]:
        start = next(i for i, line in enumerate(lines) if line.startswith(after)) + 1
        names = []
        for line in lines[start:]:
            if not line.startswith("    "):
                break
            names.append(line.split()[0])
        return names

    held_out = block("  accuracy on ")
    assert held_out == order
    original = block("  accuracy of each treatment's target labels")
    assert original == [t for t in order if t in summary["accuracy_vs_original"]]
    versus_human = block("  human-label flux")
    assert versus_human == [t for t in order if t in summary["flux_mae_vs_human"]]
    assert len(original) >= 2 and len(versus_human) >= 2


def test_a_rerun_resumes_without_training_again(simulated_run, caplog):
    campaign, oracle, ws, summary = simulated_run
    calls = len(oracle.calls)
    with caplog.at_level(logging.INFO, logger="plankflux.runs.pipeline"):
        assert run_pipeline(_settings(), campaign, ws, oracle) == summary
    assert len(oracle.calls) == calls
    said = [r.getMessage() for r in caplog.records]
    assert f"rewriting flux tables and figures in {ws.flux}" in said


def test_a_human_expert_stops_the_run_at_the_first_folder(tiny_campaign, tmp_path):
    campaign = load_campaign(tiny_campaign, check_images="none")
    oracle = OracleEnsemble(campaign, "RR")
    ws = Workspace(tmp_path)
    settings = _settings(expert="human", resume_command="plankflux pipeline expert=human")
    with pytest.raises(AwaitingExpert, match="Verify the proposals in") as stop:
        run_pipeline(settings, campaign, ws, oracle)
    assert "plankflux ingest" in str(stop.value)
    assert "plankflux pipeline expert=human" in str(stop.value)
    assert (ws.proposals / "manifest.csv").is_file() and not ws.verified.exists()
    assert [name for name, _ in oracle.calls] == ["ood"]


def test_a_treatment_that_trained_on_every_target_particle_keeps_its_labels(
    tiny_campaign, tmp_path
):
    """K above the class sizes proposes every unanimous particle, so ``top1k`` trains on
    the whole target and predicts nothing: its training labels give its flux, and no
    accuracy is claimed without held-out particles."""
    campaign = load_campaign(tiny_campaign, check_images="none")
    oracle = OracleEnsemble(campaign, "RR")
    summary = run_pipeline(_settings(k=1000), campaign, Workspace(tmp_path), oracle)
    assert sorted(dict(oracle.calls)["top1k"]) == sorted(oracle.target_ids)
    assert summary["held_out_particles"] == 0
    assert summary["accuracy"]["top1k"] == {"mean": None, "sd": None, "per_member": []}
    by_sample = pd.read_csv(tmp_path / "flux" / "flux_by_sample.csv")
    top1k = by_sample[by_sample["treatment"] == "top1k"]
    assert sorted(top1k["member"].unique()) == [0, 1] and (top1k["flux_mmol_m2_d"] >= 0).all()


def test_wrong_unanimous_proposals_are_moved_to_their_true_class(tiny_campaign, tmp_path):
    campaign = load_campaign(tiny_campaign, check_images="none")
    truth = OracleEnsemble(campaign, "RR")
    oracle = OracleEnsemble(campaign, "RR", wrong=frozenset(truth.target_ids[::3]))
    summary = run_pipeline(_settings(), campaign, Workspace(tmp_path), oracle)
    verified = pd.read_csv(tmp_path / "verified.csv", dtype=str, keep_default_na=False)
    ambiguous = set(campaign.particles.loc[campaign.particles["ambiguous"], "particle_id"])
    for _, row in verified.iterrows():
        pid = row["particle_id"]
        if pid in ambiguous:
            assert row["action"] == "rejected", pid
        else:
            assert row["action"] == ("relabelled" if pid in oracle.wrong else "confirmed"), pid
            assert row["label"] == oracle.truth[pid], pid
    moved = summary["review_effort"]["verify"]["moved"]
    assert moved == int((verified["action"] == "relabelled").sum()) > 0


def test_a_human_reviews_in_the_page_and_the_same_run_resumes(tiny_campaign, tmp_path):
    """The stop message offers ``plankflux review`` first; decisions made through the
    review session (what the page calls) let the same run resume, and summary.json
    gains the review time of each round."""
    from plankflux.hitl.review import ReviewSession

    campaign = load_campaign(tiny_campaign, check_images="none")
    oracle = OracleEnsemble(campaign, "RR")
    ws = Workspace(tmp_path)
    settings = _settings(expert="human", resume_command="plankflux pipeline expert=human")
    with pytest.raises(AwaitingExpert) as stop:
        run_pipeline(settings, campaign, ws, oracle)
    message = str(stop.value)
    review = f"plankflux review {ws.proposals} --campaign {campaign.root} --mode verify"
    assert review in message
    assert message.index(review) < message.index("plankflux ingest")
    assert message.index("plankflux ingest") < message.index("plankflux ecotaxa export")

    session = ReviewSession(ws.proposals, campaign, out=ws.verified)
    ids = [item.particle_id for item in session.items]
    session.decide([(pid, "confirmed", "") for pid in ids[1:]], seconds=12.0)
    session.decide([(ids[0], "wrong", "")], seconds=3.0)
    session.finish()
    with pytest.raises(AwaitingExpert, match=f"plankflux review {ws.minboost}"):
        run_pipeline(settings, campaign, ws, oracle)
    boosted = ReviewSession(ws.minboost, campaign, out=ws.minboost_verified)
    assert boosted.mode == "minboost"
    boosted.decide([(item.particle_id, "confirmed", "") for item in boosted.items], 4.0)
    boosted.finish()
    summary = run_pipeline(settings, campaign, ws, oracle)
    assert summary["review_effort"]["verify"]["deleted"] == 1
    time = summary["review_time"]["verify"]
    assert time["seconds"] == pytest.approx(15.0) and time["images"] == len(ids)
    assert sum(c["images"] for c in time["per_class"].values()) == len(ids)
    assert summary["review_time"]["minboost"]["seconds"] == pytest.approx(4.0)
    assert json.loads(ws.summary.read_text())["review_time"] == summary["review_time"]
