"""FluxTables callback: a real ``Trainer.predict`` of an untrained ResNet-18, tiny campaign."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from lightning import LightningModule, Trainer

from plankflux.callbacks.flux_tables import PREDICTIONS_FILE, FluxTables
from plankflux.datamodules.trap import TrapDataModule
from plankflux.flux import FLUX_BY_SAMPLE_COLUMNS, flux_by_sample
from plankflux.models.classifier import ParticleClassifier


def _trainer(callback) -> Trainer:
    return Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
        enable_checkpointing=False, callbacks=[callback],
    )  # fmt: skip


@pytest.mark.filterwarnings("ignore:ResNet-18 starts from random weights")
def test_flux_tables_after_predict(tiny_campaign, tmp_path):
    torch.manual_seed(0)
    dm = TrapDataModule(str(tiny_campaign), ["RR", "FC"], "RR", image_size=32, batch_size=64)
    model = ParticleClassifier(dm.class_names, weights="none", image_size=32)
    callback = FluxTables(tmp_path / "flux", treatment="OOD", member=3)
    _trainer(callback).predict(model, datamodule=dm, return_predictions=False)

    preds = pd.read_csv(tmp_path / "flux" / PREDICTIONS_FILE, dtype={"particle_id": str})
    particles = dm.campaign.particles
    rr = particles[particles["domain"] == "RR"]
    assert list(preds.columns) == ["particle_id", "treatment", "member", "label"]
    assert set(preds["particle_id"]) == set(rr["particle_id"]) and len(preds) == len(rr)
    assert set(preds["treatment"]) == {"OOD"} and set(preds["member"]) == {3}

    by_sample = pd.read_csv(tmp_path / "flux" / "flux_by_sample.csv")
    assert list(by_sample.columns) == list(FLUX_BY_SAMPLE_COLUMNS)
    assert set(by_sample["sample_id"]) == set(rr["sample_id"])
    assert set(by_sample["treatment"]) == {"OOD", "human"}
    assert (tmp_path / "flux" / "flux_summary.csv").stat().st_size > 0

    # Training/val particles of RR keep their verified label: recompute that by hand.
    trained = particles.iloc[np.concatenate([dm.splits["train"], dm.splits["val"]])]
    trained = trained[trained["domain"] == "RR"]
    assert len(trained) > 0
    fixed = dict(zip(trained["particle_id"], trained["label"], strict=True))
    expected = flux_by_sample(dm.campaign, preds, fixed_labels=fixed)
    ood = by_sample[by_sample["treatment"] == "OOD"].reset_index(drop=True)
    np.testing.assert_allclose(ood["flux_mmol_m2_d"], expected["flux_mmol_m2_d"], rtol=1e-9)


class _TwoMembers(LightningModule):
    """Minimal module whose predict_step returns (M, B, C) scores for two members."""

    def predict_step(self, batch, batch_idx):
        n, c = len(batch["row"]), 14
        probs = torch.zeros(2, n, c)
        probs[0, :, 0] = 1  # member 0: all aggregate
        probs[1, :, 13] = 1  # member 1: all noise
        return {"row": batch["row"], "probs": probs}


def test_ensemble_shaped_outputs_give_one_member_each(tiny_campaign, tmp_path):
    dm = TrapDataModule(str(tiny_campaign), ["FC"], "JC", image_size=16, batch_size=64)
    callback = FluxTables(tmp_path, treatment="E", keep_training_labels=False)
    _trainer(callback).predict(_TwoMembers(), datamodule=dm, return_predictions=False)
    by_sample = pd.read_csv(tmp_path / "flux_by_sample.csv")
    e = by_sample[by_sample["treatment"] == "E"]
    assert set(e["member"]) == {0, 1}
    totals = e[e["class_group"] == "total"].groupby("member")["flux_mmol_m2_d"].sum()
    assert totals[0] > 0 and totals[1] == 0  # noise carries no carbon
