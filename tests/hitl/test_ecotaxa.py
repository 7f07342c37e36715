"""EcoTaxa exchange: export a proposal folder as an import bundle, import an export back."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from plankflux.data.campaign import load_campaign, write_campaign
from plankflux.hitl.ecotaxa import (
    TSV_NAME,
    EcoTaxaError,
    export_ecotaxa_bundle,
    import_ecotaxa_verification,
    read_ecotaxa_tsv,
)

# particle_id, sample, domain, esd_um (nan = unknown), proposed label, score, rank
PROPOSALS = [
    ("RR1_0", "RR1", "RR", 120.5, "aggregate", 0.97, 1),
    ("RR1_1", "RR1", "RR", np.nan, "aggregate", 0.91, 2),
    ("RR1_2", "RR1", "RR", 80.0, "long_pellet", 0.88, 1),
    ("FC1_0", "FC1", "FC", 150.25, "long_pellet", 0.75, 2),
    ("FC1_1", "FC1", "FC", 99.0, "swimmer", 0.6, 1),
]
EXPECTED_HEADER = [
    "object_id",
    "img_file_name",
    "object_annotation_category",
    "object_annotation_status",
    "object_plankflux_score",
    "object_plankflux_rank",
    "object_esd_um",
    "object_domain",
    "sample_id",
]
EXPECTED_TYPES = ["[t]", "[t]", "[t]", "[t]", "[f]", "[f]", "[f]", "[t]", "[t]"]


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 9, 3), value, dtype=np.uint8)).save(path)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture()
def campaign(tmp_path):
    root = tmp_path / "campaign"
    rows = []
    for i, (pid, sample, domain, esd, *_rest) in enumerate(PROPOSALS):
        image = f"images/{pid}.png"
        _png(root / image, 30 * i)
        label = "aggregate" if domain == "FC" else ""
        rows.append(
            {
                "particle_id": pid,
                "image": image,
                "domain": domain,
                "sample_id": sample,
                "esd_um": "" if np.isnan(esd) else esd,
                "label": label,
            }
        )
    samples = pd.DataFrame(
        {
            "sample_id": ["RR1", "FC1"],
            "domain": ["RR", "FC"],
            "depth_m": [150, 300],
            "imaged_area_m2": [2e-4, 3e-4],
            "deployment_days": [2.0, 3.5],
        }
    )
    write_campaign(root, pd.DataFrame(rows), samples)
    return load_campaign(root)


@pytest.fixture()
def proposal_dir(tmp_path, campaign):
    """A proposal folder as the voting step writes it: copies in class folders + manifest."""
    folder = tmp_path / "proposals"
    rows = []
    for pid, _s, _d, _e, label, score, rank in PROPOSALS:
        image = f"{label}/{pid}__{pid}.png"
        (folder / label).mkdir(parents=True, exist_ok=True)
        (folder / image).write_bytes((campaign.root / "images" / f"{pid}.png").read_bytes())
        rows.append(
            {
                "particle_id": pid,
                "image": image,
                "proposed_label": label,
                "score": score,
                "rank": rank,
            }
        )
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder


def _tsv_lines(zip_path: Path) -> list[list[str]]:
    with zipfile.ZipFile(zip_path) as bundle:
        text = bundle.read(TSV_NAME).decode("utf-8")
    return [line.split("\t") for line in text.splitlines()]


# ------------------------------------------------------------------------ export


def test_export_bundle_contents(tmp_path, campaign, proposal_dir):
    originals = {p: _md5(p) for p in sorted((campaign.root / "images").iterdir())}
    out = export_ecotaxa_bundle(proposal_dir, campaign, tmp_path / "out" / "bundle.zip")
    assert out == tmp_path / "out" / "bundle.zip" and out.is_file()

    lines = _tsv_lines(out)
    assert lines[0] == EXPECTED_HEADER
    assert lines[1] == EXPECTED_TYPES
    assert lines[2:] == [
        [
            "RR1_0",
            "aggregate/RR1_0__RR1_0.png",
            "aggregate",
            "predicted",
            "0.97",
            "1",
            "120.5",
            "RR",
            "RR1",
        ],
        [
            "RR1_1",
            "aggregate/RR1_1__RR1_1.png",
            "aggregate",
            "predicted",
            "0.91",
            "2",
            "",
            "RR",
            "RR1",
        ],
        [
            "RR1_2",
            "long_pellet/RR1_2__RR1_2.png",
            "long_pellet",
            "predicted",
            "0.88",
            "1",
            "80",
            "RR",
            "RR1",
        ],
        [
            "FC1_0",
            "long_pellet/FC1_0__FC1_0.png",
            "long_pellet",
            "predicted",
            "0.75",
            "2",
            "150.25",
            "FC",
            "FC1",
        ],
        [
            "FC1_1",
            "swimmer/FC1_1__FC1_1.png",
            "swimmer",
            "predicted",
            "0.6",
            "1",
            "99",
            "FC",
            "FC1",
        ],
    ]
    with zipfile.ZipFile(out) as bundle:
        names = bundle.namelist()
        assert names[0] == TSV_NAME
        images = [row[1] for row in lines[2:]]
        assert sorted(names[1:]) == sorted(images)
        for name in images:
            assert bundle.read(name) == (proposal_dir / name).read_bytes()
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in bundle.infolist())
    # the user's originals and the proposal copies are untouched
    assert {p: _md5(p) for p in sorted((campaign.root / "images").iterdir())} == originals
    assert all((proposal_dir / name).is_file() for name in images)
    # no temporary file left beside the bundle
    assert sorted(p.name for p in out.parent.iterdir()) == ["bundle.zip"]


def test_export_is_deterministic(tmp_path, campaign, proposal_dir):
    a = export_ecotaxa_bundle(proposal_dir, campaign, tmp_path / "a.zip")
    b = export_ecotaxa_bundle(proposal_dir, campaign, tmp_path / "b.zip")
    assert a.read_bytes() == b.read_bytes()
    # overwriting an existing bundle gives the same bytes again
    export_ecotaxa_bundle(proposal_dir, campaign, a)
    assert a.read_bytes() == b.read_bytes()


def test_export_options(tmp_path, campaign, proposal_dir):
    out = export_ecotaxa_bundle(
        proposal_dir,
        campaign,
        tmp_path / "b.zip",
        sample_id_column=False,
        category_map={"aggregate": "detritus"},
    )
    lines = _tsv_lines(out)
    assert lines[0] == EXPECTED_HEADER[:-1]
    assert lines[1] == EXPECTED_TYPES[:-1]
    assert [row[2] for row in lines[2:]] == [
        "detritus",
        "detritus",
        "long_pellet",
        "long_pellet",
        "swimmer",
    ]


def test_export_lists_every_problem_and_writes_nothing(tmp_path, campaign, proposal_dir):
    (proposal_dir / "aggregate" / "RR1_1__RR1_1.png").unlink()
    manifest = pd.read_csv(proposal_dir / "manifest.csv")
    extra = {
        "particle_id": "ZZ_9",
        "image": "../escape.png",
        "proposed_label": "aggregate",
        "score": 0.5,
        "rank": 3,
    }
    manifest = pd.concat([manifest, pd.DataFrame([extra])])
    manifest.to_csv(proposal_dir / "manifest.csv", index=False)
    out = tmp_path / "bundle.zip"
    with pytest.raises(EcoTaxaError) as err:
        export_ecotaxa_bundle(proposal_dir, campaign, out)
    message = str(err.value)
    assert "ZZ_9" in message and "../escape.png" in message
    assert "RR1_1__RR1_1.png" in message
    assert not out.exists()


def test_export_real_synthetic_campaign(tmp_path):
    from plankflux.synthetic.trap import generate_trap_campaign

    root = generate_trap_campaign(tmp_path / "c", "tiny", 0)
    campaign = load_campaign(root)
    picked = campaign.particles[campaign.particles["domain"] == "RR"].head(4)
    folder = tmp_path / "proposals"
    rows = []
    for rank, row in enumerate(picked.itertuples(), start=1):
        image = f"aggregate/{row.particle_id}__{row.particle_id}.png"
        (folder / "aggregate").mkdir(parents=True, exist_ok=True)
        (folder / image).write_bytes(campaign.image_path(row.image).read_bytes())
        rows.append(
            {
                "particle_id": row.particle_id,
                "image": image,
                "proposed_label": "aggregate",
                "score": 1 - rank / 10,
                "rank": rank,
            }
        )
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    out = export_ecotaxa_bundle(folder, campaign, tmp_path / "b.zip")
    lines = _tsv_lines(out)
    assert lines[1][:2] == ["[t]", "[t]"]
    assert [row[0] for row in lines[2:]] == list(picked["particle_id"])
    assert {row[-1] for row in lines[2:]} <= set(campaign.samples["sample_id"])
    # the exported bundle reads back as an EcoTaxa table
    table = read_ecotaxa_tsv(out)
    assert list(table["object_id"]) == list(picked["particle_id"])


# ------------------------------------------------------------------------ import


def _write_export(path: Path, header: list[str], rows: list[list[str]], types: bool = True):
    lines = ["\t".join(header)]
    if types:
        lines.append("\t".join("[f]" if "score" in h else "[t]" for h in header))
    lines += ["\t".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


EXPORT_HEADER = [
    "img_file_name",
    "object_annotation_status",
    "object_extra",
    "object_id",
    "object_annotation_category",
    "object_annotation_person_name",
]
# RR1_0 validated same, RR1_2 validated other, FC1_0 dubious, RR1_1 and FC1_1 missing
EXPORT_ROWS = [
    ["a.png", "validated", "x", "RR1_0", "aggregate", "Jane"],
    ["b.png", "validated", "y", "RR1_2", "short_pellet", "Jane"],
    ["c.png", "dubious", "z", "FC1_0", "long_pellet", "Jane"],
]
EXPECTED_VERIFIED = pd.DataFrame(
    {
        "particle_id": ["RR1_0", "RR1_1", "RR1_2", "FC1_0", "FC1_1"],
        "label": ["aggregate", "", "short_pellet", "", ""],
        "action": ["confirmed", "rejected", "relabelled", "rejected", "rejected"],
    }
)


def test_import_verification_table(tmp_path, proposal_dir):
    tsv = _write_export(tmp_path / "ecotaxa_export.tsv", EXPORT_HEADER, EXPORT_ROWS)
    out = tmp_path / "verified.csv"
    table = import_ecotaxa_verification(tsv, proposal_dir / "manifest.csv", out)
    pd.testing.assert_frame_equal(table, EXPECTED_VERIFIED)
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(written, EXPECTED_VERIFIED)
    # running twice gives the same file
    first = out.read_bytes()
    import_ecotaxa_verification(tsv, proposal_dir / "manifest.csv", out)
    assert out.read_bytes() == first


def test_import_without_type_row_and_from_zip(tmp_path, proposal_dir):
    tsv = _write_export(tmp_path / "plain.tsv", EXPORT_HEADER, EXPORT_ROWS, types=False)
    table = import_ecotaxa_verification(tsv, proposal_dir / "manifest.csv")
    pd.testing.assert_frame_equal(table, EXPECTED_VERIFIED)

    typed = _write_export(tmp_path / "typed.tsv", EXPORT_HEADER, EXPORT_ROWS)
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(typed, "export_123/ecotaxa_export_123.tsv")
        z.writestr("export_123/images/a.png", b"not really a png")
    table = import_ecotaxa_verification(archive, proposal_dir / "manifest.csv")
    pd.testing.assert_frame_equal(table, EXPECTED_VERIFIED)


def test_import_zip_with_two_tsvs_is_an_error(tmp_path, proposal_dir):
    typed = _write_export(tmp_path / "typed.tsv", EXPORT_HEADER, EXPORT_ROWS)
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(typed, "one.tsv")
        z.write(typed, "two.tsv")
    with pytest.raises(EcoTaxaError, match="exactly one .tsv"):
        import_ecotaxa_verification(archive, proposal_dir / "manifest.csv")


def test_import_taxonomic_names_and_category_map(tmp_path, proposal_dir):
    rows = [
        ["a.png", "validated", "", "RR1_0", "aggregate<Detritus", ""],
        ["b.png", "validated", "", "RR1_2", "detritus", ""],
        ["c.png", "validated", "", "FC1_1", "Copepoda<Maxillopoda", ""],
        ["d.png", "validated", "", "FC1_0", "long_pellet", ""],
    ]
    tsv = _write_export(tmp_path / "ecotaxa_export.tsv", EXPORT_HEADER, rows)
    table = import_ecotaxa_verification(
        tsv,
        proposal_dir / "manifest.csv",
        category_map={"detritus": "aggregate", "Copepoda<Maxillopoda": "swimmer"},
    )
    expected = pd.DataFrame(
        {
            "particle_id": ["RR1_0", "RR1_1", "RR1_2", "FC1_0", "FC1_1"],
            "label": ["aggregate", "", "aggregate", "long_pellet", "swimmer"],
            "action": ["confirmed", "rejected", "relabelled", "confirmed", "confirmed"],
        }
    )
    pd.testing.assert_frame_equal(table, expected)


def test_import_unknown_categories_listed(tmp_path, proposal_dir):
    rows = [
        ["a.png", "validated", "", "RR1_0", "Copepoda<Maxillopoda", ""],
        ["b.png", "validated", "", "RR1_2", "detritus", ""],
        # a dubious object's category is never used, so it is not an error
        ["c.png", "dubious", "", "FC1_0", "mystery", ""],
    ]
    tsv = _write_export(tmp_path / "ecotaxa_export.tsv", EXPORT_HEADER, rows)
    out = tmp_path / "verified.csv"
    with pytest.raises(EcoTaxaError) as err:
        import_ecotaxa_verification(tsv, proposal_dir / "manifest.csv", out)
    message = str(err.value)
    assert "Copepoda<Maxillopoda" in message and "detritus" in message
    assert "mystery" not in message and "category_map" in message
    assert not out.exists()


def test_import_objects_not_in_manifest_listed(tmp_path, proposal_dir):
    rows = EXPORT_ROWS + [
        ["x.png", "validated", "", "ZZ_1", "aggregate", ""],
        ["y.png", "dubious", "", "ZZ_2", "aggregate", ""],
    ]
    tsv = _write_export(tmp_path / "ecotaxa_export.tsv", EXPORT_HEADER, rows)
    out = tmp_path / "verified.csv"
    with pytest.raises(EcoTaxaError) as err:
        import_ecotaxa_verification(tsv, proposal_dir / "manifest.csv", out)
    assert "ZZ_1" in str(err.value) and "ZZ_2" in str(err.value)
    assert "not in" in str(err.value)
    assert not out.exists()


def test_import_unreviewed_objects_rejected_with_warning(tmp_path, proposal_dir):
    rows = EXPORT_ROWS + [["d.png", "predicted", "", "FC1_1", "swimmer", ""]]
    tsv = _write_export(tmp_path / "ecotaxa_export.tsv", EXPORT_HEADER, rows)
    with pytest.warns(UserWarning, match="1 object"):
        table = import_ecotaxa_verification(tsv, proposal_dir / "manifest.csv")
    pd.testing.assert_frame_equal(table, EXPECTED_VERIFIED)


def test_import_bad_status_and_missing_columns(tmp_path, proposal_dir):
    rows = [["a.png", "maybe", "", "RR1_0", "aggregate", ""]]
    tsv = _write_export(tmp_path / "ecotaxa_export.tsv", EXPORT_HEADER, rows)
    with pytest.raises(EcoTaxaError, match="maybe"):
        import_ecotaxa_verification(tsv, proposal_dir / "manifest.csv")
    tsv = _write_export(tmp_path / "short.tsv", ["object_id", "img_file_name"], [["RR1_0", "a"]])
    with pytest.raises(EcoTaxaError, match="object_annotation_category"):
        import_ecotaxa_verification(tsv, proposal_dir / "manifest.csv")


def test_round_trip_export_then_import(tmp_path, campaign, proposal_dir):
    """The exported TSV, validated unchanged in EcoTaxa, imports as all confirmed."""
    bundle = export_ecotaxa_bundle(proposal_dir, campaign, tmp_path / "b.zip")
    with zipfile.ZipFile(bundle) as z:
        text = z.read(TSV_NAME).decode()
    frame = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False)
    frame = frame.iloc[1:]
    frame["object_annotation_status"] = "validated"
    export = tmp_path / "ecotaxa_export.tsv"
    frame.to_csv(export, sep="\t", index=False)
    table = import_ecotaxa_verification(export, proposal_dir / "manifest.csv")
    assert list(table["action"]) == ["confirmed"] * len(PROPOSALS)
    assert list(table["label"]) == [p[4] for p in PROPOSALS]


def test_import_through_the_command_line(tmp_path, campaign, proposal_dir, capsys):
    """`plankflux ecotaxa import` passes the campaign's classes as classes (it once passed
    them where the category map goes, and failed on every input)."""
    from plankflux.cli.main import main

    tsv = _write_export(tmp_path / "ecotaxa_export.tsv", EXPORT_HEADER, EXPORT_ROWS)
    out = tmp_path / "verified.csv"
    argv = ["ecotaxa", "import", str(tsv), "--proposals", str(proposal_dir)]
    code = main([*argv, "--campaign", str(campaign.root), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(written, EXPECTED_VERIFIED)
    assert "1 confirmed" in capsys.readouterr().out
