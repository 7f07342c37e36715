"""Simulated expert on the synthetic tiny campaign, through the real folder round trip."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hitl_helpers import checksums

from plankflux.data.campaign import load_campaign
from plankflux.data.classes import TRAP_CLASSES
from plankflux.hitl.ingest import ingest_verification
from plankflux.hitl.minboost import minboost_candidates
from plankflux.hitl.proposals import write_proposal_folder
from plankflux.hitl.simulated_expert import ReviewEffort, simulate_expert, truth_from_campaign
from plankflux.hitl.voting import consensus, top_k_per_class
from plankflux.layout import read_verified
from plankflux.synthetic.trap import generate_trap_campaign

CLASSES = list(TRAP_CLASSES)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory) -> Path:
    return generate_trap_campaign(tmp_path_factory.mktemp("hitl") / "c", "tiny", 0)


def _scores(campaign: Path) -> pd.DataFrame:
    """Three members on RR: every 4th particle unanimously wrong, every 7th not unanimous."""
    truth, _ = truth_from_campaign(campaign)
    particles = load_campaign(campaign, check_images="none").particles
    ids = particles.loc[particles["domain"] == "RR", "particle_id"].to_numpy()
    true = np.array([CLASSES.index(truth[p]) for p in ids])
    i = np.arange(len(ids))
    predicted = np.where(i % 4 == 1, (true + 1) % len(CLASSES), true)
    probs = np.full((3, len(ids), len(CLASSES)), 0.02)
    probs[:, i, predicted] = 0.5 + 0.004 * i  # distinct scores: no ties
    probs[2, i[i % 7 == 3], (predicted[i % 7 == 3] + 2) % len(CLASSES)] = 0.99
    frames = [pd.DataFrame(probs[m], columns=CLASSES).assign(member=m) for m in range(3)]
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "particle_id", np.tile(ids, 3))
    return table[["particle_id", "member", *CLASSES]]


def _check_verified(verified, manifest, truth, ambiguous, effort):
    kept = verified[verified["action"] != "rejected"]
    assert (kept["label"] == kept["particle_id"].map(truth)).all()
    rejected = set(verified.loc[verified["action"] == "rejected", "particle_id"])
    counts = verified["action"].value_counts()
    assert effort.shown == len(manifest) == len(verified)
    assert effort.confirmed + effort.moved + effort.deleted == effort.shown
    assert effort.confirmed == counts.get("confirmed", 0)
    assert effort.moved == counts.get("relabelled", 0)
    assert effort.deleted == counts.get("rejected", 0)  # one per copy (minboost: per class)
    assert kept["particle_id"].is_unique  # at most one kept verdict per particle
    return rejected


def test_verify_then_minboost_round_trip(campaign, tmp_path):
    before = checksums(campaign)
    truth, ambiguous = truth_from_campaign(campaign)
    assert len(truth) == 350 and ambiguous
    scores = _scores(campaign)

    # Round 1: voting proposals, verified by moving and deleting files.
    proposals = top_k_per_class(consensus(scores, CLASSES), 1000, CLASSES)
    folder = write_proposal_folder(proposals, campaign, tmp_path / "top1k")
    effort = simulate_expert(folder, truth, ambiguous)
    manifest = pd.read_csv(folder / "manifest.csv", dtype=str)
    wrong = manifest["proposed_label"] != manifest["particle_id"].map(truth)
    is_ambiguous = manifest["particle_id"].isin(ambiguous)
    assert effort == ReviewEffort(
        shown=len(manifest),
        confirmed=int((~wrong & ~is_ambiguous).sum()),
        moved=int((wrong & ~is_ambiguous).sum()),
        deleted=int(is_ambiguous.sum()),
    )
    assert effort.moved > 0 and effort.deleted > 0 and effort.confirmed > 0
    verified = ingest_verification(folder, CLASSES)
    rejected = _check_verified(verified, manifest, truth, ambiguous, effort)
    assert rejected == set(manifest["particle_id"][is_ambiguous])

    # Rerunning the expert changes nothing and reports the same effort.
    listing = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    assert simulate_expert(folder, truth, ambiguous) == effort
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == listing

    # Round 2: minboost candidates for every class (min_verified is high), pruned.
    shown = set(manifest["particle_id"])
    verified = read_verified(folder.with_name("top1k.verified.csv"))
    candidates = minboost_candidates(scores, verified, shown, CLASSES, min_verified=1000, k=5)
    assert len(candidates) and not set(candidates["particle_id"]) & shown
    boost = write_proposal_folder(candidates, campaign, tmp_path / "minboost", link=True)
    effort2 = simulate_expert(boost, truth, ambiguous, mode="minboost")
    manifest2 = pd.read_csv(boost / "manifest.csv", dtype=str)
    verified2 = ingest_verification(boost, CLASSES, mode="minboost")
    _check_verified(verified2, manifest2, truth, ambiguous, effort2)
    assert effort2.moved == 0 and "relabelled" not in set(verified2["action"])
    wrong2 = manifest2["proposed_label"] != manifest2["particle_id"].map(truth)
    assert effort2.deleted == int((wrong2 | manifest2["particle_id"].isin(ambiguous)).sum())

    assert checksums(campaign) == before  # originals byte-identical, none moved or added


def test_unknown_truth_and_outside_class_list_are_deleted(campaign, tmp_path):
    particles = load_campaign(campaign, check_images="none").particles
    ids = particles["particle_id"].head(3).tolist()
    proposals = pd.DataFrame(
        {"particle_id": ids, "proposed_label": "aggregate", "score": 0.5, "rank": 1}
    )
    folder = write_proposal_folder(proposals, campaign, tmp_path / "p")
    truth = {ids[0]: "aggregate", ids[1]: "jellyfish"}
    effort = simulate_expert(folder, truth, classes=CLASSES)
    assert effort == ReviewEffort(shown=3, confirmed=1, moved=0, deleted=2, unknown=1)
    verified = ingest_verification(folder, CLASSES)
    assert verified["action"].tolist() == ["confirmed", "rejected", "rejected"]


def test_refuses_to_contradict_earlier_edits(campaign, tmp_path):
    particles = load_campaign(campaign, check_images="none").particles
    ids = particles["particle_id"].head(2).tolist()
    proposals = pd.DataFrame(
        {"particle_id": ids, "proposed_label": "noise", "score": 0.5, "rank": 1}
    )
    folder = write_proposal_folder(proposals, campaign, tmp_path / "p")
    kept = folder / "noise" / os.listdir(folder / "noise")[0]
    os.remove(kept)
    before = sorted(folder.rglob("*"))
    with pytest.raises(RuntimeError, match="already deleted"):
        simulate_expert(folder, dict.fromkeys(ids, "noise"))
    assert sorted(folder.rglob("*")) == before


def test_truth_from_the_label_column(small_campaign):
    truth, ambiguous = truth_from_campaign(small_campaign)
    assert truth == {
        "RR1_0": "aggregate",
        "RR1_1": "long_pellet",
        "FC1_0": "aggregate",
        "FC1_1": "long_pellet",
    }
    assert ambiguous == set()


def test_a_particle_in_two_minboost_folders_is_resolved_by_its_placement(campaign, tmp_path):
    """Paper A proposes per minority class, so one image can sit in two class folders;
    the class folder the expert leaves it in decides, and leaving it in both is refused."""
    from plankflux.hitl.ingest import VerificationError

    truth, _ = truth_from_campaign(campaign)
    particles = load_campaign(campaign, check_images="none").particles
    pid = next(p for p in particles["particle_id"] if truth[p] == "aggregate")
    other = next(p for p in particles["particle_id"] if truth[p] == "mini_pellet")
    candidates = pd.DataFrame(
        {
            "particle_id": [pid, pid, other],
            "proposed_label": ["rhizaria", "aggregate", "rhizaria"],
            "score": [0.6, 0.5, 0.4],
            "rank": [1, 1, 2],
        }
    )
    folder = write_proposal_folder(candidates, campaign, tmp_path / "boost", link=True)
    manifest = pd.read_csv(folder / "manifest.csv", dtype=str)
    name = manifest["image"].iat[0].split("/")[1]
    assert (folder / "rhizaria" / name).is_symlink() and (folder / "aggregate" / name).is_symlink()
    # A person who leaves it in both folders has not decided: ingest says so, writes nothing.
    with pytest.raises(VerificationError, match="proposed for several classes"):
        ingest_verification(folder, CLASSES, out_path=tmp_path / "v.csv", mode="minboost")
    assert not (tmp_path / "v.csv").exists()

    effort = simulate_expert(folder, truth, set(), mode="minboost")
    assert (effort.shown, effort.confirmed, effort.deleted) == (3, 1, 2)
    assert not (folder / "rhizaria" / name).exists() and (folder / "aggregate" / name).exists()
    verified = ingest_verification(folder, CLASSES, mode="minboost")
    assert verified["particle_id"].tolist() == [pid, pid, other]
    assert verified["action"].tolist() == ["rejected", "confirmed", "rejected"]
    assert verified["label"].tolist() == ["", "aggregate", ""]
    assert simulate_expert(folder, truth, set(), mode="minboost") == effort  # idempotent
