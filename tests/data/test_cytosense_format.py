"""The CytoSense pair format: valid data loads; every defect is named by file, line, column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from plankflux.data.cytosense import (
    PROFILE_BANDS,
    PairsError,
    load_pairs,
    read_profile,
    validate_pairs,
    write_pairs,
    write_profile,
)


def make_pairs(root: Path, classes=("a", "b", "")) -> Path:
    """One pair per class entry: 30x20 greyscale PNG, an (L=3+i, 6) profile."""
    rows = []
    for i, label in enumerate(classes):
        image, profile = f"images/p{i}.png", f"profiles/p{i}.csv"
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((30, 20), 100 + i, np.uint8)).save(root / image)
        write_profile(root / profile, np.arange((3 + i) * 6).reshape(3 + i, 6) + 0.5)
        rows.append({"image": image, "profile": profile, "class": label, "particle_id": f"x{i}"})
    return write_pairs(root, pd.DataFrame(rows))


def _problems(root: Path, **kwargs) -> list[str]:
    return [str(p) for p in validate_pairs(root, **kwargs)]


def _edit(root: Path, edit) -> None:
    frame = pd.read_csv(root / "annotations.csv", dtype=str, keep_default_na=False)
    edit(frame)
    frame.to_csv(root / "annotations.csv", index=False)


def test_valid_pairs_load_with_labels_and_extra_columns(tmp_path):
    root = make_pairs(tmp_path / "d")
    assert _problems(root) == []
    pairs = load_pairs(root)
    assert pairs.classes == ("a", "b")
    assert pairs.labels().tolist() == [0, 1, -1]
    assert pairs.pairs["particle_id"].tolist() == ["x0", "x1", "x2"]
    assert pairs.summary() == "3 pairs (2 labelled), 2 classes"
    assert read_profile(pairs.profile_path(2)).shape == (5, 6)
    header = (root / "annotations.csv").read_text().splitlines()[0]
    assert header == "image,profile,class,particle_id"


def test_classes_file_fixes_order_and_rejects_unknown(tmp_path):
    root = make_pairs(tmp_path / "d")
    (root / "classes.txt").write_text("b\na\nc\n")
    assert load_pairs(root).classes == ("b", "a", "c")
    assert load_pairs(root).labels().tolist() == [1, 0, -1]
    (root / "classes.txt").write_text("b\n")
    assert _problems(root) == [
        "annotations.csv line 2, column 'class': class 'a' is not in classes.txt"
    ]


def test_missing_column_and_missing_file(tmp_path):
    root = make_pairs(tmp_path / "d")
    _edit(root, lambda f: f.pop("profile"))
    assert _problems(root) == [
        "annotations.csv line 1, column 'profile': required column is missing"
    ]
    with pytest.raises(PairsError, match="required column is missing"):
        load_pairs(root)
    assert _problems(tmp_path / "nothing") == [
        f"annotations.csv: file not found in {tmp_path / 'nothing'}"
    ]


def test_missing_image_and_profile_files_name_line_and_column(tmp_path):
    root = make_pairs(tmp_path / "d")
    (root / "images/p1.png").unlink()
    (root / "profiles/p2.csv").unlink()
    assert _problems(root, check_files="exists") == [
        f"annotations.csv line 3, column 'image': image file is missing: {root / 'images/p1.png'}",
        f"annotations.csv line 4, column 'profile': profile file is missing: "
        f"{root / 'profiles/p2.csv'}",
    ]
    assert _problems(root, check_files="none") == []


def test_duplicate_image_and_empty_cells(tmp_path):
    root = make_pairs(tmp_path / "d")

    def dup(frame):
        frame.loc[2, "image"] = "images/p0.png"
        frame.loc[1, "profile"] = ""

    _edit(root, dup)
    assert _problems(root) == [
        "annotations.csv line 4, column 'image': duplicate image (first seen on line 2)",
        "annotations.csv line 3, column 'profile': value is empty",
    ]


def test_empty_image_only_with_allow_missing_image(tmp_path):
    root = make_pairs(tmp_path / "d")
    _edit(root, lambda f: f.__setitem__("image", ["images/p0.png", "", ""]))
    assert _problems(root) == [
        "annotations.csv line 3, column 'image': value is empty",
        "annotations.csv line 4, column 'image': value is empty",
    ]
    assert _problems(root, allow_missing_image=True) == []
    assert len(load_pairs(root, allow_missing_image=True)) == 3


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("1,2,3,4,5,6\n1,2,abc,4,5,6\n", " line 3, column 'fl_green': not a finite number: 'abc'"),
        ("1,2,3,4,5,6\n1,2,3,4,5,nan\n", " line 3, column 'fl_red': not a finite number: 'nan'"),
        ("1,2,3,4,5\n", " line 2: row has 5 columns, expected 6"),
        ("", ": profile is empty (header only, no rows)"),
    ],
)
def test_bad_profile_content_names_the_profile_file_and_line(tmp_path, body, expected):
    root = make_pairs(tmp_path / "d")
    (root / "profiles/p1.csv").write_text(",".join(PROFILE_BANDS) + "\n" + body)
    assert _problems(root) == [f"profiles/p1.csv{expected}"]
    assert _problems(root, check_files="exists") == []  # content is only parsed on request
    with pytest.raises(ValueError, match="p1.csv"):
        read_profile(root / "profiles/p1.csv")


def test_undecodable_image_is_reported_when_parsing(tmp_path):
    root = make_pairs(tmp_path / "d")
    (root / "images/p0.png").write_bytes(b"not a png")
    (problem,) = _problems(root)
    assert problem.startswith("annotations.csv line 2, column 'image': image cannot be decoded")


def test_read_profile_values_and_decimal_comma_variant(tmp_path):
    path = tmp_path / "p.csv"
    write_profile(path, [[0, 1.5, 2, 3, 4, 5e3], [6, 7, 8, 9, 10, 0.25]])
    assert path.read_text().splitlines()[0] == "fws,sws,fl_green,fl_yellow,fl_orange,fl_red"
    profile = read_profile(path)
    assert profile.dtype == np.float32 and profile.shape == (2, 6)
    np.testing.assert_array_equal(profile[0], [0, 1.5, 2, 3, 4, 5000])
    semi = tmp_path / "semi.csv"
    semi.write_text("FWS;SWS;G;Y;O;R\n1,5;2;3;4;5;6\n")
    np.testing.assert_array_equal(read_profile(semi), [[1.5, 2, 3, 4, 5, 6]])
    with pytest.raises(ValueError, match=r"must be \(L>=1, 6\)"):
        write_profile(path, np.zeros((3, 5)))
