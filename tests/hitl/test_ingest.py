"""Verification ingest: confirm / relabel / reject, idempotence, and every bad case."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from hitl_helpers import proposals

from plankflux.data.classes import TRAP_CLASSES
from plankflux.hitl.ingest import (
    VerificationError,
    default_verified_path,
    ingest_verification,
)
from plankflux.hitl.proposals import write_proposal_folder
from plankflux.layout import read_verified

PROPOSALS = proposals(
    [
        ("RR1_0", "aggregate", 0.9, 1),
        ("FC1_1", "aggregate", 0.8, 2),
        ("RR1_2", "long_pellet", 0.75, 1),
        ("FC1_0", "noise", 0.6, 1),
    ]
)
A0, A1, L2, N0 = (
    Path("aggregate/RR1_0__RR1_0.png"),
    Path("aggregate/FC1_1__FC1_1.png"),
    Path("long_pellet/RR1_2__RR1_2.png"),
    Path("noise/FC1_0__FC1_0.png"),
)


@pytest.fixture
def folder(small_campaign, tmp_path) -> Path:
    return write_proposal_folder(PROPOSALS, small_campaign, tmp_path / "round1")


def _move(folder: Path, image: Path, cls: str) -> None:
    os.rename(folder / image, folder / cls / image.name)


def test_confirm_relabel_reject(folder, tmp_path):
    _move(folder, A1, "mini_pellet")  # relabelled
    os.remove(folder / L2)  # rejected
    (folder / "noise" / ".DS_Store").write_bytes(b"finder")  # OS clutter is ignored
    verified = ingest_verification(folder, TRAP_CLASSES)
    assert list(verified.columns) == ["particle_id", "label", "action"]
    assert verified.values.tolist() == [
        ["RR1_0", "aggregate", "confirmed"],
        ["FC1_1", "mini_pellet", "relabelled"],
        ["RR1_2", "", "rejected"],
        ["FC1_0", "noise", "confirmed"],
    ]
    out = default_verified_path(folder)
    assert out == tmp_path / "round1.verified.csv"
    pd.testing.assert_frame_equal(read_verified(out), verified)
    assert out.read_text().splitlines()[3] == "RR1_2,,rejected"


def test_running_twice_gives_the_same_result(folder, tmp_path):
    _move(folder, A0, "noise")
    os.remove(folder / N0)
    first = ingest_verification(folder, TRAP_CLASSES, tmp_path / "v1.csv")
    second = ingest_verification(folder, TRAP_CLASSES, tmp_path / "v2.csv")
    pd.testing.assert_frame_equal(first, second)
    assert (tmp_path / "v1.csv").read_bytes() == (tmp_path / "v2.csv").read_bytes()
    assert not default_verified_path(folder).exists()


def test_minboost_mode_deleted_means_not_that_class(folder, tmp_path):
    os.remove(folder / A0)
    verified = ingest_verification(folder, TRAP_CLASSES, tmp_path / "v.csv", mode="minboost")
    assert verified["action"].tolist() == ["rejected", "confirmed", "confirmed", "confirmed"]
    with pytest.raises(ValueError, match="mode"):
        ingest_verification(folder, TRAP_CLASSES, tmp_path / "v.csv", mode="other")


def _problems(folder: Path, out: Path) -> list[str]:
    with pytest.raises(VerificationError) as err:
        ingest_verification(folder, TRAP_CLASSES, out)
    assert not out.exists()  # nothing written
    assert not default_verified_path(folder).exists()
    assert "nothing was written" in str(err.value)
    for problem in err.value.problems:
        assert problem in str(err.value)
    return err.value.problems


def test_every_bad_case_is_listed_at_once(folder, tmp_path):
    (folder / "aggregate" / "stray.png").write_bytes(b"?")  # not in the manifest
    (folder / "noise" / "another.jpg").write_bytes(b"?")  # not in the manifest
    (folder / "cats").mkdir()  # not a class
    (folder / "aggregate" / "sub").mkdir()  # a folder inside a class folder
    (folder / "loose.png").write_bytes(b"?")  # outside the class folders
    # the same manifest file in two class folders
    (folder / "rhizaria" / L2.name).write_bytes((folder / L2).read_bytes())
    problems = _problems(folder, tmp_path / "v.csv")
    text = "\n".join(problems)
    for path in (
        folder / "aggregate" / "stray.png",
        folder / "noise" / "another.jpg",
        folder / "cats",
        folder / "aggregate" / "sub",
        folder / "loose.png",
        folder / L2,
        folder / "rhizaria" / L2.name,
    ):
        assert str(path) in text, path
    assert len(problems) == 6


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda f: (f / "aggregate" / "x.png").write_bytes(b"?"), "file not in the manifest"),
        (lambda f: (f / "Aggregates").mkdir(), "folder is not a class"),
        (
            lambda f: (f / "swimmer" / N0.name).symlink_to(f / N0),
            "present in 2 class folders",
        ),
        (lambda f: (f / "manifest.csv").unlink(), "manifest.csv not found"),
        (lambda f: (f / "manifest.csv").write_bytes(b"\x00\xff\xfe"), "cannot be read as CSV"),
        (lambda f: (f / "manifest.csv").write_text(""), "cannot be read as CSV"),
        (
            lambda f: (f / "manifest.csv").write_text("particle_id,image\nRR1_0,aggregate/a\n"),
            "missing column(s) proposed_label, score, rank",
        ),
    ],
)
def test_each_bad_case(folder, tmp_path, edit, expected):
    edit(folder)
    problems = _problems(folder, tmp_path / "v.csv")
    assert any(expected in p for p in problems), problems
    assert all(str(folder) in p or "FC1_0" in p for p in problems)


def test_manifest_inconsistent_with_itself(folder, tmp_path):
    manifest = folder / "manifest.csv"
    frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    frame.loc[1, "particle_id"] = "RR1_0"
    frame.loc[2, "proposed_label"] = "cat"
    frame.to_csv(manifest, index=False)
    problems = _problems(folder, tmp_path / "v.csv")
    assert any("particle_id 'RR1_0' listed more than once" in p for p in problems)
    assert any("line 4: proposed_label 'cat' is not a class" in p for p in problems)


def test_missing_folder(tmp_path):
    problems = _problems(tmp_path / "nowhere", tmp_path / "v.csv")
    assert problems == [f"{tmp_path / 'nowhere'}: folder not found"]
