"""``plankflux import ecotaxa EXPORT --images DIR``: only validated annotations become
labels; samples, depth, imaged area and days are mapped; what is missing is said."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from plankflux.cli.main import main
from plankflux.data.campaign import load_campaign
from plankflux.data.readers.ecotaxa import EcoTaxaError, read_ecotaxa_export

HEADER = [
    "object_id", "img_file_name", "object_annotation_status", "object_annotation_category",
    "object_area", "object_depth_min", "object_depth_max", "sample_id",
    "sample_imaged_area_m2", "sample_deployment_days",
]  # fmt: skip
ROWS = [
    ["o1", "a/o1.png", "validated", "Copepoda", "100", "100", "110", "S1", "0.0002", "2"],
    ["o2", "a/o2.png", "predicted", "detritus", "400", "100", "120", "S1", "0.0002", "2"],
    ["o3", "b/o3.png", "dubious", "Copepoda", "25", "200", "200", "S2", "0.0003", "3"],
    ["o4", "b/o4.png", "validated", "Calanoida/Copepoda", "1", "200", "220", "S2", "0.0003", "3"],
]


def _export(tmp_path, rows=ROWS, header=HEADER):
    images = tmp_path / "images"
    for row in rows:
        (images / row[1]).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((5, 5, 3), 99, np.uint8)).save(images / row[1])
    types = ["[t]" if c in ("object_id", "img_file_name", "sample_id") else "[f]" for c in header]
    lines = ["\t".join(header), "\t".join(types), *("\t".join(r) for r in rows)]
    tsv = tmp_path / "export.tsv"
    tsv.write_text("\n".join(lines) + "\n")
    return tsv, images


def test_validated_labels_only_and_the_sample_columns(tmp_path):
    tsv, images = _export(tmp_path)
    with pytest.warns(UserWarning) as said:
        read_ecotaxa_export(tsv, images, tmp_path / "camp", domain="EXP", pixel_size_um=2.0)
    campaign = load_campaign(tmp_path / "camp", check_images="decode")
    p = campaign.particles.set_index("particle_id")
    assert p["label"].to_dict() == {
        "o1": "Copepoda",
        "o2": "",
        "o3": "",
        "o4": "Calanoida_Copepoda",
    }
    raw = pd.read_csv(tmp_path / "camp" / "particles.csv", dtype=str, keep_default_na=False)
    assert raw.set_index("particle_id")["label_predicted"].to_dict() == {
        "o1": "", "o2": "detritus", "o3": "Copepoda", "o4": "",
    }  # fmt: skip
    assert p.loc["o2", "esd_um"] == pytest.approx(2 * np.sqrt(400 / np.pi) * 2.0)
    assert campaign.classes == ("Calanoida_Copepoda", "Copepoda")
    s = campaign.samples.set_index("sample_id")
    assert s.loc["S1", "depth_m"] == pytest.approx((105 + 110) / 2)
    assert s.loc["S2", "imaged_area_m2"] == 0.0003 and s.loc["S2", "deployment_days"] == 3
    assert "2 predicted/dubious object(s)" in " ".join(str(w.message) for w in said)


def test_missing_columns_are_said_and_bad_rows_refused(tmp_path, capsys):
    header = HEADER[:4]
    tsv, images = _export(tmp_path, [r[:4] for r in ROWS], header)
    code = main(
        ["import", "ecotaxa", str(tsv), "--images", str(images), "--out", str(tmp_path / "c")]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "no object_esd_um (or object_area with --pixel-size-um)" in err
    assert "no sample_id for every object" in err and "imaged_area_m2 left empty" in err
    bad = [["o9", "../../etc/passwd", "validated", "Copepoda"], ["o8", "a/o1.png", "maybe", "x"]]
    tsv2 = tmp_path / "bad.tsv"
    tsv2.write_text("\t".join(header) + "\n" + "\n".join("\t".join(r) for r in bad) + "\n")
    with pytest.raises(EcoTaxaError) as refused:
        read_ecotaxa_export(tsv2, images, tmp_path / "c2")
    message = str(refused.value)
    assert "line 2, column 'img_file_name': '../../etc/passwd' is not below" in message
    assert "line 3, column 'object_annotation_status': unknown 'maybe'" in message
    assert not (tmp_path / "c2" / "particles.csv").exists()
