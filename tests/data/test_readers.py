"""Readers that turn source layouts (mpic, class folders, labels CSVs) into campaigns."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from plankflux.cli.main import main
from plankflux.data.campaign import CLASSES_FILE, validate_campaign
from plankflux.data.readers.class_folders import path_id, read_class_folders
from plankflux.data.readers.common import ReaderWarning, SourceError, natural_key
from plankflux.data.readers.mpic import parse_mpic_filename, read_mpic

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def make_image(path: Path, size=(12, 9), value=128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}.get(
        path.suffix.lower(), "JPEG"
    )
    Image.new("L", size, value).save(path, format=fmt)
    return path


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` (hidden ones too): content hash and mtime."""
    out = {}
    for folder, _dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root).as_posix()
        out[rel + "/"] = "dir"
        for name in files:
            path = Path(folder) / name
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[(Path(rel) / name).as_posix()] = f"{digest} {path.stat().st_mtime_ns}"
    return out


def valid(out: Path):
    campaign, problems = validate_campaign(out, check_images="decode")
    assert problems == [], [str(p) for p in problems]
    return campaign


def by_path(campaign, src) -> pd.DataFrame:
    """Particles indexed by their image's path below ``src`` without the suffix."""
    keys = [
        Path(p).relative_to(src).with_suffix("").as_posix() for p in campaign.particles["image"]
    ]
    return campaign.particles.set_index(pd.Index(keys))


def by_id(campaign) -> pd.DataFrame:
    return campaign.particles.set_index("particle_id")


# ----------------------------------------------------------------------------
# mpic layout
# ----------------------------------------------------------------------------

MPIC_HEADER = [
    "filename",
    "label",
    "domain",
    "esd",
    "area",
    "time",
    "sample",
    "measured_flux",
    "measured_flux_e",
    "date",
    "depth",
    "olabel",
]
# filename, label, esd, sample, olabel
MPIC_ROWS = [
    ("RR5_7x_obl_20_18208.jpg", "aggregate", "150.5", "RR5", "dense_detritus"),
    ("RR5_7x_obl_21_18209.png", "long_pellet", "320", "RR5", "long_pellet"),
    ("RR5_10x_obl_11_5.jpg", "none", "80.25", "RR5", "copepod"),
    ("RR6_7x_obl_20_1.jpg", "swimmer", "410", "RR6", "none"),
    ("oddname.jpg", "phyto_round", "45", "RR6", "phytoplankton"),
]
MPIC_SAMPLES = {
    # sample: domain, area, time, measured_flux, measured_flux_e, date, depth
    "RR5": ("RR", "0.0025", "2.5", "1.8", "0.3", "2021-05-03", "105"),
    "RR6": ("RR", "0.0030", "3", "", "", "2021-05-04", "330"),
}


def make_mpic(root: Path, header=MPIC_HEADER, rows=MPIC_ROWS, skip_files=()) -> Path:
    for name, label, *_ in rows:
        if name not in skip_files:
            make_image(root / "imgs" / label / name)
    lines = [",".join(header)]
    for name, label, esd, sample, olabel in rows:
        domain, area, time, flux, flux_e, date, depth = MPIC_SAMPLES[sample]
        values = dict(
            filename=name,
            label=label,
            domain=domain,
            esd=esd,
            area=area,
            time=time,
            sample=sample,
            measured_flux=flux,
            measured_flux_e=flux_e,
            date=date,
            depth=depth,
            olabel=olabel,
        )
        lines.append(",".join(values[k] for k in MPIC_HEADER))
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def test_parse_mpic_filename():
    fields = parse_mpic_filename("RR5_7x_obl_20_18208.jpg")
    assert fields == {
        "sample": "RR5",
        "magnification": "7",
        "view": "obl",
        "field_plane": "20",
        "number": "18208",
    }
    assert parse_mpic_filename("JC49_12.5x_obl_3_7.png")["magnification"] == "12.5"
    assert parse_mpic_filename("oddname.jpg") is None
    assert parse_mpic_filename("RR5_123456789012345678901x_obl_20_1.jpg") is None
    assert parse_mpic_filename("RR5_1000x_obl_20_1.jpg")["magnification"] == "1000"


