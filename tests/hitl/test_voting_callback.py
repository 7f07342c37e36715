"""The VotingProposals callback reads the ensemble's score table and writes the folder."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from plankflux.callbacks.prediction_writer import SCORES_FILE, EnsembleScoreWriter, scores_frame
from plankflux.callbacks.voting_proposals import VotingProposals
from plankflux.data.campaign import load_campaign
from plankflux.data.classes import TRAP_CLASSES


def _trainer(campaign_root, writer_dir, rank=0, writers=1):
    campaign = load_campaign(campaign_root)
    callbacks = [EnsembleScoreWriter(writer_dir) for _ in range(writers)]
    datamodule = SimpleNamespace(campaign=campaign, class_names=TRAP_CLASSES)
    return SimpleNamespace(global_rank=rank, callbacks=callbacks, datamodule=datamodule)


def _write_scores(path, campaign_root):
    ids = load_campaign(campaign_root).particles["particle_id"].to_numpy()
    probs = np.full((2, len(ids), len(TRAP_CLASSES)), 0.01, dtype=np.float32)
    probs[:, :, 0] = [[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]]
    probs[1, 2, 3] = 0.95  # member 1 disagrees on the third particle
    path.parent.mkdir(parents=True, exist_ok=True)
    scores_frame(ids, probs, TRAP_CLASSES).to_parquet(path, index=False)
    return ids


def test_writes_the_top_k_proposal_folder(small_campaign, tmp_path):
    ids = _write_scores(tmp_path / "pred" / SCORES_FILE, small_campaign)
    callback = VotingProposals(tmp_path / "proposals", k=2)
    callback.on_predict_end(_trainer(small_campaign, tmp_path / "pred"), None)
    manifest = pd.read_csv(tmp_path / "proposals" / "manifest.csv", dtype={"particle_id": str})
    assert manifest["particle_id"].tolist() == [ids[0], ids[1]]
    assert manifest["proposed_label"].tolist() == ["aggregate", "aggregate"]
    assert manifest["rank"].tolist() == [1, 2]
    assert manifest["score"].tolist() == pytest.approx([0.9, 0.8])


def test_explicit_scores_path_links_and_other_ranks(small_campaign, tmp_path):
    _write_scores(tmp_path / "elsewhere.parquet", small_campaign)
    callback = VotingProposals(
        tmp_path / "p", k=1, link=True, scores_path=tmp_path / "elsewhere.parquet"
    )
    callback.on_predict_end(_trainer(small_campaign, tmp_path / "x", rank=1), None)
    assert not (tmp_path / "p").exists()  # only rank 0 writes
    callback.on_predict_end(_trainer(small_campaign, tmp_path / "x", writers=0), None)
    manifest = pd.read_csv(tmp_path / "p" / "manifest.csv")
    assert len(manifest) == 1 and (tmp_path / "p" / manifest["image"][0]).is_symlink()


def test_needs_a_score_source(small_campaign, tmp_path):
    with pytest.raises(RuntimeError, match="EnsembleScoreWriter"):
        VotingProposals(tmp_path / "p").on_predict_end(
            _trainer(small_campaign, tmp_path, writers=0), None
        )
    with pytest.raises(ValueError, match="k must be"):
        VotingProposals(tmp_path / "p", k=0)
