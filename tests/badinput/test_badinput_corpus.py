"""A corpus of broken and hostile inputs: each one is refused clearly, or accepted as a
documented variant, and nothing is lost or written out of place (see badinput_helpers)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from badinput_helpers import Case, edit_csv, run_and_check, scores_for, set_cell
from campaign_helpers import make_campaign
from PIL import Image

from plankflux.data.campaign import load_campaign
from plankflux.data.classes import TRAP_CLASSES
from plankflux.hitl.steps import propose

P, S, C = "camp/particles.csv", "camp/samples.csv", "camp/classes.txt"
M = "prop/manifest.csv"
VALIDATE = ["validate", "{ws}/camp"]
VALIDATE_EXISTS = ["validate", "{ws}/camp", "--images", "exists"]
INGEST = ["ingest", "{ws}/prop", "--campaign", "{ws}/camp", "--out", "{ws}/out/verified.csv"]
MINBOOST = [
    "minboost", "{ws}/scores.parquet", "--campaign", "{ws}/camp",
    "--verified", "{ws}/verified.csv", "--out", "{ws}/out/mb",
]  # fmt: skip
ONE_VERDICT = "RR1_0,aggregate,confirmed\n"
EXPORT = ["ecotaxa", "export", "{ws}/prop", "--campaign", "{ws}/camp", "--out"]
FLUX_TABLES = ["flux", "tables", "{ws}/camp", "--out", "{ws}/out/f"]
IMPORT_FOLDERS = ["import", "folders", "{ws}/src", "--out", "{ws}/out/c"]
PROPOSE = ["propose", "{ws}/scores.parquet", "--campaign", "{ws}/camp", "--out", "{ws}/out/p"]
TRAIN = [
    "train",
    "debug=tiny",
    "data=trap",
    "data.root={ws}/camp",
    "data.image_size=32",
    "data.train_domains=[FC]",
]
PREDICT = [
    "predict",
    "data=trap",
    "data.root={ws}/camp",
    "data.target_domain=RR",
    "data.train_domains=[FC]",
    "data.image_size=32",
    "trainer=cpu",
]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The valid workspace each case copies."""
    ws = tmp_path_factory.mktemp("badinput") / "ws"
    camp = make_campaign(ws / "camp")
    scores = scores_for(camp)
    scores.to_parquet(ws / "scores.parquet")
    propose(scores, load_campaign(camp), ws / "prop", k=10)
    return ws


@pytest.fixture(scope="module")
def member_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of a 32-px member whose class list is Paper A's in reverse order."""
    from plankflux.models.classifier import ParticleClassifier

    member = ParticleClassifier(list(reversed(TRAP_CLASSES)), weights=None, image_size=32)
    path = tmp_path_factory.mktemp("ckpt") / "best.ckpt"
    torch.save({"state_dict": member.state_dict(), "hyper_parameters": dict(member.hparams)}, path)
    return path


def _write(rel: str, data: bytes | str):
    def write(ws: Path) -> None:
        path = ws / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())

    return write


def _remove(rel: str):
    return lambda ws: (ws / rel).unlink()


def _cell(rel: str, row: int, column: str, value: str):
    return lambda ws: set_cell(ws / rel, row, column, value)


def _edit(rel: str, edit):
    return lambda ws: edit_csv(ws / rel, edit)


def _replace_text(rel: str, old: str, new: str):
    def replace(ws: Path) -> None:
        path = ws / rel
        path.write_bytes(path.read_bytes().replace(old.encode(), new.encode()))

    return replace


def _both(*steps):
    def run(ws: Path) -> None:
        for step in steps:
            step(ws)

    return run


def _symlink_image_outside(ws: Path) -> None:
    outside = ws.parent / "elsewhere.png"
    Image.new("RGB", (8, 8)).save(outside)
    target = ws / "camp/images/RR1_0.png"
    target.unlink()
    target.symlink_to(outside)


def _outside_image(ws: Path) -> None:
    Image.new("RGB", (8, 8)).save(ws.parent / "outside.png")
    set_cell(ws / P, 0, "image", "../../outside.png")


def _move_file(src_class: str, dst_folder: str):
    def move(ws: Path) -> None:
        src = next((ws / "prop" / src_class).iterdir())
        (ws / "prop" / dst_folder).mkdir(exist_ok=True)
        shutil.copy2(src, ws / "prop" / dst_folder / src.name)
        src.unlink()

    return move