def test_mpic_round_trip(tmp_path):
    src = make_mpic(tmp_path / "src")
    before = snapshot(src)
    out = read_mpic(src, tmp_path / "camp")
    assert snapshot(src) == before, "the reader changed the source"
    assert not (out / CLASSES_FILE).exists()  # the 14 classes of Paper A
    campaign = valid(out)
    p = by_id(campaign)

    assert list(campaign.particles["particle_id"]) == sorted(p.index, key=natural_key)
    row = p.loc["RR5_7x_obl_20_18208"]
    assert row["esd_um"] == 150.5
    assert row["label"] == "aggregate"
    assert row["label_original"] == "dense_detritus"  # old names kept verbatim
    assert row["magnification"] == 7.0
    assert row["domain"] == "RR" and row["sample_id"] == "RR5"
    assert Path(row["image"]).is_absolute()
    assert Path(row["image"]) == (src / "imgs" / "aggregate" / "RR5_7x_obl_20_18208.jpg")

    assert p.loc["RR5_10x_obl_11_5", "label"] == ""  # none -> unlabelled
    assert p.loc["RR5_10x_obl_11_5", "magnification"] == 10.0
    assert p.loc["RR5_10x_obl_11_5", "image"].endswith("imgs/none/RR5_10x_obl_11_5.jpg")
    assert p.loc["RR6_7x_obl_20_1", "label_original"] == ""  # olabel none -> ""
    assert math.isnan(p.loc["oddname", "magnification"])
    assert p.loc["RR5_7x_obl_21_18209", "image"].endswith(".png")

    s = campaign.samples.set_index("sample_id")
    assert list(s.index) == ["RR5", "RR6"]
    assert s.loc["RR5", "imaged_area_m2"] == 0.0025
    assert s.loc["RR5", "deployment_days"] == 2.5
    assert s.loc["RR5", "depth_m"] == 105
    assert s.loc["RR5", "measured_flux_mmol_m2_d"] == 1.8
    assert s.loc["RR5", "measured_flux_sd"] == 0.3
    assert s.loc["RR5", "date"] == "2021-05-03"
    assert math.isnan(s.loc["RR6", "measured_flux_mmol_m2_d"])
    assert s.loc["RR6", "deployment_days"] == 3


def test_mpic_column_name_variants(tmp_path):
    header = [
        " Filename",
        "label",
        "Domain ",
        "esd (µm)",
        "area (m²)",
        "time (days)",
        "sample",
        "measured_flux",
        "measured_flux_e",
        "date",
        "depth",
        "olabel",
    ]
    src = make_mpic(tmp_path / "src", header=header)
    campaign = valid(read_mpic(src, tmp_path / "camp"))
    assert by_id(campaign).loc["RR6_7x_obl_20_1", "esd_um"] == 410
    assert campaign.samples.set_index("sample_id").loc["RR6", "imaged_area_m2"] == 0.003


def test_mpic_inconsistent_sample_values(tmp_path):
    src = make_mpic(tmp_path / "src")
    meta = pd.read_csv(src / "metadata.csv", dtype=str, keep_default_na=False)
    meta.loc[4, "depth"] = "331"  # RR6 row 2 disagrees with the other RR6 row
    meta.loc[3, "time"] = "9"
    meta.to_csv(src / "metadata.csv", index=False)
    with pytest.raises(SourceError) as info:
        read_mpic(src, tmp_path / "camp")
    text = str(info.value)
    assert "sample 'RR6'" in text and "'depth'" in text and "'time'" in text
    assert not (tmp_path / "camp" / "particles.csv").exists()


