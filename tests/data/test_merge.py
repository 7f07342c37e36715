"""Several deployments in one campaign: ``plankflux campaign merge`` and
``plankflux import ... --into``; unlabelled deployments with ``--unlabelled``."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from campaign_helpers import make_campaign
from PIL import Image

from plankflux.cli.main import main
from plankflux.data.campaign import load_campaign
from plankflux.data.merge import HISTORY_DIR


def _digests(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _second_deployment(root):
    """A campaign with domain JC, sample JC1, ids JC1_*: no clash with make_campaign's."""
    camp = make_campaign(root)
    for name in ("particles.csv", "samples.csv"):
        path = camp / name
        path.write_text(path.read_text().replace("RR1", "JC1").replace(",RR,", ",JC,"))
    for image in (camp / "images").glob("RR1_*"):
        image.rename(image.with_name(image.name.replace("RR1", "JC1")))
    particles = pd.read_csv(camp / "particles.csv", dtype=str, keep_default_na=False)
    particles = particles[particles["domain"] == "JC"]
    particles.to_csv(camp / "particles.csv", index=False)
    samples = pd.read_csv(camp / "samples.csv", dtype=str, keep_default_na=False)
    samples[samples["domain"] == "JC"].to_csv(camp / "samples.csv", index=False)
    return camp


def test_merge_writes_a_new_campaign_pointing_at_both_sets_of_images(tmp_path, capsys):
    a, b = make_campaign(tmp_path / "a"), _second_deployment(tmp_path / "b")
    before = {**_digests(a), **{f"b/{k}": v for k, v in _digests(b).items()}}
    out = tmp_path / "merged"
    assert main(["campaign", "merge", str(a), str(b), "--out", str(out)]) == 0
    assert "merged 2 campaigns" in capsys.readouterr().out
    merged = load_campaign(out, check_images="decode")
    assert sorted(merged.particles["domain"].unique()) == ["FC", "JC", "RR"]
    assert len(merged.particles) == 9 and len(merged.samples) == 3
    jc = merged.particles.set_index("particle_id").loc["JC1_0"]
    assert merged.image_path(jc["image"]) == (b / "images" / "JC1_0.png").resolve()
    assert {**_digests(a), **{f"b/{k}": v for k, v in _digests(b).items()}} == before


def test_merge_refuses_clashing_ids_and_unknown_labels_naming_them(tmp_path, capsys):
    a, b = make_campaign(tmp_path / "a"), make_campaign(tmp_path / "b")  # the same ids
    (b / "classes.txt").write_text("aggregate\nlong_pellet\ncopepod\n")
    particles = pd.read_csv(b / "particles.csv", dtype=str, keep_default_na=False)
    particles.loc[0, "label"] = "copepod"
    particles.to_csv(b / "particles.csv", index=False)
    assert main(["campaign", "merge", str(a), str(b), "--out", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert "particle_id 'RR1_0' is in both" in err and "sample_id 'FC1' is in both" in err
    assert "label(s) ['copepod'] are not in the class list" in err
    assert not (tmp_path / "m").exists()


def test_import_into_adds_an_unlabelled_deployment_without_class_names_in_ids(tmp_path, capsys):
    camp = make_campaign(tmp_path / "camp")
    original = (camp / "particles.csv").read_text()
    src = tmp_path / "deployment2"
    for i, rel in enumerate(["x1.png", "copepod/x2.png", "copepod/deeper/x3.jpg"]):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((6, 6, 3), i * 50, np.uint8)).save(src / rel)
    code = main(
        ["import", "folders", str(src), "--unlabelled", "--domain", "D2", "--into", str(camp)]
    )
    assert code == 0, capsys.readouterr().err
    merged = load_campaign(camp, check_images="decode")
    new = merged.particles[merged.particles["domain"] == "D2"]
    assert len(new) == 3 and (new["label"] == "").all()
    assert not new["particle_id"].str.contains("copepod").any()
    assert set(merged.samples["sample_id"]) == {"RR1", "FC1", "D2"}
    (history,) = (camp / HISTORY_DIR).iterdir()
    assert (history / "particles.csv").read_text() == original
    # A second import of the same deployment clashes and changes nothing.
    after = (camp / "particles.csv").read_text()
    code = main(
        ["import", "folders", str(src), "--unlabelled", "--domain", "D2", "--into", str(camp)]
    )
    assert code == 1 and "is in both" in capsys.readouterr().err
    assert (camp / "particles.csv").read_text() == after


def test_a_folder_import_without_labels_points_at_unlabelled(tmp_path, capsys):
    src = tmp_path / "flat"
    src.mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(src / "a.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(src / "b.png")
    (src / "unsorted").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(src / "unsorted" / "c.png")
    code = main(["import", "folders", str(src), "--out", str(tmp_path / "c")])
    assert code == 1
    assert "--unlabelled" in capsys.readouterr().err


def test_importing_images_already_in_the_campaign_is_refused(tmp_path, capsys):
    """ "All the images" imported again as the unlabelled deployment would put the labelled
    training images into the predicted domain: refused, the campaign unchanged."""
    camp = make_campaign(tmp_path / "camp")
    before = (camp / "particles.csv").read_bytes()
    code = main(
        ["import", "folders", str(camp / "images"), "--unlabelled", "--domain", "D2",
         "--into", str(camp)]
    )  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "image file " in err and "RR1_0.png' is in both" in err
    assert (camp / "particles.csv").read_bytes() == before
