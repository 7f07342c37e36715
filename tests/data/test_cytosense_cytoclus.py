"""CytoClus exports -> pair layout: both locales, channel mapping, images, real exports."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from plankflux.data.cytosense import load_pairs, read_profile, validate_pairs
from plankflux.data.readers.common import ReaderWarning, SourceError
from plankflux.data.readers.cytoclus import parse_pulses, read_cytoclus

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
CYTO = REALDATA / "ecotaxa_pipeline_cytosense" / "tests" / "cytosense"
needs_realdata = pytest.mark.skipif(not REALDATA.is_dir(), reason=f"{REALDATA} is absent")

M = "M1 2024-01-01 10h00"
# Particle 0 (3 samples) then particle 5 (2 samples), each followed by two zero rows.
ROWS = [
    (0, 10.5, 2.25, 1.0, 0.5, 3.0, -0.1),
    (0, 20.0, 4.0, 1.5, 0.75, 6.0, 0.1),
    (0, 11.0, 2.0, 1.0, 0.25, 2.5, 0.2),
    (5, 30.0, 9.0, 0.0, 0.0, 0.125, 0.0),
    (5, 15.0, 4.5, 0.0, 0.0, 0.0625, 0.3),
]


def _rows_text(rows, sep: str, comma: bool) -> str:
    zero = (0,) * len(rows[0])
    out = []
    for i, row in enumerate(rows):
        out.append(row)
        if i + 1 == len(rows) or rows[i + 1][0] != row[0]:
            out += [zero, zero]
    fmt = (lambda v: str(v).replace(".", ",")) if comma else str
    return "\n".join(sep.join(fmt(v) for v in r) for r in out) + "\n"


def make_export(folder: Path, semicolon: bool = False) -> Path:
    """A two-particle export; particle 5 has a cropped image (a folder, or a zip)."""
    folder.mkdir(parents=True)
    sep = ";" if semicolon else ","
    if semicolon:  # ULCO style: SWS, FL names, and an FWS L/R pair instead of FWS
        header = ["Particle ID", "FWS L", "SWS", "FL Green", "FL Orange", "FL Red", "FWS R"]
    else:  # Cefas style: no green channel, a Curvature channel
        header = ["Particle ID", "FWS", "Sidewards Scatter", "Fl Yellow", "Fl Orange", "Fl Red"]
        header.append("Curvature")
    text = sep.join(header) + "\n" + _rows_text(ROWS, sep, semicolon)
    (folder / f"{M}_Set_Pulses.csv").write_text("\ufeff" + text, encoding="utf-8")
    listmode = f"Particle ID{sep}Sample Length{sep}Arrival Time\n0{sep}3{sep}1\n5{sep}2{sep}2\n"
    (folder / f"{M}_Set_Listmode.csv").write_text(listmode)
    (folder / f"{M}_Info.txt").write_text("Instrument: test\n")
    crop = Image.fromarray(np.tile(np.arange(40, dtype=np.uint8) * 5, (30, 1)))
    name = f"{M}_Cropped_5.jpg"
    if semicolon:
        data = io.BytesIO()
        crop.save(data, format="JPEG")
        with zipfile.ZipFile(folder / f"{M}_Set_Images.zip", "w") as archive:
            archive.writestr(f"{M}_Set_Images/{name}", data.getvalue())
            archive.writestr(f"__MACOSX/{M}_Set_Images/._{name}", b"junk")
    else:
        (folder / f"{M}_Set_Images").mkdir()
        crop.save(folder / f"{M}_Set_Images" / name)
    return folder


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        h.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def test_both_locales_parse_to_the_same_numbers(tmp_path):
    comma = make_export(tmp_path / "a")
    semi = make_export(tmp_path / "b", semicolon=True)
    names_a, parts_a = parse_pulses(comma / f"{M}_Set_Pulses.csv")
    names_b, parts_b = parse_pulses(semi / f"{M}_Set_Pulses.csv")
    assert names_a[:2] == ["FWS", "Sidewards Scatter"] and names_b[0] == "FWS L"
    assert sorted(parts_a) == sorted(parts_b) == [0, 5]  # particle 0 is not a separator
    for pid in (0, 5):
        np.testing.assert_array_equal(parts_a[pid], parts_b[pid])
    np.testing.assert_array_equal(parts_a[5][:, 0], [30.0, 15.0])


def test_comma_export_to_pairs_maps_channels_and_keeps_the_source(tmp_path):
    src = make_export(tmp_path / "src")
    before = _digest(src)
    with pytest.warns(ReaderWarning, match="no channel for fl_green; zero-filled"):
        result = read_cytoclus(src, tmp_path / "out", labels={"5": "diatom"})
    assert _digest(src) == before
    assert (result.n_particles, result.n_imaged, result.n_written) == (2, 1, 1)
    assert result.samples == [M] and result.dropped_channels[M] == ["Curvature"]
    assert validate_pairs(result.root) == []
    pairs = load_pairs(result.root)
    row = pairs.pairs.iloc[0]
    assert (row["class"], row["particle_id"], row["sample"]) == ("diatom", f"{M}_5", M)
    # FWS, SWS, green (absent -> 0), yellow, orange, red; Curvature dropped.
    expected = [[r[1], r[2], 0.0, r[3], r[4], r[5]] for r in ROWS[3:]]
    np.testing.assert_allclose(read_profile(pairs.profile_path(0)), expected)
    with Image.open(pairs.image_path(0)) as im:
        assert im.mode == "L" and im.size == (40, 30 + 25)  # a 25-px scale-bar strip on top


def test_semicolon_export_with_zip_images_and_fws_halves(tmp_path):
    src = make_export(tmp_path / "src", semicolon=True)
    with pytest.warns(ReaderWarning, match="no channel for fl_yellow"):
        result = read_cytoclus(src, tmp_path / "out", only_imaged=False, scale_bar_px=0)
    assert (result.n_particles, result.n_imaged, result.n_written) == (2, 1, 2)
    assert result.zero_filled[M] == ["fl_yellow"] and result.dropped_channels[M] == []
    pairs = load_pairs(result.root, allow_missing_image=True)
    assert pairs.pairs["image"].tolist()[0] == ""  # particle 0 has no image
    profile = read_profile(pairs.profile_path(0))
    raw = np.array([r[1:] for r in ROWS[:3]])
    np.testing.assert_allclose(profile[:, 0], (raw[:, 0] + raw[:, 5]) / 2)  # mean of FWS L/R
    np.testing.assert_allclose(profile[:, [1, 2, 4, 5]], raw[:, 1:5])
    with Image.open(pairs.image_path(1)) as im:
        assert im.size == (40, 30)


def test_missing_channel_error_and_bad_cells(tmp_path):
    src = make_export(tmp_path / "src")
    with pytest.raises(SourceError, match="no channel for band 'fl_green'"):
        read_cytoclus(src, tmp_path / "out", missing_channels="error")
    pulses = src / f"{M}_Set_Pulses.csv"
    pulses.write_text(pulses.read_text().replace("20.0", "x20"))
    with pytest.raises(SourceError, match=r"line 3, column 'FWS': not a number: 'x20'"):
        parse_pulses(pulses)


def test_repeated_particle_and_listmode_mismatch(tmp_path):
    src = make_export(tmp_path / "src")
    pulses = src / f"{M}_Set_Pulses.csv"
    pulses.write_text(pulses.read_text() + "0,1,1,1,1,1,1\n")
    with pytest.raises(SourceError, match="particle 0 appears again"):
        parse_pulses(pulses)
    src2 = make_export(tmp_path / "src2")
    (src2 / f"{M}_Set_Listmode.csv").write_text("Particle ID,Sample Length\n0,4\n7,2\n")
    with pytest.warns(ReaderWarning) as record:
        read_cytoclus(src2, tmp_path / "out")
    text = " | ".join(str(w.message) for w in record)
    assert "only in the pulse file: 5; only in the listmode: 7" in text
    assert "Sample Length differs from the pulse rows for particle(s) 0" in text


def test_output_inside_source_or_existing_is_refused(tmp_path):
    src = make_export(tmp_path / "src")
    with pytest.raises(ValueError, match="lies inside the source"):
        read_cytoclus(src, src / "out")
    with pytest.warns(ReaderWarning):
        read_cytoclus(src, tmp_path / "out")
    with pytest.raises(ValueError, match="already holds annotations.csv"):
        read_cytoclus(src, tmp_path / "out")
    with pytest.raises(ValueError, match="no CytoClus"):
        read_cytoclus(tmp_path / "out", tmp_path / "out2")


@pytest.mark.parametrize("in_zip", [False, True], ids=["folder", "zip"])
def test_undecodable_crops_are_all_named_and_nothing_is_imported(tmp_path, in_zip):
    """Every crop that does not decode is listed by file (``archive.zip:member`` inside a
    zip); no annotations.csv is written, so the half-written output never loads, and a
    second import after the repair succeeds into the same folder."""
    src = make_export(tmp_path / "src", semicolon=in_zip)
    name = f"{M}_Cropped_5.jpg"
    extra = Image.fromarray(np.full((20, 30), 90, np.uint8))  # particle 0 gets a good crop
    if in_zip:
        good = io.BytesIO()
        extra.save(good, format="JPEG")
        with zipfile.ZipFile(src / f"{M}_Set_Images.zip", "w") as archive:
            archive.writestr(f"{M}_Set_Images/{name}", b"not a jpeg")
            archive.writestr(f"{M}_Set_Images/{M}_Cropped_0.jpg", good.getvalue())
        bad = f"{src / f'{M}_Set_Images.zip'}:{M}_Set_Images/{name}"
    else:
        (src / f"{M}_Set_Images" / name).write_bytes(b"\xff\xd8 truncated")
        extra.save(src / f"{M}_Set_Images" / f"{M}_Cropped_0.jpg")
        bad = str(src / f"{M}_Set_Images" / name)
    before = _digest(src)
    out = tmp_path / "out"
    with pytest.raises(SourceError) as caught, pytest.warns(ReaderWarning):
        read_cytoclus(src, out)
    message = str(caught.value)
    assert "1 problem(s) (nothing imported: annotations.csv not written" in message
    assert f"{bad}: cannot be decoded as an image" in message and "BytesIO" not in message
    assert not (out / "annotations.csv").exists()
    assert _digest(src) == before  # the source is untouched
    # Repaired: the same folder takes the import, with both crops.
    if in_zip:
        with zipfile.ZipFile(src / f"{M}_Set_Images.zip", "w") as archive:
            archive.writestr(f"{M}_Set_Images/{name}", good.getvalue())
            archive.writestr(f"{M}_Set_Images/{M}_Cropped_0.jpg", good.getvalue())
    else:
        extra.save(src / f"{M}_Set_Images" / name)
    with pytest.warns(ReaderWarning):
        read_cytoclus(src, out)
    assert len(load_pairs(out)) == 2


# ----------------------------------------------------------------------------
# real third-party exports
# ----------------------------------------------------------------------------


@pytest.mark.realdata
@needs_realdata
def test_realdata_cefas_export(tmp_path):
    src = CYTO / "Cefas" / "mock"
    with pytest.warns(ReaderWarning, match="fl_green"):
        result = read_cytoclus(src, tmp_path / "all", only_imaged=False)
    listmode = pd.read_csv(next(src.glob("*_Listmode.csv")), encoding="utf-8-sig")
    assert result.n_particles == result.n_written == len(listmode) == 817
    assert result.n_imaged == 4
    assert result.dropped_channels == {"Pond_NA 2023-05-24 09h23": ["Curvature"]}
    assert validate_pairs(result.root, allow_missing_image=True) == []
    pairs = load_pairs(result.root, allow_missing_image=True)
    ids = pairs.pairs["particle_id"].str.rsplit("_", n=1).str[1].astype(int)
    assert ids.tolist() == listmode["Particle ID"].tolist()
    lengths = [len(read_profile(pairs.profile_path(i))) for i in range(len(pairs))]
    assert lengths == listmode["Sample Length"].tolist()  # the listmode agrees on every L
    first = read_profile(pairs.profile_path(0))  # particle 63, first pulse row
    np.testing.assert_allclose(first[0], [13, 3.5, 0, 0.2917, 0, 2.167], rtol=1e-6)
    raw = pd.read_csv(next(src.glob("*_Pulses.csv")), encoding="utf-8-sig")
    total = sum(read_profile(pairs.profile_path(i))[:, 0].sum() for i in range(len(pairs)))
    assert total == pytest.approx(raw["FWS"].sum(), rel=1e-5)  # no sample lost or doubled

    with pytest.warns(ReaderWarning):
        imaged = read_cytoclus(src, tmp_path / "imaged")
    assert imaged.n_written == 4
    for i in range(4):
        with Image.open(load_pairs(imaged.root).image_path(i)) as im:
            assert im.mode == "L" and im.size[1] > 25


@pytest.mark.realdata
@needs_realdata
def test_realdata_ulco_decimal_comma_export(tmp_path):
    src = CYTO / "ULCO" / "mock_small_data"
    with pytest.warns(ReaderWarning) as record:
        result = read_cytoclus(src, tmp_path / "out", only_imaged=False)
    assert (result.n_particles, result.n_imaged) == (9, 5)  # images come from the zip
    text = " | ".join(str(w.message) for w in record)
    assert "Sample Length differs from the pulse rows for particle(s) 10104" in text  # truncated
    assert "line(s) 9, 10 have a field count unlike the header" in text  # ragged listmode
    pairs = load_pairs(result.root, allow_missing_image=True)
    assert validate_pairs(result.root, allow_missing_image=True) == []
    first = read_profile(pairs.profile_path(0))  # particle 0
    np.testing.assert_allclose(first[0], [23.82, 0.7315, 0, 1.148, 0.5998, 1.222], rtol=1e-6)
    profiles = [read_profile(pairs.profile_path(i)) for i in range(len(pairs))]
    # The same kind of numbers as the comma export: finite, non-negative scatter, FWS
    # peaks of tens to thousands, one row per sample point.
    assert all(np.isfinite(p).all() and (p[:, :2] >= 0).all() for p in profiles)
    assert all(10 < p[:, 0].max() < 1e5 for p in profiles)
    assert sorted(len(p) for p in profiles)[0] == 20


@pytest.mark.realdata
@needs_realdata
def test_realdata_import_command_and_validate(tmp_path):
    """What a user types: ``plankflux import cytoclus`` then ``plankflux validate``."""
    from plankflux.cli.main import main

    src = CYTO / "Cefas" / "mock"
    out = tmp_path / "pairs"
    assert main(["import", "cytoclus", str(src), "--out", str(out), "--all-particles"]) == 0
    assert len(load_pairs(out, allow_missing_image=True)) == 817
    assert main(["import", "cytoclus", str(src), "--out", str(out)]) == 1  # never overwrites
    imaged = tmp_path / "imaged"
    assert main(["import", "cytoclus", str(src), "--out", str(imaged)]) == 0
    assert main(["validate", str(imaged)]) == 0
    assert len(load_pairs(imaged)) == 4