def test_mpic_area_per_magnification_reaches_the_particles_and_the_flux(tmp_path):
    """Paper A divides each particle's carbon by the area imaged at its magnification."""
    from plankflux.flux.tables import flux_by_sample

    src = make_mpic(tmp_path / "src")
    meta = pd.read_csv(src / "metadata.csv", dtype=str, keep_default_na=False)
    meta.loc[2, "area"] = "0.0005"  # RR5's 10x image: a smaller area was imaged
    meta.to_csv(src / "metadata.csv", index=False)
    out = read_mpic(src, tmp_path / "camp")
    campaign = valid(out)
    p = by_id(campaign)
    assert p.loc["RR5_10x_obl_11_5", "imaged_area_m2"] == 0.0005
    assert p.loc["RR5_7x_obl_20_18208", "imaged_area_m2"] == 0.0025
    assert campaign.samples.set_index("sample_id").loc["RR5", "imaged_area_m2"] == 0.0025

    # Imaged on 0.0005 m² instead of the sample's 0.0025 m², the 10x particle's carbon
    # counts 5 times: it adds flux(own area) - flux(sample area) = flux(own) * (1 - 1/5).
    labelled = campaign.particles.assign(label="aggregate", label_original="aggregate")
    frames = (labelled, campaign.samples)
    per_area = flux_by_sample(frames, sample_ids=["RR5"]).set_index("class_group")
    equal = flux_by_sample(
        (labelled.assign(imaged_area_m2=np.nan), campaign.samples), sample_ids=["RR5"]
    ).set_index("class_group")
    only_10x = flux_by_sample(
        (labelled[labelled["particle_id"] == "RR5_10x_obl_11_5"], campaign.samples),
        sample_ids=["RR5"],
    ).set_index("class_group")
    gained = per_area.loc["total", "flux_mmol_m2_d"] - equal.loc["total", "flux_mmol_m2_d"]
    own = only_10x.loc["total", "flux_mmol_m2_d"]
    assert own > 0 and gained == pytest.approx(own * (1 - 0.0005 / 0.0025))


def test_mpic_missing_file_is_named(tmp_path):
    src = make_mpic(tmp_path / "src", skip_files=("RR6_7x_obl_20_1.jpg",))
    make_image(src / "imgs" / "aggregate" / "RR6_7x_obl_20_1.jpg")  # wrong folder
    with pytest.raises(SourceError) as info:
        read_mpic(src, tmp_path / "camp")
    text = str(info.value)
    assert "imgs/swimmer/RR6_7x_obl_20_1.jpg is missing" in text
    assert "line 5" in text and "found in imgs/aggregate/" in text


def test_mpic_unknown_labels_all_reported(tmp_path):
    rows = list(MPIC_ROWS)
    rows[0] = ("RR5_7x_obl_20_18208.jpg", "blob", "150.5", "RR5", "dense_detritus")
    rows[1] = ("RR5_7x_obl_21_18209.png", "copepod", "320", "RR5", "mystery")
    src = make_mpic(tmp_path / "src", rows=rows)
    with pytest.raises(SourceError) as info:
        read_mpic(src, tmp_path / "camp")
    text = str(info.value)
    assert "'blob'" in text and "'copepod'" in text and "'mystery'" in text
    assert "olabel only" in text  # copepod is an old name: allowed in olabel, not label


def test_mpic_bad_numbers_and_missing_columns(tmp_path):
    rows = list(MPIC_ROWS)
    rows[2] = ("RR5_10x_obl_11_5.jpg", "none", "-3", "RR5", "copepod")
    rows[3] = ("RR6_7x_obl_20_1.jpg", "swimmer", "big", "RR6", "none")
    src = make_mpic(tmp_path / "src", rows=rows)
    with pytest.raises(SourceError, match=r"line 4, column 'esd': must be > 0") as info:
        read_mpic(src, tmp_path / "camp")
    assert "line 5, column 'esd': not a number: 'big'" in str(info.value)

    src2 = make_mpic(tmp_path / "src2")
    meta = pd.read_csv(src2 / "metadata.csv", dtype=str).drop(columns=["esd", "sample"])
    meta.to_csv(src2 / "metadata.csv", index=False)
    with pytest.raises(SourceError, match="required column 'sample' is missing"):
        read_mpic(src2, tmp_path / "camp2")


def test_readers_refuse_existing_campaign_and_output_inside_source(tmp_path):
    src = make_mpic(tmp_path / "src")
    out = tmp_path / "camp"
    out.mkdir()
    (out / "particles.csv").write_text("particle_id\n")
    with pytest.raises(ValueError, match="already holds a campaign"):
        read_mpic(src, out)
    with pytest.raises(ValueError, match="inside the source"):
        read_mpic(src, src / "campaign")
    with pytest.raises(ValueError, match="not an mpic layout"):
        read_mpic(tmp_path / "camp", tmp_path / "other")


# ----------------------------------------------------------------------------
# class folders and labels CSVs
# ----------------------------------------------------------------------------


def make_class_tree(root: Path) -> Path:
    make_image(root / "Alpha" / "a1.jpg")
    make_image(root / "Alpha" / "a2.PNG")
    make_image(root / "Alpha" / ".hidden.jpg")
    (root / "Alpha" / ".DS_Store").write_bytes(b"\0\1")
    (root / "Alpha" / "notes.txt").write_text("not an image")
    make_image(root / "Beta" / "b1.jpeg")
    make_image(root / "Beta" / "more" / "b2.tif")  # one sub-folder level is read
    make_image(root / ".git" / "x.jpg")  # hidden folder: ignored
    return root


