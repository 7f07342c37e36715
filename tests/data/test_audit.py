"""plankflux validate: byte-identical images filed twice, images too small or thin to show a
particle, classes too small to split."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
from campaign_helpers import make_campaign
from PIL import Image

from plankflux.cli.main import main
from plankflux.data.audit import degenerate_images, duplicate_images, unsplittable_classes
from plankflux.data.campaign import load_campaign


def _unique_campaign(root, n_per_sample: int = 3):
    """The hand-made campaign with every image made distinct (its images repeat per sample)."""
    camp = make_campaign(root, n_per_sample)
    for i, path in enumerate(sorted((camp / "images").iterdir())):
        Image.fromarray(np.full((8, 12, 3), i, dtype=np.uint8)).save(path)
    return camp


def _copy_image(campaign, src: str, dst: str) -> None:
    shutil.copy2(campaign / "images" / f"{src}.png", campaign / "images" / f"{dst}.png")


def test_a_copy_under_another_label_is_an_error_and_under_the_same_a_warning(tmp_path, capsys):
    camp = _unique_campaign(tmp_path / "c")  # RR1_0 aggregate, RR1_1 long_pellet, RR1_2 ""
    _copy_image(camp, "RR1_0", "RR1_1")  # same pixels, different label
    _copy_image(camp, "FC1_0", "FC1_2")  # same pixels, second one unlabelled
    errors, warnings = duplicate_images(load_campaign(camp))
    assert [str(e) for e in errors] == [
        "particles.csv line 2 (particle_id 'RR1_0'), column 'image': the same image as "
        "'RR1_1' (line 3), but labelled aggregate / long_pellet: keep one particle"
    ]
    assert len(warnings) == 1 and "'FC1_2' (line 7)" in str(warnings[0])
    assert main(["validate", str(camp)]) == 1
    assert "labelled aggregate / long_pellet" in capsys.readouterr().err


def test_a_copy_under_the_same_label_is_reported_but_validates(tmp_path, capsys):
    camp = _unique_campaign(tmp_path / "c")
    _copy_image(camp, "FC1_0", "FC1_2")
    assert main(["validate", str(camp)]) == 0
    out = capsys.readouterr().out
    assert "warning: particles.csv line 5 (particle_id 'FC1_0')" in out
    assert out.startswith("OK ")


def test_placeholder_and_stripe_images_are_warned_about_but_validate(tmp_path, capsys):
    camp = _unique_campaign(tmp_path / "c")  # 12x8 images: fine
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(camp / "images" / "RR1_1.png")
    Image.fromarray(np.zeros((1, 20000), np.uint8)).save(camp / "images" / "FC1_0.png")
    Image.fromarray(np.zeros((3, 150), np.uint8)).save(camp / "images" / "FC1_1.png")  # 3 px
    Image.fromarray(np.zeros((10, 500), np.uint8)).save(camp / "images" / "FC1_2.png")  # 50:1
    warnings = [str(w) for w in degenerate_images(load_campaign(camp))]
    assert [w.split(": ", 1)[0] for w in warnings] == [
        "particles.csv line 3 (particle_id 'RR1_1'), column 'image'",
        "particles.csv line 5 (particle_id 'FC1_0'), column 'image'",
        "particles.csv line 6 (particle_id 'FC1_1'), column 'image'",
    ]
    assert "1x1 pixels: a side under 4 px" in warnings[0]
    assert "20000x1 pixels: a side under 4 px" in warnings[1]
    assert "150x3 pixels: a side under 4 px" in warnings[2]
    Image.fromarray(np.zeros((10, 501), np.uint8)).save(camp / "images" / "FC1_2.png")
    assert "501x10 pixels: an aspect ratio above 50" in str(
        degenerate_images(load_campaign(camp))[-1]
    )
    assert main(["validate", str(camp)]) == 0  # warnings, not errors
    out = capsys.readouterr().out
    assert out.startswith("OK ") and out.count("too small or thin to show a particle") == 4


def test_classes_too_small_for_a_validation_split_are_named(tmp_path, capsys):
    camp = _unique_campaign(tmp_path / "c", n_per_sample=6)
    particles = pd.read_csv(camp / "particles.csv", dtype=str, keep_default_na=False)
    assert particles[particles["domain"] == "RR"]["label"].value_counts().to_dict() == {
        "aggregate": 2,
        "long_pellet": 2,
        "": 2,
    }
    lines = unsplittable_classes(load_campaign(camp))
    assert len(lines) == 4  # aggregate and long_pellet in RR and in FC, 2 images each
    assert lines[0].startswith("domain FC, class 'aggregate': 2 labelled image(s), too few")
    particles.loc[particles["domain"] == "RR", "label"] = "aggregate"  # 6 images: 1 to val
    particles.to_csv(camp / "particles.csv", index=False)
    assert not any("domain RR" in line for line in unsplittable_classes(load_campaign(camp)))
    main(["validate", str(camp)])
    assert "note: domain FC, class 'long_pellet': 2 labelled image(s)" in capsys.readouterr().out


def test_training_says_which_classes_never_reach_validation(tmp_path, caplog):
    from plankflux.datamodules.trap import TrapDataModule

    camp = _unique_campaign(tmp_path / "c")
    dm = TrapDataModule(str(camp), target_domain="FC", train_domains=["RR"], image_size=8)
    with caplog.at_level("WARNING", logger="plankflux.datamodules.trap"):
        dm.setup("fit")
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(m.startswith("domain RR, class 'aggregate': 1 labelled image(s)") for m in warned)
    assert not any("domain FC" in m for m in warned)  # the target is not trained on
