"""The synthetic domains really differ: out-of-domain training is worse on the target.

Two members with the same seed, data sizes of the same order and the same short
schedule, evaluated on the same held-out RR particles: one trained on the other
four domains only (OOD), one also trained on RR's remaining labelled particles.
"""

from __future__ import annotations

import warnings

import lightning as L
import torch

from plankflux.data.trap_datamodule import TrapDataModule
from plankflux.models.classifier import ParticleClassifier

OTHERS = ["FC", "FO", "JC", "SR"]


def _fit_and_score(root, train_domains, test_loader) -> float:
    L.seed_everything(0, workers=True)
    dm = TrapDataModule(
        str(root), train_domains, "RR", image_size=32, batch_size=32, test_fraction=0.5
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ParticleClassifier(TrapDataModule.class_names.fget(dm), weights="none")
        trainer = L.Trainer(
            max_epochs=8,
            accelerator="cpu",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            deterministic=True,
        )
        trainer.fit(model, datamodule=dm)
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for batch in test_loader:
            correct += (model(batch["image"]).argmax(1) == batch["label"]).sum().item()
            total += len(batch["label"])
    return correct / total


def test_out_of_domain_member_is_worse_on_target(tiny_campaign):
    # The held-out RR test set of an in-domain module, shared by both members.
    in_domain = TrapDataModule(
        str(tiny_campaign), [*OTHERS, "RR"], "RR", image_size=32, batch_size=64, test_fraction=0.5
    )
    in_domain.setup("test")
    test_loader = in_domain.test_dataloader()
    assert len(in_domain.splits["test"]) >= 25

    acc_in = _fit_and_score(tiny_campaign, [*OTHERS, "RR"], test_loader)
    acc_ood = _fit_and_score(tiny_campaign, OTHERS, test_loader)
    print(f"target accuracy: in-domain {acc_in:.3f}, out-of-domain {acc_ood:.3f}")
    assert acc_in - acc_ood >= 0.10