def test_class_folders_default(tmp_path):
    src = make_class_tree(tmp_path / "src")
    before = snapshot(src)
    with pytest.warns(ReaderWarning) as record:
        out = read_class_folders(src, tmp_path / "camp", domain="LAB")
    assert snapshot(src) == before, "the reader changed the source"
    messages = " | ".join(str(w.message) for w in record)
    assert "esd_um is empty" in messages and "notes.txt" in messages

    campaign = valid(out)
    assert campaign.classes == ("Alpha", "Beta")
    assert (out / CLASSES_FILE).read_text() == "Alpha\nBeta\n"
    p = by_path(campaign, src)
    assert sorted(p.index) == ["Alpha/a1", "Alpha/a2", "Beta/b1", "Beta/more/b2"]
    # Ids are stable hashes of the relative path: no class name for the expert to see.
    ids = list(campaign.particles["particle_id"])
    assert all(i.startswith("img_") and len(i) == 16 for i in ids)
    assert not any(c in i for i in ids for c in ("Alpha", "Beta"))
    assert p.loc["Beta/more/b2", "particle_id"] == path_id(src / "Beta/more/b2.tif", src)
    assert p.loc["Beta/more/b2", "label"] == "Beta"
    assert Path(p.loc["Alpha/a2", "image"]) == src / "Alpha" / "a2.PNG"
    assert p["esd_um"].isna().all()
    assert set(p["domain"]) == {"LAB"} and set(p["sample_id"]) == {"LAB"}
    s = campaign.samples
    assert list(s["sample_id"]) == ["LAB"]
    assert s[["imaged_area_m2", "deployment_days", "depth_m"]].isna().all(axis=None)


def test_class_folders_class_map_and_unlabelled(tmp_path):
    src = make_class_tree(tmp_path / "src")
    make_image(src / "unsorted" / "u1.jpg")
    with pytest.warns(ReaderWarning):
        out = read_class_folders(
            src,
            tmp_path / "camp",
            class_map={"Alpha": "aggregate", "Beta": "swimmer"},
            unlabelled_folder="unsorted",
            sample_id="S1",
        )
    assert not (out / CLASSES_FILE).exists()  # targets are all among the 14 classes
    campaign = valid(out)
    p = by_path(campaign, src)
    assert p.loc["Alpha/a1", "label"] == "aggregate"
    assert p.loc["Beta/b1", "label"] == "swimmer"
    assert p.loc["unsorted/u1", "label"] == ""
    assert set(p["sample_id"]) == {"S1"}

    class_map = tmp_path / "map.csv"
    class_map.write_text("source,target\nAlpha,round thing\nBeta,\n")  # empty = unlabelled
    with pytest.warns(ReaderWarning):
        out2 = read_class_folders(
            src, tmp_path / "camp2", class_map=class_map, unlabelled_folder="unsorted"
        )
    campaign2 = valid(out2)
    assert campaign2.classes == ("round thing",)
    assert by_path(campaign2, src).loc["Beta/b1", "label"] == ""


@pytest.mark.filterwarnings("ignore::plankflux.data.readers.common.ReaderWarning")
def test_class_folders_unmapped_and_nesting_errors(tmp_path):
    src = make_class_tree(tmp_path / "src")
    make_image(src / "Gamma" / "g.jpg")
    with pytest.raises(
        ValueError,
        match=r"missing from the class map: 'Beta' \(2 image\(s\)\), "
        r"'Gamma' \(1 image\(s\)\)",
    ):
        read_class_folders(src, tmp_path / "camp", class_map={"Alpha": "aggregate"})

    make_image(src / "Gamma" / "sub" / "deeper" / "g2.jpg")
    make_image(src / "loose.jpg")
    with pytest.raises(SourceError) as info:
        read_class_folders(src, tmp_path / "camp")
    text = str(info.value)
    assert "deeper" in text and "loose.jpg" in text
    assert not (tmp_path / "camp").exists()


