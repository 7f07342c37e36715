"""README "From two deployments to verified proposals", run line by line on real images.

The commands are read from the README (between the ``tutorial:start`` and
``tutorial:end`` markers), so the test and the document cannot drift apart. Real
FlowCam and ZooScan images from ``../shared/realdata`` are split into two deployments:
``deployment1/<class>/`` (labelled, half of each class) and ``deployment2/`` (the other
half, flat, renamed ``img_###.jpg`` as an unsorted deployment would be). Training lines
get speed settings appended (8 epochs, 48 px, random init); everything else runs as
written. Between ``propose`` and ``ingest`` the test plays the expert, knowing the true
class of each deployment-2 image.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
REALDATA = ROOT.parent / "shared" / "realdata"
BIN = Path(sys.executable).parent
FAST_TRAINING = [
    "trainer.max_epochs=8",
    "data.image_size=48",
    "data.batch_size=16",
    "model.weights=none",
    "trainer=cpu",
]

pytestmark = pytest.mark.realdata


def tutorial_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- tutorial:start -->\n```bash\n(.*?)```\n<!-- tutorial:end -->", text, re.S
    )
    assert block, "README lost its tutorial block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def _flowcam() -> list[tuple[Path, str]]:
    root = REALDATA / "planktonclas_flowcam_demo" / "demo-images"
    return [(p, d.name) for d in sorted(root.iterdir()) for p in sorted(d.glob("*.jpg"))]


def _zooscan() -> list[tuple[Path, str]]:
    io = REALDATA / "ecotaxa_ML_template_zooscan" / "test_io"
    rows = pd.concat([pd.read_csv(io / f) for f in ("training_labels.csv", "test_labels.csv")])
    pairs = zip(rows["id"], rows["label"], strict=True)
    return [(io / "images" / f"{i}.jpg", label) for i, label in pairs]


def _deployments(images: list[tuple[Path, str]], work: Path) -> dict[str, str]:
    """Copy the images into two deployments; return deployment-2 file name -> class."""
    truth, seen = {}, {}
    for path, label in images:
        n = seen[label] = seen.get(label, 0) + 1
        if n % 2:  # odd: deployment 1, in its class folder
            (work / "deployment1" / label).mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, work / "deployment1" / label / path.name)
        else:
            name = f"img_{len(truth):03d}{path.suffix}"
            (work / "deployment2").mkdir(exist_ok=True)
            shutil.copy2(path, work / "deployment2" / name)
            truth[name] = label
    return truth


def _play_the_expert(work: Path, truth: dict[str, str]) -> dict[str, int]:
    """Verify review/round1 as a person who knows every image's class would."""
    particles = pd.read_csv(work / "my_campaign" / "particles.csv", dtype=str)
    image_of = dict(zip(particles["particle_id"], particles["image"], strict=True))
    manifest = pd.read_csv(work / "review" / "round1" / "manifest.csv", dtype=str)
    classes = {p.name for p in (work / "review" / "round1").iterdir() if p.is_dir()}
    done = {"confirmed": 0, "moved": 0, "deleted": 0}
    for pid, image, proposed in zip(
        manifest["particle_id"], manifest["image"], manifest["proposed_label"], strict=True
    ):
        true = truth[Path(image_of[pid]).name]
        assert true not in Path(image).name  # the file name does not give the label away
        path = work / "review" / "round1" / image
        if true == proposed:
            done["confirmed"] += 1
        elif true in classes:
            path.rename(work / "review" / "round1" / true / path.name)
            done["moved"] += 1
        else:
            path.unlink()
            done["deleted"] += 1
    return done


@pytest.mark.parametrize("source", ["flowcam", "zooscan"])
def test_the_readme_walk_through_on_real_images(source, tmp_path):
    if not REALDATA.is_dir():
        pytest.skip(f"real data not found at {REALDATA}")
    images = _flowcam() if source == "flowcam" else _zooscan()
    truth = _deployments(images, tmp_path)
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "PLANKFLUX_DATA_DIR": str(tmp_path / "data"),
        "PLANKFLUX_LOG_DIR": str(tmp_path / "logs"),
    }
    verified = None
    for line in tutorial_commands():
        argv = shlex.split(line)
        assert argv[0] == ".venv/bin/plankflux"
        argv = [str(BIN / "plankflux"), *argv[1:]]
        if argv[1] == "train":
            argv += FAST_TRAINING
        if argv[1] == "ingest":
            verified = _play_the_expert(tmp_path, truth)
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{line}\n{done.stderr[-3000:]}"

    campaign = pd.read_csv(
        tmp_path / "my_campaign" / "particles.csv", dtype=str, keep_default_na=False
    )
    d2 = campaign[campaign["domain"] == "D2"]
    assert len(d2) == len(truth) and (d2["label"] == "").all()
    assert not d2["particle_id"].str.contains("|".join({label for _, label in images})).any()
    ingested = pd.read_csv(tmp_path / "review" / "round1.verified.csv", keep_default_na=False)
    counts = ingested["action"].value_counts().to_dict()
    assert counts.get("confirmed", 0) == verified["confirmed"]
    assert counts.get("relabelled", 0) == verified["moved"]
    assert verified["confirmed"] + verified["moved"] > 0  # labels to retrain with
    assert counts.get("rejected", 0) == verified["deleted"]
    final = pd.read_parquet(tmp_path / "runs" / "final_d2" / "scores.parquet")
    assert sorted(final["member"].unique()) == [0, 1, 2]
    assert set(final["particle_id"]) == set(d2["particle_id"])
    # Three lean members (weights and settings), no optimiser state left behind.
    members = sorted((tmp_path / "runs" / "retrained").glob("member_*/checkpoints/*.ckpt"))
    assert [p.name for p in members] == ["best.ckpt"] * 3
    # The user's images were only read.
    for name, _ in truth.items():
        assert (tmp_path / "deployment2" / name).is_file()
