"""Proposal folders: layout, manifest, copies or links, originals untouched, resume."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from hitl_helpers import checksums, proposals

from plankflux.data.campaign import load_campaign
from plankflux.data.classes import TRAP_CLASSES
from plankflux.hitl.proposals import proposal_file_names, write_proposal_folder

PROPOSALS = proposals(
    [
        ("RR1_0", "aggregate", 0.9, 1),
        ("FC1_1", "aggregate", 0.8, 2),
        ("RR1_2", "long_pellet", 0.75, 1),
    ]
)
EXPECTED_IMAGES = [
    "aggregate/RR1_0__RR1_0.png",
    "aggregate/FC1_1__FC1_1.png",
    "long_pellet/RR1_2__RR1_2.png",
]


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def test_layout_manifest_and_copies(small_campaign, tmp_path):
    before = checksums(small_campaign)
    out = write_proposal_folder(PROPOSALS, small_campaign, tmp_path / "top1k")
    assert out == tmp_path / "top1k"
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(TRAP_CLASSES)
    assert _files(out) == sorted([*EXPECTED_IMAGES, "manifest.csv"])

    manifest = pd.read_csv(out / "manifest.csv", dtype={"particle_id": str})
    assert list(manifest.columns) == ["particle_id", "image", "proposed_label", "score", "rank"]
    assert manifest["particle_id"].tolist() == ["RR1_0", "FC1_1", "RR1_2"]
    assert manifest["image"].tolist() == EXPECTED_IMAGES
    assert manifest["proposed_label"].tolist() == ["aggregate", "aggregate", "long_pellet"]
    assert manifest["score"].tolist() == [0.9, 0.8, 0.75]
    assert manifest["rank"].tolist() == [1, 2, 1]

    for image, pid in zip(EXPECTED_IMAGES, manifest["particle_id"], strict=True):
        copy = out / image
        assert not copy.is_symlink()
        assert copy.read_bytes() == (small_campaign / "images" / f"{pid}.png").read_bytes()
    assert checksums(small_campaign) == before  # originals unchanged, none added or moved


def test_links_option(small_campaign, tmp_path):
    before = checksums(small_campaign)
    out = write_proposal_folder(PROPOSALS, small_campaign, tmp_path / "links", link=True)
    for image in EXPECTED_IMAGES:
        link = out / image
        assert link.is_symlink()
        target = Path(os.readlink(link))
        assert target.is_absolute() and target == small_campaign / "images" / target.name
    os.remove(out / EXPECTED_IMAGES[0])  # an expert deletes the link: the original stays
    assert checksums(small_campaign) == before


def test_identical_rerun_does_nothing_even_after_edits(small_campaign, tmp_path):
    out = write_proposal_folder(PROPOSALS, small_campaign, tmp_path / "p")
    os.remove(out / EXPECTED_IMAGES[0])
    os.rename(out / EXPECTED_IMAGES[1], out / "long_pellet" / Path(EXPECTED_IMAGES[1]).name)
    edited = _files(out)
    mtime = (out / "manifest.csv").stat().st_mtime_ns
    write_proposal_folder(PROPOSALS, load_campaign(small_campaign), out)
    assert _files(out) == edited
    assert (out / "manifest.csv").stat().st_mtime_ns == mtime


def test_refuses_a_different_set_or_foreign_content(small_campaign, tmp_path):
    out = write_proposal_folder(PROPOSALS, small_campaign, tmp_path / "p")
    other = PROPOSALS.assign(score=[0.9, 0.8, 0.7])
    with pytest.raises(FileExistsError, match="different proposal set"):
        write_proposal_folder(other, small_campaign, out)

    foreign = tmp_path / "foreign"
    (foreign / "aggregate").mkdir(parents=True)
    (foreign / "aggregate" / "holiday.png").write_bytes(b"x")
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError) as err:
        write_proposal_folder(PROPOSALS, small_campaign, foreign)
    assert str(foreign / "aggregate" / "holiday.png") in str(err.value)
    assert str(foreign / "notes.txt") in str(err.value)
    assert _files(foreign) == ["aggregate/holiday.png", "notes.txt"]


def test_interrupted_run_is_completed(small_campaign, tmp_path):
    out = write_proposal_folder(PROPOSALS, small_campaign, tmp_path / "p")
    manifest = (out / "manifest.csv").read_bytes()
    # as if killed after the first copy: no manifest, a stale temporary file
    (out / "manifest.csv").unlink()
    for image in EXPECTED_IMAGES[1:]:
        (out / image).unlink()
    (out / "aggregate" / ".FC1_1__FC1_1.png.999.partial").write_bytes(b"half")
    write_proposal_folder(PROPOSALS, small_campaign, out)
    assert (out / "manifest.csv").read_bytes() == manifest
    assert _files(out) == sorted([*EXPECTED_IMAGES, "manifest.csv"])


def test_missing_originals_are_all_listed_and_nothing_written(small_campaign, tmp_path):
    (small_campaign / "images" / "RR1_0.png").unlink()
    (small_campaign / "images" / "RR1_2.png").unlink()
    with pytest.raises(FileNotFoundError) as err:
        write_proposal_folder(PROPOSALS, small_campaign, tmp_path / "p")
    assert "RR1_0.png" in str(err.value) and "RR1_2.png" in str(err.value)
    assert not (tmp_path / "p").exists()


def test_bad_proposals_are_refused(small_campaign, tmp_path):
    # Twice for one class is refused; two classes (minboost) are allowed (test_simulated_expert).
    twice = proposals([("RR1_0", "aggregate", 0.9, 1), ("RR1_0", "aggregate", 0.8, 2)])
    with pytest.raises(ValueError, match="more than once"):
        write_proposal_folder(twice, small_campaign, tmp_path / "p")
    with pytest.raises(ValueError, match="not in the campaign"):
        write_proposal_folder(proposals([("nope", "noise", 0.5, 1)]), small_campaign, tmp_path)
    with pytest.raises(ValueError, match="not in the class list"):
        write_proposal_folder(proposals([("RR1_0", "cat", 0.5, 1)]), small_campaign, tmp_path)
    assert not (tmp_path / "p").exists()


def test_file_names_are_safe_unique_and_stable():
    ids = ["RR01_000012", "a/b", "a_b", "X1", "x1", ".hidden"]
    images = ["images/RR01_000012.png", "x/b.png", "y/b.png", "c.jpg", "d.jpg", "e.png"]
    names = proposal_file_names(ids, images)
    assert names[0] == "RR01_000012__RR01_000012.png"
    assert len({n.lower() for n in names}) == len(names)
    assert all("/" not in n and not n.startswith(".") for n in names)
    assert names[1].startswith("a_b-") and names[2].startswith("a_b__")
    assert names == proposal_file_names(ids, images)
    assert proposal_file_names(ids[:2], images[:2])[1] == names[1]  # independent of the set