@pytest.mark.filterwarnings("ignore::plankflux.data.readers.common.ReaderWarning")
def test_class_folders_esd_from_area_and_esd_um(tmp_path):
    src = make_class_tree(tmp_path / "src")
    meta = tmp_path / "meta.tsv"
    meta.write_text("object_id\tarea\tesd\na1\t100\t9\na2.PNG\t400\t9\nb1\t25\t9\nb2\t1\t9\n")
    with pytest.raises(SourceError, match="pixel size"):
        read_class_folders(src, tmp_path / "camp", metadata_csv=meta)
    with pytest.warns(ReaderWarning):  # notes.txt ignored
        out = read_class_folders(src, tmp_path / "camp", metadata_csv=meta, pixel_size_um=2.0)
    p = by_path(valid(out), src)
    for pid, area in (("Alpha/a1", 100), ("Alpha/a2", 400), ("Beta/b1", 25), ("Beta/more/b2", 1)):
        assert p.loc[pid, "esd_um"] == pytest.approx(2 * math.sqrt(area / math.pi) * 2.0)

    meta2 = tmp_path / "meta2.csv"
    meta2.write_text("name,esd (µm)\na1,10\na2,20\nb1,30\n")
    with pytest.raises(ValueError, match=r"1 image\(s\) have no row in the metadata.*b2"):
        read_class_folders(src, tmp_path / "camp2", metadata_csv=meta2)
    meta2.write_text("name,esd (µm)\na1,10\na2,20\nb1,30\nb2,-1\n")
    with pytest.raises(SourceError, match=r"meta2.csv line 5, column 'esd \(µm\)': must be > 0"):
        read_class_folders(src, tmp_path / "camp2", metadata_csv=meta2)
    meta2.write_text("name,esd (µm)\na1,10\na2,20\nb1,30\nb2,40\n")
    with pytest.warns(ReaderWarning):
        out2 = read_class_folders(src, tmp_path / "camp2", metadata_csv=[meta2])
    by_image = by_path(valid(out2), src)["esd_um"]
    assert by_image[["Alpha/a1", "Alpha/a2", "Beta/b1", "Beta/more/b2"]].tolist() == [
        10,
        20,
        30,
        40,
    ]


def make_flat_source(root: Path) -> tuple[Path, Path, Path]:
    images = root / "images"
    for i in range(1, 7):
        make_image(images / f"{i}.jpg", value=20 * i)
    make_image(images / "99.jpg")  # listed nowhere
    train = root / "train_labels.csv"
    train.write_text(
        "id,img_path,label\n1,io/images/1.jpg,Copepoda\n2,io/images/2.jpg,detritus\n"
        "10,io/images/3.jpg,Copepoda\n4,images/4.jpg,\n"
    )
    test = root / "test_labels.csv"
    test.write_text(f"id,img_path,label\n5,{images / '5.jpg'},detritus\n6,6.jpg,Copepoda\n")
    return images, train, test


def test_labels_csvs_resolve_paths_and_join_metadata(tmp_path):
    images, train, test = make_flat_source(tmp_path / "src")
    meta = tmp_path / "src" / "features.csv"
    meta.write_text("id,area\n" + "".join(f"{i},{i * 100}\n" for i in (1, 2, 10, 4, 5, 6)))
    before = snapshot(tmp_path / "src")
    with pytest.warns(ReaderWarning, match=r"1 image\(s\) .* in no labels CSV"):
        out = read_class_folders(
            images,
            tmp_path / "camp",
            labels_csv=[train, test],
            metadata_csv=meta,
            pixel_size_um=10.58,
        )
    assert snapshot(tmp_path / "src") == before
    campaign = valid(out)
    assert campaign.classes == ("Copepoda", "detritus")
    p = by_id(campaign)
    assert list(campaign.particles["particle_id"]) == ["1", "2", "4", "5", "6", "10"]
    assert Path(p.loc["10", "image"]) == images / "3.jpg"  # by file name under SRC
    assert Path(p.loc["4", "image"]) == images / "4.jpg"  # relative to the CSV's folder
    assert Path(p.loc["6", "image"]) == images / "6.jpg"  # relative to SRC
    assert p.loc["4", "label"] == ""
    assert p.loc["10", "esd_um"] == pytest.approx(2 * math.sqrt(1000 / math.pi) * 10.58)


