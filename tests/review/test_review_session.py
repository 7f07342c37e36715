"""The review session behind ``plankflux review``: the same verified.csv as the folder
workflow, saved as made, resumed, undone, and every bad input told in words."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from review_helpers import checksums, oracle_scores, pipeline_like_workspace

from plankflux.data.campaign import load_campaign
from plankflux.errors import PlankfluxError
from plankflux.hitl.ingest import ingest_verification
from plankflux.hitl.review import (
    MAX_SECONDS_PER_ACTION,
    ReviewError,
    ReviewSession,
    review_state_path,
    review_time,
)


@pytest.fixture
def workspace(tiny_campaign, tmp_path):
    campaign, folder = pipeline_like_workspace(tiny_campaign, tmp_path / "ws")
    return campaign, folder


def _decisions(session: ReviewSession) -> list[tuple[str, str, str]]:
    """One of every verdict, then confirmed: (particle_id, verdict, label)."""
    ids = [item.particle_id for item in session.items]
    chosen = [
        (ids[0], "relabelled", "noise"),
        (ids[1], "wrong", ""),
        (ids[2], "undecided", ""),
        (ids[4], "relabelled", session.items[4].proposed_label),  # back to its own folder
    ]
    done = {pid for pid, _, _ in chosen}
    return chosen + [(pid, "confirmed", "") for pid in ids if pid not in done]


def _same_in_folder(folder: Path, copy: Path, session: ReviewSession, decisions) -> None:
    """Make ``decisions`` by moving and deleting files in a copy of ``folder``."""
    shutil.copytree(folder, copy)
    for pid, verdict, label in decisions:
        image = Path(session.by_id[pid].file)
        if verdict in ("wrong", "undecided"):
            os.remove(copy / image)
        elif verdict == "relabelled" and label != image.parent.name:
            os.rename(copy / image, copy / label / image.name)


def test_identical_decisions_give_a_byte_identical_verified_csv(workspace, tmp_path):
    campaign, folder = workspace
    before = checksums(folder)
    session = ReviewSession(folder, campaign, out=tmp_path / "page.csv")
    decisions = _decisions(session)
    for pid, verdict, label in decisions:
        session.decide([(pid, verdict, label)], seconds=1.5)
    page = session.finish()
    _same_in_folder(folder, tmp_path / "copy", session, decisions)
    ingest_verification(tmp_path / "copy", campaign.classes, tmp_path / "folder.csv")
    assert (tmp_path / "page.csv").read_bytes() == (tmp_path / "folder.csv").read_bytes()
    assert page["action"].value_counts().to_dict() == {
        "confirmed": len(decisions) - 3,
        "relabelled": 1,
        "rejected": 2,
    }
    assert checksums(folder) == before  # the proposal folder is only read
    assert not (folder / "verified.csv").exists()


def test_decisions_are_saved_as_made_and_a_new_session_resumes(workspace, tmp_path):
    campaign, folder = workspace
    first = ReviewSession(folder, campaign)
    ids = [item.particle_id for item in first.items]
    first.decide([(ids[0], "wrong", ""), (ids[1], "confirmed", "")], seconds=4.0)
    state = json.loads(review_state_path(folder).read_text())
    assert state["decisions"][ids[0]] == {"verdict": "wrong", "label": ""}
    again = ReviewSession(folder, campaign)  # a crash, a closed tab: nothing lost
    assert again.decisions == first.decisions
    assert again.seconds == {ids[0]: 2.0, ids[1]: 2.0}
    assert again.undo() == [ids[0], ids[1]]
    assert again.decisions == {} and again.undo() == []
    assert again.progress()["decided"] == 0


def test_undo_restores_an_earlier_verdict(workspace):
    campaign, folder = workspace
    session = ReviewSession(folder, campaign)
    pid = session.items[0].particle_id
    session.decide([(pid, "relabelled", "bubble")])
    session.decide([(pid, "undecided", "")])
    assert session.undo() == [pid]
    assert session.decisions[pid] == {"verdict": "relabelled", "label": "bubble"}


def test_progress_and_review_time_per_class(workspace):
    campaign, folder = workspace
    session = ReviewSession(folder, campaign)
    aggregates = [item.particle_id for item in session.class_items("aggregate")]
    assert [i.score for i in session.class_items("aggregate")] == sorted(
        (i.score for i in session.class_items("aggregate")), reverse=True
    )
    session.decide([(pid, "confirmed", "") for pid in aggregates], seconds=9.0)
    session.decide([(session.class_items("noise")[0].particle_id, "wrong", "")], 1e6)
    progress = session.progress()
    assert progress["classes"]["aggregate"] == {"total": 3, "decided": 3}
    assert progress["decided"] == 4 and progress["total"] == len(session.items)
    time = review_time(folder)
    assert time["per_class"]["aggregate"] == {"images": 3, "seconds": 9.0, "seconds_per_image": 3.0}
    assert time["per_class"]["noise"]["seconds"] == MAX_SECONDS_PER_ACTION  # a break is capped
    assert time["seconds"] == 9.0 + MAX_SECONDS_PER_ACTION and time["images"] == 4


def test_finish_needs_every_decision_and_follows_later_changes(workspace, tmp_path):
    campaign, folder = workspace
    out = tmp_path / "v.csv"
    session = ReviewSession(folder, campaign, out=out)
    ids = [item.particle_id for item in session.items]
    session.decide([(pid, "confirmed", "") for pid in ids[1:]])
    with pytest.raises(PlankfluxError, match="1 of .* images have no decision"):
        session.finish()
    assert not out.exists()
    session.decide([(ids[0], "confirmed", "")])
    session.finish()
    session.decide([(ids[0], "wrong", "")])  # after finishing: the file follows
    assert pd.read_csv(out, dtype=str).iloc[0]["action"] == "rejected"
    session.undo()
    session.undo()  # ids[0] undecided again: the file is marked stale, not deleted
    assert session.finished["stale"] and out.exists()


def test_bad_decisions_are_refused_and_nothing_is_recorded(workspace):
    campaign, folder = workspace
    session = ReviewSession(folder, campaign)
    pid = session.items[0].particle_id
    with pytest.raises(PlankfluxError, match="unknown class 'octopus'"):
        session.decide([(pid, "relabelled", "octopus")])
    with pytest.raises(PlankfluxError, match="'XX_1' is not in this proposal set"):
        session.decide([("XX_1", "confirmed", "")])
    with pytest.raises(PlankfluxError, match="unknown verdict 'maybe'"):
        session.decide([(pid, "maybe", "")])
    with pytest.raises(PlankfluxError, match="unknown class"):
        session.class_items("octopus")
    assert session.decisions == {} and not review_state_path(folder).exists()


def test_a_manifest_naming_unknown_classes_or_particles_is_refused(workspace):
    campaign, folder = workspace
    manifest = folder / "manifest.csv"
    text = manifest.read_text()
    manifest.write_text(text.replace("RR02_000001,", "ZZ_404,", 1))
    with pytest.raises(ReviewError, match="particle_id 'ZZ_404' is not in the campaign"):
        ReviewSession(folder, campaign)
    manifest.write_text(text.replace(",noise,", ",octopus,"))
    with pytest.raises(ReviewError, match="proposed_label 'octopus' is not a class"):
        ReviewSession(folder, campaign)
    with pytest.raises(ReviewError, match="folder not found"):
        ReviewSession(folder.parent / "nowhere", campaign)


def test_a_saved_review_of_another_proposal_set_is_refused(workspace):
    campaign, folder = workspace
    session = ReviewSession(folder, campaign)
    session.decide([(session.items[0].particle_id, "confirmed", "")])
    manifest = folder / "manifest.csv"
    manifest.write_text(manifest.read_text().replace("0.87", "0.86", 1))
    with pytest.raises(ReviewError, match="saved for another manifest.csv"):
        ReviewSession(folder, campaign)
    state = review_state_path(folder)
    state.write_text("{not json")
    with pytest.raises(ReviewError, match="cannot be read"):
        ReviewSession(folder, campaign)


def test_a_vanished_copy_shows_the_original_and_both_gone_shows_none(workspace):
    campaign, folder = workspace
    session = ReviewSession(folder, campaign)
    item = session.items[0]
    os.remove(folder / item.file)
    assert [i.particle_id for i in session.vanished()] == [item.particle_id]
    assert session.image_path(item) == campaign.image_path(item.original)
    moved = campaign.root / "moved.png"
    shutil.copyfile(campaign.image_path(item.original), moved)
    os.remove(campaign.image_path(item.original))
    try:
        assert session.image_path(item) is None
    finally:
        os.replace(moved, campaign.image_path(item.original))  # the campaign is shared


def test_update_folder_on_request_then_ingest_agrees(workspace, tmp_path):
    campaign, folder = workspace
    session = ReviewSession(folder, campaign, out=tmp_path / "page.csv")
    with pytest.raises(PlankfluxError, match="without a decision"):
        session.apply_to_folder()
    for pid, verdict, label in _decisions(session):
        session.decide([(pid, verdict, label)])
    session.finish()
    counts = session.apply_to_folder()
    assert counts == {"kept": len(session.items) - 3, "moved": 1, "deleted": 2}
    ingest_verification(folder, campaign.classes, tmp_path / "folder.csv")
    assert (tmp_path / "page.csv").read_bytes() == (tmp_path / "folder.csv").read_bytes()


def test_member_votes_come_from_the_score_table(workspace):
    campaign, folder = workspace
    scores = oracle_scores(load_campaign(campaign.root, check_images="none"))
    session = ReviewSession(folder, campaign, scores=scores)
    item = session.items[0]
    votes = session.votes[item.particle_id]
    assert [(m, label) for m, label, _ in votes] == [(0, item.proposed_label)] * 1 + [
        (1, item.proposed_label)
    ]
    assert votes[0][2] == pytest.approx(votes[1][2] + 0.05)
    assert len(session.references["aggregate"]) == 6


def test_a_verified_csv_written_by_something_else_is_kept(workspace, tmp_path):
    campaign, folder = workspace
    out = tmp_path / "verified.csv"
    out.write_text("written by plankflux ingest\n")
    session = ReviewSession(folder, campaign, out=out)
    session.decide([(item.particle_id, "confirmed", "") for item in session.items])
    assert session.foreign_out()
    with pytest.raises(PlankfluxError, match="did not write it"):
        session.finish()
    assert out.read_text() == "written by plankflux ingest\n"
    out.unlink()
    session.finish()
    assert not session.foreign_out() and not ReviewSession(folder, campaign, out=out).foreign_out()