def _copy_into_two_folders(ws: Path) -> None:
    src = next((ws / "prop/aggregate").iterdir())
    shutil.copy2(src, ws / "prop/long_pellet" / src.name)


def _swap_manifest_ids(ws: Path) -> None:
    def swap(frame):
        frame.loc[[0, 1], "particle_id"] = frame.loc[[1, 0], "particle_id"].to_numpy()
        return frame

    edit_csv(ws / M, swap)


def _checkpoint_file(data: bytes):
    return _write("run/checkpoints/best.ckpt", data)


class _Payload:
    """Pickled, it would create a file when loaded without weights_only."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _malicious_checkpoint(ws: Path) -> None:
    path = ws / "run/checkpoints/best.ckpt"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {}, "hyper_parameters": _Payload(str(ws.parent / "pwned"))}, path)


def _wrong_class_order(member_checkpoint: Path):
    def copy(ws: Path) -> None:
        (ws / "run/checkpoints").mkdir(parents=True)
        shutil.copy2(member_checkpoint, ws / "run/checkpoints/best.ckpt")

    return copy


def _fifo_image(ws: Path) -> None:
    os.mkfifo(ws / "camp/images/pipe.png")
    set_cell(ws / P, 0, "image", "images/pipe.png")


def _scores_with(value: float):
    def edit(ws: Path) -> None:
        import pandas as pd

        scores = pd.read_parquet(ws / "scores.parquet")
        scores.loc[3, "aggregate"] = value
        scores.to_parquet(ws / "scores.parquet")

    return edit


def _empty_scores(ws: Path) -> None:
    import pandas as pd

    pd.read_parquet(ws / "scores.parquet").iloc[:0].to_parquet(ws / "scores.parquet")


def _proposal_linked_to_passwd(ws: Path) -> None:
    target = next((ws / "prop/aggregate").iterdir())
    target.unlink()
    target.symlink_to("/etc/passwd")


def _verified(text: str):
    return _write("verified.csv", "particle_id,label,action\n" + text)


def _latin1_particles(ws: Path) -> None:
    path = ws / P
    path.write_bytes(path.read_bytes().replace(b"aggregate", b"agr\xe9gate", 1))


def _profile_pairs(ws: Path, profile_text: str, image: str = "img/a.png") -> None:
    root = ws / "pairs"
    (root / "img").mkdir(parents=True)
    (root / "prof").mkdir()
    Image.new("L", (8, 8), 100).save(root / "img/a.png")
    header = "FWS,SWS,FL_red,FL_orange,FL_yellow,FL_green\n"
    (root / "prof/a.csv").write_text(header + profile_text)
    (root / "annotations.csv").write_text(f"image,profile,class\n{image},prof/a.csv,x\n")


CASES = [
    # ---------------------------------------------------------------- campaign files
    Case("particles-missing", _remove(P), VALIDATE, r"particles\.csv: file not found"),
    Case("samples-missing", _remove(S), VALIDATE, r"samples\.csv: file not found"),
    Case(
        "particles-header-only",
        _write(P, "particle_id,image,domain,sample_id,esd_um,label\n"),
        VALIDATE,
        r"particles\.csv: has a header but no rows",
    ),
    Case(
        "particles-empty-file", _write(P, ""), VALIDATE, r"particles\.csv: cannot be parsed as CSV"
    ),
    Case(
        "samples-header-only",
        _write(S, "sample_id,domain,depth_m,imaged_area_m2,deployment_days\n"),
        VALIDATE,
        r"samples\.csv: has a header but no rows",
    ),
    Case(
        "duplicated-label-column",
        _replace_text(P, "esd_um,label", "esd_um,label,label"),
        VALIDATE,
        r"particles\.csv line 1, column 'label': column appears more than once",
    ),
    Case(
        "misspelt-optional-column",
        _edit(P, lambda f: f.assign(ambigous="false")),
        VALIDATE,
        r"particles\.csv line 1, column 'ambigous': unknown column; did you mean 'ambiguous'",
    ),
    Case(
        "misspelt-required-column",
        _replace_text(P, "esd_um", "esd_nm"),
        VALIDATE,
        r"column 'esd_nm': unknown column; did you mean 'esd_um'.*column 'esd_um': required",
    ),
    Case(
        "latin1-particles",
        _latin1_particles,
        VALIDATE,
        r"particles\.csv line 2: is not UTF-8 text \(byte 0xe9\)",
    ),
    Case(
        "esd-not-a-number",
        _cell(P, 1, "esd_um", "big"),
        VALIDATE,
        r"particles\.csv line 3 \(particle_id 'RR1_1'\), column 'esd_um': not a number: 'big'",
    ),
    Case(
        "esd-negative",
        _cell(P, 0, "esd_um", "-5"),
        VALIDATE,
        r"line 2 \(particle_id 'RR1_0'\), column 'esd_um': must be > 0, got -5",
    ),
    Case(
        "esd-infinite",
        _cell(P, 0, "esd_um", "inf"),
        VALIDATE,
        r"line 2 .*column 'esd_um': not a finite number: 'inf'",
    ),
    Case(
        "duplicate-particle-id",
        _cell(P, 1, "particle_id", "RR1_0"),
        VALIDATE,
        r"line 3 \(particle_id 'RR1_0'\), column 'particle_id': duplicate particle_id "
        r"\(first seen on line 2\)",
    ),
    Case(
        "empty-particle-id",
        _cell(P, 2, "particle_id", ""),
        VALIDATE,
        r"particles\.csv line 4, column 'particle_id': value is empty",
    ),
    Case(
        "control-character-in-id",
        _cell(P, 0, "particle_id", "RR1\x07_0"),
        VALIDATE,
        r"line 2, column 'particle_id': value 'RR1\\x07_0' contains control character",
    ),
    Case(
        "unknown-label",
        _cell(P, 0, "label", "aggregat"),
        VALIDATE,
        r"line 2 \(particle_id 'RR1_0'\), column 'label': unknown class label 'aggregat'",
    ),
    Case(
        "sample-not-in-samples",
        _cell(P, 0, "sample_id", "RR9"),
        VALIDATE,
        r"line 2 .*column 'sample_id': sample_id 'RR9' is not in samples\.csv",
    ),
    Case(
        "domain-differs-from-sample",
        _cell(P, 0, "domain", "FC"),
        VALIDATE,
        r"line 2 .*column 'domain': domain 'FC' differs from sample 'RR1'",
    ),
    Case(
        "domain-path-traversal",
        _both(_cell(P, 0, "domain", "../x"), _cell(S, 0, "domain", "../x")),
        VALIDATE,
        r"samples\.csv line 2, column 'domain': value '\.\./x' contains a path separator",
    ),
    Case(
        "sample-id-with-slash",
        _both(_cell(P, 0, "sample_id", "a/b"), _cell(S, 0, "sample_id", "a/b")),
        VALIDATE,
        r"samples\.csv line 2, column 'sample_id': value 'a/b' contains a path separator",
    ),
    Case(
        "image-path-escapes",
        _outside_image,
        VALIDATE,
        r"line 2 .*column 'image': image path '\.\./\.\./outside\.png' leads outside",
    ),
    Case(
        "image-symlink-escapes",
        _symlink_image_outside,
        VALIDATE,
        r"line 2 .*column 'image': image path 'images/RR1_0\.png' leads outside",
    ),
    Case(
        "etc-passwd-as-image",
        _cell(P, 0, "image", "/etc/passwd"),
        VALIDATE_EXISTS,
        r"line 2 .*column 'image': '/etc/passwd' is not an image file name",
    ),
    Case(
        "propose-refuses-etc-passwd",
        _cell(P, 0, "image", "/etc/passwd"),
        PROPOSE,
        r"line 2 .*column 'image': '/etc/passwd' is not an image file name",
    ),
    Case(
        "image-missing",
        _remove("camp/images/FC1_1.png"),
        VALIDATE,
        r"line 6 \(particle_id 'FC1_1'\), column 'image': image file is missing",
    ),
    Case(
        "image-truncated",
        lambda ws: (ws / "camp/images/RR1_2.png").write_bytes(
            (ws / "camp/images/RR1_2.png").read_bytes()[:-20]
        ),
        VALIDATE,
        r"line 4 \(particle_id 'RR1_2'\), column 'image': image cannot be decoded",
    ),
    Case(
        "text-file-named-png",
        _write("camp/images/RR1_1.png", "not an image"),
        VALIDATE,
        r"line 3 \(particle_id 'RR1_1'\), column 'image': image cannot be decoded",
    ),
    Case(
        "ambiguous-not-boolean",
        _edit(P, lambda f: f.assign(ambiguous=["maybe", *["no"] * (len(f) - 1)])),
        VALIDATE,
        r"line 2 .*column 'ambiguous': not a boolean: 'maybe'",
    ),
    Case(
        "magnification-zero",
        _edit(P, lambda f: f.assign(magnification=["0", *["1"] * (len(f) - 1)])),
        VALIDATE,
        r"line 2 \(particle_id 'RR1_0'\), column 'magnification': must be > 0, got 0",
    ),
    Case(
        "duplicate-sample-id",
        _cell(S, 1, "sample_id", "RR1"),
        VALIDATE,
        r"samples\.csv line 3, column 'sample_id': duplicate sample_id 'RR1'",
    ),
    Case(
        "imaged-area-zero",
        _cell(S, 0, "imaged_area_m2", "0"),
        VALIDATE,
        r"samples\.csv line 2, column 'imaged_area_m2': must be > 0, got 0",
    ),
    Case(
        "deployment-days-text",
        _cell(S, 1, "deployment_days", "three"),
        VALIDATE,
        r"samples\.csv line 3, column 'deployment_days': not a number: 'three'",
    ),
    Case(
        "empty-sample-domain",
        _cell(S, 1, "domain", ""),
        VALIDATE,
        r"samples\.csv line 3, column 'domain': value is empty",
    ),
    Case(
        "binary-garbage-samples",
        _write(S, bytes(range(256)) * 4),
        VALIDATE,
        r"samples\.csv line 2: is not UTF-8 text \(byte 0x80\)",
    ),
    # ---------------------------------------------------------------- class lists
    Case(
        "classes-duplicate",
        _write(C, "aggregate\nlong_pellet\naggregate\n"),
        VALIDATE,
        r"classes\.txt line 3: duplicate class name 'aggregate' \(first on line 1\)",
    ),
    Case(
        "classes-path-traversal",
        _write(C, "aggregate\n../../x/agg\n"),
        VALIDATE,
        r"classes\.txt line 2: class name '\.\./\.\./x/agg' contains a path separator",
    ),
    Case(
        "propose-with-traversal-class",
        _write(C, "aggregate\n../../x/agg\n"),
        PROPOSE,
        r"classes\.txt line 2: class name '\.\./\.\./x/agg' contains a path separator",
    ),
    Case(
        "taxonomy-name-with-slash",
        _write(C, "aggregate\nCopepoda/Calanoida\n"),
        VALIDATE,
        r"classes\.txt line 2: class name 'Copepoda/Calanoida' contains a path separator",
    ),
    Case("classes-empty", _write(C, "\n\n"), VALIDATE, r"classes\.txt: holds no class name"),
    Case(
        "classes-control-character",
        _write(C, "aggregate\nlong\tpellet\n"),
        VALIDATE,
        r"classes\.txt line 2: class name 'long\\tpellet' contains control character",
    ),
    Case(
        "classes-dot-dot",
        _write(C, "aggregate\n..\n"),
        VALIDATE,
        r"classes\.txt line 2: class name '\.\.' is not a name",
    ),
    Case(
        "classes-latin1",
        _write(C, "aggregate\nd\xe9tritus\n".encode("latin-1")),
        VALIDATE,
        r"classes\.txt line 2: is not UTF-8 text \(byte 0xe9\)",
    ),
    Case(
        "classes-label-not-listed",
        _write(C, "\ufeffaggregate\r\nswimmer\r\n"),
        VALIDATE,
        r"line 3 \(particle_id 'RR1_1'\), column 'label': unknown class label 'long_pellet'",
    ),
    # ---------------------------------------------------------------- proposal folders
    Case("manifest-missing", _remove(M), INGEST, r"prop/manifest\.csv: manifest\.csv not found"),
    Case(
        "manifest-unknown-particle",
        _cell(M, 0, "particle_id", "ZZ_404"),
        INGEST,
        r"manifest\.csv line 2: particle_id 'ZZ_404' is not in the campaign",
    ),
    Case(
        "manifest-ids-swapped",
        _swap_manifest_ids,
        INGEST,
        r"manifest\.csv line 2: image '.*' is not the file of particle_id",
    ),
    Case(
        "manifest-label-not-a-class",
        _cell(M, 0, "proposed_label", "unicorn"),
        INGEST,
        r"manifest\.csv line 2: proposed_label 'unicorn' is not a class",
    ),
    Case(
        "manifest-image-traversal",
        _cell(M, 0, "image", "aggregate/../../../etc/passwd"),
        INGEST,
        r"manifest\.csv line 2: image 'aggregate/\.\./\.\./\.\./etc/passwd' is not "
        r"<proposed_label>/<file>",
    ),
    Case(
        "manifest-missing-column",
        _edit(M, lambda f: f.drop(columns=["rank"])),
        INGEST,
        r"manifest\.csv: missing column\(s\) rank",
    ),
    Case(
        "manifest-duplicate-row",
        _edit(M, lambda f: f.iloc[[0, 0, *range(1, len(f))]]),
        INGEST,
        r"manifest\.csv: particle_id '\w+' listed more than once",
    ),
    Case(
        "stray-file-in-class-folder",
        _write("prop/aggregate/holiday.jpg", b"x"),
        INGEST,
        r"prop/aggregate/holiday\.jpg: file not in the manifest",
    ),
    Case(
        "folder-that-is-not-a-class",
        _move_file("aggregate", "agregate"),
        INGEST,
        r"prop/agregate: folder is not a class",
    ),
    Case(
        "file-in-two-class-folders",
        _copy_into_two_folders,
        INGEST,
        r"present in 2 class folders",
    ),
    Case(
        "simulate-expert-without-truth",
        _edit(P, lambda f: f.assign(label="")),
        ["simulate-expert", "{ws}/prop", "--campaign", "{ws}/camp"],
        r"prop: none of the \d+ proposed particles has a known true label",
    ),
    Case(
        "scores-missing",
        _remove("scores.parquet"),
        PROPOSE,
        r"score table not found: .*scores\.parquet",
    ),
    Case(
        "scores-not-parquet",
        _write("scores.parquet", "particle_id,member\n"),
        PROPOSE,
        r"cannot read score table .*scores\.parquet",
    ),
    Case(
        "propose-into-a-full-folder",
        _write("out/p/notes.txt", "mine"),
        PROPOSE,
        r"out/p is not empty and holds no manifest\.csv; refusing to write into it",
    ),
    # ---------------------------------------------------------------- checkpoints
    Case(
        "checkpoint-truncated",
        _checkpoint_file(b"PK\x03\x04" + b"\x00" * 100),
        [*PREDICT, "checkpoints={ws}/run"],
        r"best\.ckpt: cannot be read as a plankflux checkpoint \(truncated",
    ),
    Case(
        "checkpoint-foreign-file",
        _checkpoint_file(b"hello, not a checkpoint"),
        [*PREDICT, "checkpoints={ws}/run"],
        r"best\.ckpt: not a checkpoint \(not a PyTorch zip archive\)",
    ),
    Case(
        "checkpoint-with-code",
        _malicious_checkpoint,
        [*PREDICT, "checkpoints={ws}/run"],
        r"best\.ckpt: cannot be read as a plankflux checkpoint",
    ),
    Case(
        "checkpoint-folder-without-members",
        lambda ws: (ws / "run").mkdir(),
        [*PREDICT, "checkpoints={ws}/run"],
        r"no checkpoints/best\.ckpt found under .*run",
    ),
    Case(
        "checkpoint-path-missing",
        lambda ws: None,
        [*PREDICT, "checkpoints={ws}/nowhere"],
        r"checkpoints: .*nowhere is neither a run folder nor a file",
    ),
    Case(
        "resume-from-a-csv",
        lambda ws: None,
        [*TRAIN, "ckpt_path={ws}/camp/particles.csv"],
        r"particles\.csv: not a checkpoint",
    ),
    # ---------------------------------------------------------------- command-line settings
    Case("seed-not-a-number", lambda ws: None, [*TRAIN, "seed=abc"], r"seed: expected a whole"),
    Case(
        "max-epochs-word",
        lambda ws: None,
        [*TRAIN, "trainer.max_epochs=ten"],
        r"trainer\.max_epochs: expected a whole number, got 'ten'",
    ),
    Case(
        "batch-size-zero",
        lambda ws: None,
        [*TRAIN, "data.batch_size=0"],
        r"data\.batch_size: must be >= 1, got 0",
    ),
    Case(
        "learning-rate-negative",
        lambda ws: None,
        [*TRAIN, "model.optimizer.lr=-1"],
        r"model\.optimizer\.lr: must be > 0, got -1",
    ),
    Case(
        "members-not-integers",
        lambda ws: None,
        [*TRAIN, "members=[a,b]"],
        r"members: item 0: expected a whole number, got 'a'",
    ),
    Case(
        "unknown-target-domain",
        lambda ws: None,
        [*TRAIN, "data.target_domain=XX"],
        r"domain 'XX' is not in .*particles\.csv",
    ),
    Case(
        "campaign-error-at-training",
        _cell(P, 0, "esd_um", "big"),
        [*TRAIN, "data.target_domain=RR"],
        r"line 2 .*column 'esd_um': not a number: 'big'",
    ),
    Case(
        "mistyped-root-with-synthetic-config",
        lambda ws: None,
        ["train", "debug=tiny", "data.root={ws}/my_campain"],
        r"data\.root .*my_campain holds no data set",
    ),
    Case(
        "unknown-config-group-option",
        lambda ws: None,
        ["train", "debug=tiny", "data=nonexistent"],
        r"Could not find 'data/nonexistent'",
        own_process=True,
    ),
    Case(
        "override-syntax-error",
        lambda ws: None,
        ["train", "debug=tiny", "seed=["],
        r"plankflux train: cannot read the override 'seed=\[': no viable alternative",
    ),
    Case(
        "override-unknown-key",
        lambda ws: None,
        ["train", "debug=tiny", "nokey=1"],
        r"Could not override 'nokey'",
        own_process=True,
    ),
    # ---------------------------------------------------------------- CytoSense pairs
    Case(
        "profile-with-nan",
        lambda ws: _profile_pairs(ws, "1,2,3,4,5,6\nnan,2,3,4,5,6\n"),
        ["validate", "{ws}/pairs"],
        r"prof/a\.csv.*line 3",
    ),
    Case(
        "pair-image-escapes",
        lambda ws: _profile_pairs(ws, "1,2,3,4,5,6\n", image="../../x.png"),
        ["validate", "{ws}/pairs"],
        r"annotations\.csv line 2, column 'image': image path '\.\./\.\./x\.png' leads outside",
    ),
    Case(
        "profile-bands-reordered",
        _both(
            lambda ws: _profile_pairs(ws, "1,2,3,4,5,6\n"),
            _write(
                "pairs/prof/a.csv", "fl_red,sws,fl_green,fl_yellow,fl_orange,fws\n1,2,3,4,5,6\n"
            ),
        ),
        ["validate", "{ws}/pairs"],
        r"prof/a\.csv line 1: header \['fl_red', .*\] is not the bands",
    ),
    Case(
        "pair-classes-duplicate-and-traversal",
        _both(
            lambda ws: _profile_pairs(ws, "1,2,3,4,5,6\n"),
            _write("pairs/classes.txt", "x\n../evil\nx\n"),
        ),
        ["validate", "{ws}/pairs"],
        r"classes\.txt line 2: class name '\.\./evil' contains a path separator.*"
        r"classes\.txt line 3: duplicate class name 'x' \(first on line 1\)",
    ),
    Case(
        "pair-image-not-an-image",
        lambda ws: _profile_pairs(ws, "1,2,3,4,5,6\n", image="prof/a.csv"),
        ["validate", "{ws}/pairs"],
        r"annotations\.csv line 2, column 'image': 'prof/a\.csv' is not an image file name",
    ),
    # ---------------------------------------------------------------- found by probing
    Case(
        "fifo-as-image",
        _fifo_image,
        VALIDATE,
        r"line 2 .*column 'image': not a regular file",
    ),
    Case(
        "esd-absurdly-large",
        _cell(P, 0, "esd_um", "1e300"),
        VALIDATE,
        r"line 2 .*column 'esd_um': must be <= 100000, got 1e300",
    ),
    Case(
        "measured-flux-negative",
        _edit(S, lambda f: f.assign(measured_flux_mmol_m2_d=["-3", "1"])),
        VALIDATE,
        r"samples\.csv line 2, column 'measured_flux_mmol_m2_d': must be >= 0, got -3",
    ),
    Case(
        "depth-negative",
        _cell(S, 1, "depth_m", "-150"),
        VALIDATE,
        r"samples\.csv line 3, column 'depth_m': must be >= 0, got -150",
    ),
    Case(
        "line-break-inside-a-date",
        _edit(S, lambda f: f.assign(date=["2021-05-03\nx", "2021-05-04"])),
        VALIDATE,
        r"samples\.csv line 2, column 'date': value .* contains control character\(s\) \['0xa'\]",
    ),
    Case(
        "right-to-left-override-in-id",
        _cell(P, 0, "particle_id", "RR1_0\u202egnp"),
        VALIDATE,
        r"line 2, column 'particle_id': value .* contains control character\(s\) \['0x202e'\]",
    ),
    Case(
        "score-not-a-number",
        _scores_with(float("nan")),
        PROPOSE,
        r"scores\.parquet: 1 score\(s\) are not numbers in \[0, 1\], e\.g\. row 4 .*'aggregate'",
    ),
    Case(
        "score-above-one",
        _scores_with(5.0),
        PROPOSE,
        r"scores\.parquet: 1 score\(s\) are not numbers in \[0, 1\].*5\.0",
    ),
    Case(
        "score-table-without-rows",
        _empty_scores,
        PROPOSE,
        r"scores\.parquet: the score table has no rows",
    ),
    Case(
        "stats-out-over-particles-csv",
        lambda ws: None,
        ["stats", "{ws}/camp", "--size", "8", "--out", "{ws}/camp/particles.csv"],
        r"refusing to write .*camp/particles\.csv: it lies inside the campaign folder",
    ),
    Case(
        "ingest-out-over-particles-csv",
        lambda ws: None,
        [*INGEST[:-1], "{ws}/camp/particles.csv"],
        r"refusing to write .*camp/particles\.csv: it lies inside the campaign folder",
    ),
    Case(
        "ecotaxa-export-out-over-manifest",
        lambda ws: None,
        [
            "ecotaxa",
            "export",
            "{ws}/prop",
            "--campaign",
            "{ws}/camp",
            "--out",
            "{ws}/prop/manifest.csv",
        ],
        r"refusing to write .*prop/manifest\.csv: it lies inside the proposals folder",
    ),
    Case(
        "ecotaxa-export-of-a-linked-system-file",
        _proposal_linked_to_passwd,
        [*EXPORT, "{ws}/out/x.zip"],
        r"a link to /etc/passwd, not to RR1_\d's image",
    ),
    Case(
        "flux-tables-into-the-campaign",
        lambda ws: None,
        ["flux", "tables", "{ws}/camp", "--out", "{ws}/camp/flux"],
        r"refusing to write .*camp/flux: it lies inside the campaign folder",
    ),
    Case(
        "pipeline-target-traversal",
        lambda ws: None,
        ["pipeline", "data=trap", "data.root={ws}/camp", "target=../../escape"],
        r"target: the value '\.\./\.\./escape' contains a path separator",
    ),
    Case(
        "task-name-traversal",
        lambda ws: None,
        [*TRAIN, "task_name=../../escape"],
        r"task_name: the value '\.\./\.\./escape' contains a path separator",
    ),
    Case(
        "allometry-yaml-broken",
        _write("allometry.yaml", "rows: [[[\n"),
        [
            "flux",
            "tables",
            "{ws}/camp",
            "--out",
            "{ws}/out/f",
            "--allometry",
            "{ws}/allometry.yaml",
        ],
        r"allometry\.yaml: not a readable YAML allometry table",
    ),
    Case(
        "allometry-yaml-with-code",
        _write("allometry.yaml", "rows: !!python/object/apply:os.system ['touch ../pwned']\n"),
        [
            "flux",
            "tables",
            "{ws}/camp",
            "--out",
            "{ws}/out/f",
            "--allometry",
            "{ws}/allometry.yaml",
        ],
        r"allometry\.yaml: not a readable YAML allometry table",
    ),
    Case(
        "truncated-gz-metadata",
        _both(
            _write("src/aggregate/a.png", b""),
            lambda ws: Image.new("RGB", (4, 4)).save(ws / "src/aggregate/a.png"),
            _write("meta.csv.gz", b"\x1f\x8b\x08garbage"),
        ),
        [
            "import",
            "folders",
            "{ws}/src",
            "--out",
            "{ws}/out/c",
            "--metadata-csv",
            "{ws}/meta.csv.gz",
        ],
        r"cannot read .*meta\.csv\.gz as a table",
    ),
    Case(
        "minboost-verified-unknown-particle",
        _verified("GHOST,aggregate,confirmed\n"),
        MINBOOST,
        r"verified\.csv: 1 problem\(s\):\n  line 2: particle_id 'GHOST' is not in the campaign",
    ),
    Case(
        "minboost-verified-unknown-label",
        _verified("RR1_0,unicorn,confirmed\n"),
        MINBOOST,
        r"verified\.csv: .*line 2: label 'unicorn' is not a class",
    ),
    Case(
        "minboost-verified-contradicting-rows",
        _verified("RR1_0,aggregate,confirmed\nRR1_0,long_pellet,relabelled\n"),
        MINBOOST,
        r"verified\.csv: .*particle_id 'RR1_0' keeps a label on more than one row",
    ),
    Case(
        "minboost-verified-label-on-a-rejection",
        _verified("RR1_0,aggregate,rejected\n"),
        MINBOOST,
        r"verified\.csv: .*line 2: action 'rejected' with label 'aggregate'",
    ),
    Case(
        "minboost-shown-unknown-particles",
        _both(
            _verified("RR1_0,aggregate,confirmed\n"), _write("shown.csv", "particle_id\nGHOST\n")
        ),
        [
            *[
                "minboost",
                "{ws}/scores.parquet",
                "--campaign",
                "{ws}/camp",
                "--verified",
                "{ws}/verified.csv",
                "--out",
                "{ws}/out/mb",
            ],
            "--shown",
            "{ws}/shown.csv",
        ],
        r"--shown: 1 particle_id\(s\) not in the campaign, e\.g\. \['GHOST'\]",
    ),
    Case(
        "ecotaxa-import-of-an-empty-export",
        _write(
            "export.tsv",
            "object_id\timg_file_name\tobject_annotation_status\tobject_annotation_category\n",
        ),
        [
            "ecotaxa",
            "import",
            "{ws}/export.tsv",
            "--proposals",
            "{ws}/prop",
            "--campaign",
            "{ws}/camp",
            "--out",
            "{ws}/out/v.csv",
        ],
        r"export\.tsv holds none of the \d+ objects of .*manifest\.csv",
    ),
    Case(
        "knn-on-a-folder",
        lambda ws: (ws / "run").mkdir(),
        ["knn", "{ws}/run", "{ws}/pairs", "--out", "{ws}/out/knn"],
        r"run is a folder: give its checkpoints/best\.ckpt",
    ),
    Case(
        "minboost-shown-without-ids",
        _both(_verified(ONE_VERDICT), _write("shown.csv", "id\nRR1_0\n")),
        [
            *[
                "minboost",
                "{ws}/scores.parquet",
                "--campaign",
                "{ws}/camp",
                "--verified",
                "{ws}/verified.csv",
                "--out",
                "{ws}/out/mb",
            ],
            "--shown",
            "{ws}/shown.csv",
        ],
        r"shown\.csv: no particle_id column",
    ),
]

ACCEPTED = [
    Case(
        "bom-and-crlf-classes",
        _write(C, "\ufeff" + "\r\n".join(TRAP_CLASSES) + "\r\n"),
        VALIDATE,
        "",
        accepted=True,
    ),
    Case(
        "bom-and-crlf-particles",
        lambda ws: (ws / P).write_bytes(
            b"\xef\xbb\xbf" + (ws / P).read_bytes().replace(b"\n", b"\r\n")
        ),
        VALIDATE,
        "",
        accepted=True,
    ),
    Case(
        "spreadsheet-saved-manifest",
        lambda ws: (ws / M).write_bytes(
            b"\xef\xbb\xbf" + (ws / M).read_bytes().replace(b"\n", b"\r\n")
        ),
        INGEST,
        "",
        outputs=("out",),
        accepted=True,
    ),
    Case(
        "extra-column-ignored",
        _edit(P, lambda f: f.assign(notes="seen twice")),
        VALIDATE,
        "",
        accepted=True,
    ),
    Case(
        "absolute-image-path",
        lambda ws: set_cell(ws / P, 0, "image", str(ws / "camp/images/RR1_0.png")),
        VALIDATE,
        "",
        accepted=True,
    ),
]


@pytest.fixture
def ws(template, tmp_path, monkeypatch) -> Path:
    work = tmp_path / "ws"
    shutil.copytree(template, work, symlinks=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("PLANKFLUX_LOG_DIR", str(work / "logs"))
    monkeypatch.delenv("PLANKFLUX_TRACEBACK", raising=False)
    return work


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES + ACCEPTED}) == len(CASES + ACCEPTED)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_refused_clearly_and_nothing_lost(case, ws, tmp_path, capsys, member_checkpoint):
    run_and_check(case, tmp_path, ws, capsys)
    assert not (tmp_path / "pwned").exists()  # no pickled code ran


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.id)
def test_documented_variants_are_accepted(case, ws, tmp_path, capsys):
    run_and_check(case, tmp_path, ws, capsys)


def test_a_checkpoint_for_another_class_order_is_refused(ws, tmp_path, capsys, member_checkpoint):
    case = Case(
        "checkpoint-other-class-order",
        _wrong_class_order(member_checkpoint),
        [*PREDICT, "checkpoints={ws}/run"],
        r"trained for other data than .*camp: class_names",
    )
    run_and_check(case, tmp_path, ws, capsys)


def test_nothing_in_the_corpus_touches_the_template(template):
    assert not os.path.exists(template.parent / "pwned")