def test_labels_csv_errors_name_file_and_line(tmp_path):
    images, train, test = make_flat_source(tmp_path / "src")
    bad = tmp_path / "bad.csv"
    bad.write_text("id,img_path,label\n7,io/images/nope.jpg,Copepoda\n1,io/images/6.jpg,x\n")
    with pytest.raises(SourceError) as info:
        read_class_folders(images, tmp_path / "camp", labels_csv=[train, bad])
    text = str(info.value)
    assert "bad.csv line 2, column 'img_path'" in text and "nope.jpg" in text
    with pytest.raises(SourceError, match=r"particle id '1' listed more than once"):
        bad.write_text("id,img_path,label\n1,io/images/6.jpg,x\n")
        read_class_folders(images, tmp_path / "camp", labels_csv=[train, bad])
    bad.write_text("name,what\n1,2\n")
    with pytest.raises(SourceError, match="needs an image path column"):
        read_class_folders(images, tmp_path / "camp", labels_csv=bad)


# ----------------------------------------------------------------------------
# command line (through the module's add_parser: plankflux.cli imports modules that
# other sub-commands provide)
# ----------------------------------------------------------------------------


def cli(argv: list[str]) -> int:
    return main(argv)


def test_cli_import_mpic_and_folders(tmp_path, capsys):
    src = make_mpic(tmp_path / "mpic")
    assert cli(["import", "mpic", str(src), "--out", str(tmp_path / "c1")]) == 0
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0 and "5 particles (4 labelled) in 2 samples" in out

    tree = make_class_tree(tmp_path / "tree")
    class_map = tmp_path / "map.csv"
    class_map.write_text("Alpha,aggregate\nBeta,swimmer\n")
    argv = ["import", "folders", str(tree), "--out", str(tmp_path / "c2"), "--domain", "X"]
    assert cli(argv + ["--class-map", str(class_map)]) == 0
    captured = capsys.readouterr()
    assert "4 particles (4 labelled) in 1 samples; domains: X 4; 14 classes" in captured.out
    assert "4 particles without esd_um" in captured.out
    assert "warning:" in captured.err

    assert cli(argv) == 1  # c2 already holds a campaign
    assert "already holds a campaign" in capsys.readouterr().err
    assert cli(["import", "mpic", str(tree), "--out", str(tmp_path / "c3")]) == 1
    assert "not an mpic layout" in capsys.readouterr().err


# ----------------------------------------------------------------------------
# real third-party data
# ----------------------------------------------------------------------------

needs_realdata = pytest.mark.skipif(not REALDATA.is_dir(), reason=f"{REALDATA} is absent")


@pytest.mark.realdata
@needs_realdata
def test_realdata_flowcam_class_folders(tmp_path):
    src = REALDATA / "planktonclas_flowcam_demo" / "demo-images"
    with pytest.warns(ReaderWarning, match="esd_um is empty"):
        out = read_class_folders(src, tmp_path / "camp", domain="FLOWCAM")
    campaign = valid(out)
    assert len(campaign.particles) == 105
    assert len(campaign.classes) == 6
    assert set(campaign.particles["label"]) == set(campaign.classes)
    assert sorted(campaign.classes) == sorted(p.name for p in src.iterdir() if p.is_dir())


@pytest.mark.realdata
@needs_realdata
def test_realdata_zooscan_labels_csvs_with_area(tmp_path):
    io = REALDATA / "ecotaxa_ML_template_zooscan" / "test_io"
    labels = [io / "training_labels.csv", io / "test_labels.csv"]
    features = sorted(io.glob("*_features.csv*"))
    assert {f.name for f in features} == {"training_features.csv.gz", "test_features.csv.gz"}
    expected = sum(len(pd.read_csv(f)) for f in labels)
    out = read_class_folders(
        io / "images",
        tmp_path / "camp",
        labels_csv=labels,
        metadata_csv=features,
        pixel_size_um=10.58,
        domain="ZOOSCAN",
    )
    campaign = valid(out)
    p = campaign.particles
    assert len(p) == expected == 400
    assert campaign.classes == ("Cladocera", "Copepoda", "Siphonophorae", "detritus")
    esd = p["esd_um"].to_numpy()
    assert np.all(esd > 0)
    assert 100 < np.min(esd) and np.max(esd) < 10_000  # hundreds to thousands of µm
    assert 300 < np.median(esd) < 2000


def test_cli_main_dispatches_import(tmp_path, capsys):
    from plankflux.cli.main import main

    src = make_mpic(tmp_path / "mpic")
    assert (
        main(["import", "mpic", str(src), "--out", str(tmp_path / "c"), "--images", "exists"]) == 0
    )
    assert "imported" in capsys.readouterr().out
