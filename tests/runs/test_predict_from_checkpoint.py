"""``plankflux predict checkpoints=RUN data.root=C data.target_domain=D``: the image size,
resize mode and normalisation come from the members' checkpoints, not from repeated
data settings; nothing synthetic is generated for a campaign that is not there."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
import torch
from campaign_helpers import make_campaign

from plankflux.cli.main import main
from plankflux.data.classes import TRAP_CLASSES
from plankflux.models.classifier import ParticleClassifier


def _member(run, **data_settings) -> None:
    member = ParticleClassifier(list(TRAP_CLASSES), weights=None, **data_settings)
    path = run / "member_0" / "checkpoints" / "best.ckpt"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": member.state_dict(), "hyper_parameters": dict(member.hparams)}, path)


def _predict(monkeypatch, tmp_path, *overrides) -> int:
    monkeypatch.setattr(sys, "argv", ["plankflux"])
    monkeypatch.chdir(tmp_path)
    try:
        return main(["predict", *overrides, "trainer=cpu"])
    except SystemExit as stop:
        return stop.code


def test_preprocessing_comes_from_the_checkpoints(tmp_path, monkeypatch, capsys):
    camp = make_campaign(tmp_path / "my_campaign")
    _member(tmp_path / "run", image_size=40, resize_mode="pad_median", normalize="imagenet")
    code = _predict(
        monkeypatch,
        tmp_path,
        f"checkpoints={tmp_path / 'run'}",
        f"data.root={camp}",
        "data.target_domain=FC",
        "hydra.run.dir=out",
    )
    assert code == 0, capsys.readouterr().err
    scores = pd.read_parquet(tmp_path / "out" / "scores.parquet")
    assert sorted(scores["particle_id"]) == ["FC1_0", "FC1_1", "FC1_2"]
    assert list(scores.columns) == ["particle_id", "member", *TRAP_CLASSES]
    assert not list(tmp_path.glob("data/synthetic*"))  # no synthetic campaign generated


def test_a_preprocessing_set_on_the_command_line_must_match(tmp_path, monkeypatch, capsys):
    camp = make_campaign(tmp_path / "my_campaign")
    _member(tmp_path / "run", image_size=40)
    code = _predict(
        monkeypatch,
        tmp_path,
        f"checkpoints={tmp_path / 'run'}",
        f"data.root={camp}",
        "data.target_domain=FC",
        "data.image_size=64",
        "hydra.run.dir=out",
    )
    assert code == 1
    assert "image_size: data has 64, checkpoint has 40" in capsys.readouterr().err


def test_a_campaign_that_is_not_there_is_an_error_not_a_synthetic_one(
    tmp_path, monkeypatch, capsys
):
    _member(tmp_path / "run", image_size=40)
    code = _predict(
        monkeypatch,
        tmp_path,
        f"checkpoints={tmp_path / 'run'}",
        f"data.root={tmp_path / 'my_campain'}",
        "data.target_domain=FC",
        "hydra.run.dir=out",
    )
    assert code == 1
    assert "my_campain holds no data set" in capsys.readouterr().err
    assert not (tmp_path / "my_campain").exists()


@pytest.fixture(autouse=True)
def _no_traceback_env(monkeypatch):
    monkeypatch.delenv("PLANKFLUX_TRACEBACK", raising=False)
