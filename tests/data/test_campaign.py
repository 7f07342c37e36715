"""The campaign format: valid files load; every bad-input case is named precisely."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plankflux.cli.main import main as cli
from plankflux.data.campaign import (
    CampaignError,
    load_campaign,
    validate_campaign,
    write_campaign,
)


def _edit(root: Path, name: str, edit) -> None:
    frame = pd.read_csv(root / name, dtype=str, keep_default_na=False)
    edit(frame)
    frame.to_csv(root / name, index=False)


def _problems(root: Path, check_images: str = "decode") -> list[str]:
    _, problems = validate_campaign(root, check_images)
    return [str(p) for p in problems]


def test_valid_campaign_loads_with_types(small_campaign):
    campaign = load_campaign(small_campaign)
    p = campaign.particles
    assert len(p) == 6 and p["esd_um"].dtype == np.float64
    assert p["esd_um"].tolist() == [100.0, 101.0, 102.0] * 2
    assert (p["label"] == "").sum() == 2
    assert not p["ambiguous"].any()
    assert campaign.samples.set_index("sample_id").loc["FC1", "deployment_days"] == 3.5
    assert "6 particles (4 labelled) in 2 samples" in campaign.summary()


def test_missing_required_column(small_campaign):
    _edit(small_campaign, "particles.csv", lambda f: f.pop("esd_um"))
    assert _problems(small_campaign) == [
        "particles.csv line 1, column 'esd_um': required column is missing"
    ]


def test_duplicate_particle_id_names_both_rows(small_campaign):
    def dup(frame):
        frame.loc[4, "particle_id"] = "RR1_1"

    _edit(small_campaign, "particles.csv", dup)
    assert _problems(small_campaign) == [
        "particles.csv line 6 (particle_id 'RR1_1'), column 'particle_id': "
        "duplicate particle_id (first seen on line 3)"
    ]


def test_missing_image(small_campaign):
    (small_campaign / "images" / "FC1_2.png").unlink()
    problems = _problems(small_campaign, "exists")
    assert len(problems) == 1
    assert problems[0].startswith(
        "particles.csv line 7 (particle_id 'FC1_2'), column 'image': image file is missing"
    )


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_unreadable_image(small_campaign, damage):
    path = small_campaign / "images" / "RR1_0.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not an image at all")
    problems = _problems(small_campaign)
    assert len(problems) == 1
    assert "line 2 (particle_id 'RR1_0'), column 'image': image cannot be decoded" in problems[0]
    # Existence-only checks do not open images.
    assert _problems(small_campaign, "exists") == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "must be > 0, got 0"),
        ("-3.5", "must be > 0, got -3.5"),
        ("NaN", "not a finite number: 'NaN'"),
        ("big", "not a number: 'big'"),
    ],
)
def test_bad_esd(small_campaign, value, message):
    def bad(frame):
        frame.loc[2, "esd_um"] = value

    _edit(small_campaign, "particles.csv", bad)
    assert _problems(small_campaign) == [
        f"particles.csv line 4 (particle_id 'RR1_2'), column 'esd_um': {message}"
    ]


def test_empty_esd_means_unknown(small_campaign):
    def empty(frame):
        frame.loc[2, "esd_um"] = ""

    _edit(small_campaign, "particles.csv", empty)
    campaign = load_campaign(small_campaign)
    assert np.isnan(campaign.particles.loc[2, "esd_um"])


def test_unknown_label(small_campaign):
    def bad(frame):
        frame.loc[3, "label"] = "copepod"

    _edit(small_campaign, "particles.csv", bad)
    assert _problems(small_campaign) == [
        "particles.csv line 5 (particle_id 'FC1_0'), column 'label': unknown class label 'copepod'"
    ]


def test_sample_not_in_samples(small_campaign):
    def bad(frame):
        frame.loc[0, "sample_id"] = "RR9"

    _edit(small_campaign, "particles.csv", bad)
    assert _problems(small_campaign) == [
        "particles.csv line 2 (particle_id 'RR1_0'), column 'sample_id': "
        "sample_id 'RR9' is not in samples.csv"
    ]


@pytest.mark.parametrize("column", ["imaged_area_m2", "deployment_days"])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_non_positive_area_or_days(small_campaign, column, value):
    def bad(frame):
        frame.loc[1, column] = value

    _edit(small_campaign, "samples.csv", bad)
    assert _problems(small_campaign) == [
        f"samples.csv line 3, column '{column}': must be > 0, got {value}"
    ]


def test_every_problem_is_reported_at_once(small_campaign):
    def bad(frame):
        frame.loc[0, "esd_um"] = "-1"
        frame.loc[1, "label"] = "blob"

    _edit(small_campaign, "particles.csv", bad)
    with pytest.raises(CampaignError) as err:
        load_campaign(small_campaign)
    assert len(err.value.problems) == 2
    assert "line 2" in str(err.value) and "line 3" in str(err.value)


def test_skip_unreadable_drops_and_lists(small_campaign):
    (small_campaign / "images" / "RR1_1.png").write_bytes(b"junk")
    campaign = load_campaign(small_campaign, check_images="decode", skip_unreadable=True)
    assert "RR1_1" not in set(campaign.particles["particle_id"])
    assert [p.particle_id for p in campaign.skipped] == ["RR1_1"]


def test_custom_class_list(tmp_path, small_campaign):
    campaign = load_campaign(small_campaign)
    out = write_campaign(
        tmp_path / "c2",
        campaign.particles.assign(
            image=[str(small_campaign / p) for p in campaign.particles["image"]]
        ).replace({"label": {"aggregate": "Copepoda", "long_pellet": "detritus"}}),
        campaign.samples,
        classes=["Copepoda", "detritus"],
    )
    assert (out / "classes.txt").read_text() == "Copepoda\ndetritus\n"
    assert load_campaign(out).classes == ("Copepoda", "detritus")


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_validate_cli_ok_and_problem(small_campaign, capsys):
    before = _tree_digest(small_campaign)
    assert cli(["validate", str(small_campaign)]) == 0
    assert capsys.readouterr().out.startswith(f"OK {small_campaign}: 6 particles (4 labelled)")

    def dup(frame):
        frame.loc[5, "particle_id"] = "RR1_0"

    _edit(small_campaign, "particles.csv", dup)
    before = _tree_digest(small_campaign)
    assert cli(["validate", str(small_campaign)]) == 1
    err = capsys.readouterr().err
    assert "particles.csv line 7 (particle_id 'RR1_0'), column 'particle_id': duplicate" in err
    assert _tree_digest(small_campaign) == before  # validation never writes
