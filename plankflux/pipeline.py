"""``plankflux-pipeline``: Paper A's human-in-the-loop domain adaptation, end to end.

Stages, each writing into one workspace folder and skipped when its output is
complete, so a killed run resumes where it stopped (DESIGN §4, steps 1–7):

1. ``ood/``: an ensemble trained on every domain but the target;
2. ``ood/scores.parquet``: every target particle scored by every member;
3. ``proposals/``: unanimous votes, top K per class, copied into class folders;
4. ``verified.csv``: the expert's verdict on the proposals (simulated, or a person
   editing the folder and running ``plankflux ingest``);
5. ``minboost/`` and ``minboost_verified.csv``: extra proposals for rare classes;
6. ``retrain/<treatment>/``: ensembles retrained with target labels (``top1k``:
   unverified proposals; ``verify``; ``minboost``) and their scores on the target
   particles they did not train on;
7. ``flux/`` and ``summary.json``: flux tables, assessment and figures per treatment,
   and target accuracy per treatment.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig, open_dict

from plankflux import predict, train
from plankflux.data.campaign import load_campaign
from plankflux.eval.flux_assessment import FILES
from plankflux.flux.predictions import predictions_from_scores
from plankflux.hitl.ingest import ingest_verification
from plankflux.hitl.minboost import minboost_candidates
from plankflux.hitl.proposals import write_proposal_folder
from plankflux.hitl.simulated_expert import simulate_expert, truth_from_campaign
from plankflux.hitl.voting import consensus, top_k_per_class
from plankflux.tables.flux_figures import FluxInputs, make_flux_figures
from plankflux.utils.atomic import atomic_open, write_csv_atomic

log = logging.getLogger(__name__)
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
TREATMENTS = ("top1k", "verify", "minboost")
KEPT = ("confirmed", "relabelled")


class AwaitingExpert(Exception):
    """The pipeline stopped until a person has verified a proposal folder."""


def _stage_cfg(cfg: DictConfig, out_dir: Path, **data) -> DictConfig:
    stage = cfg.copy()
    with open_dict(stage):
        stage.paths.output_dir = str(out_dir)
        for key, value in data.items():
            stage.data[key] = value
    return stage


def train_and_score(cfg: DictConfig, out_dir: Path, target_labels: Path | None) -> Path:
    """Train ``cfg.members`` into ``out_dir/member_<seed>`` and score the target."""
    scores = out_dir / "scores.parquet"
    if scores.exists():
        log.info("%s exists: stage skipped", scores)
        return scores
    stage = _stage_cfg(cfg, out_dir, target_labels=str(target_labels) if target_labels else None)
    train.run_members(stage)
    with open_dict(stage):
        stage.checkpoints = str(out_dir)
        stage.writer = {
            "_target_": "plankflux.callbacks.prediction_writer.EnsembleScoreWriter",
            "out_dir": str(out_dir),
        }
    predict.run(stage)
    return scores


def review_effort(verified: pd.DataFrame) -> dict[str, int]:
    """What the expert did: images shown, confirmed, moved to another class, deleted."""
    actions = verified["action"].value_counts()
    return {
        "shown": len(verified),
        "confirmed": int(actions.get("confirmed", 0)),
        "moved": int(actions.get("relabelled", 0)),
        "deleted": int(actions.get("rejected", 0)),
    }


def verify(
    cfg: DictConfig, folder: Path, out: Path, campaign, mode: str, resume: str
) -> pd.DataFrame:
    """The expert's verdicts on one proposal folder: simulated, or wait for a person."""
    if not out.exists():
        if cfg.expert == "human":
            raise AwaitingExpert(
                f"\nVerify the proposals in {folder}:\n"
                f"  - leave a correctly labelled image where it is;\n"
                + (
                    "  - move a wrongly labelled image into the folder of its right class;\n"
                    if mode == "verify"
                    else "  - delete an image that is not of its folder's class;\n"
                )
                + "  - delete an image you cannot decide on.\n"
                f"Then record your verdicts and resume:\n"
                f"  plankflux ingest {folder} --campaign {campaign.root} --mode {mode} "
                f"--out {out}\n"
                f"  {resume}\n"
            )
        truth, ambiguous = truth_from_campaign(campaign.root)
        simulate_expert(folder, truth, ambiguous, mode=mode)
        ingest_verification(folder, campaign.classes, out_path=out, mode=mode)
    return pd.read_csv(out, dtype=str, keep_default_na=False)


def _labels_file(path: Path, frames: list[pd.DataFrame]) -> Path:
    """Write the in-domain training labels (``particle_id, label``) of a treatment."""
    if not path.exists():
        labels = pd.concat(frames, ignore_index=True).drop_duplicates("particle_id", keep="last")
        write_csv_atomic(labels[["particle_id", "label"]], path)
    return path


def accuracy_by_member(scores: Path, classes, truth: pd.Series, keep: set[str]) -> list[float]:
    """Per-member accuracy of ``scores`` on the labelled particles in ``keep``."""
    frame = pd.read_parquet(scores)
    frame = frame[frame["particle_id"].isin(keep)]
    predicted = np.asarray(classes)[frame[list(classes)].to_numpy().argmax(axis=1)]
    correct = predicted == truth.reindex(frame["particle_id"]).to_numpy()
    return [
        float(correct[frame["member"].to_numpy() == m].mean())
        for m in sorted(frame["member"].unique())
    ]


def run_pipeline(cfg: DictConfig) -> dict:
    """Run (or resume) every stage; return the summary also written to ``summary.json``."""
    ws = Path(cfg.paths.output_dir)
    if not Path(cfg.data.root, "particles.csv").exists():  # a synthetic one, on first use
        hydra.utils.instantiate(cfg.data, _convert_="all").prepare_data()
    campaign = load_campaign(cfg.data.root)
    others = sorted(set(campaign.particles["domain"]) - {cfg.target})
    with open_dict(cfg):
        cfg.data.target_domain = cfg.target
        cfg.data.train_domains = others
    classes = list(campaign.classes)
    resume = "plankflux-pipeline " + " ".join(sys.argv[1:])
    effort: dict[str, dict] = {}

    # 1-2. Out-of-domain ensemble and its scores on every target particle.
    ood_scores = train_and_score(cfg, ws / "ood", None)
    scores = pd.read_parquet(ood_scores)

    # 3. Voting proposals.
    proposals_dir = ws / "proposals"
    proposals = top_k_per_class(consensus(scores, classes), k=cfg.proposals.k, classes=classes)
    write_proposal_folder(proposals, campaign, proposals_dir, link=cfg.proposals.link)
    manifest = pd.read_csv(proposals_dir / "manifest.csv", dtype=str, keep_default_na=False)
    top1k = manifest.rename(columns={"proposed_label": "label"})
    labels = {"top1k": _labels_file(ws / "labels_top1k.csv", [top1k])}

    # 4. Verification.
    verified_file = ws / "verified.csv"
    verified = verify(cfg, proposals_dir, verified_file, campaign, "verify", resume)
    effort["verify"] = review_effort(verified)
    kept = verified[verified["action"].isin(KEPT)]
    labels["verify"] = _labels_file(ws / "labels_verify.csv", [kept])

    # 5. Minboost: rare classes, the images every member ranks in its top K.
    minboost_dir = ws / "minboost"
    candidates = minboost_candidates(
        scores,
        verified,
        set(manifest["particle_id"]),
        classes,
        min_verified=cfg.minboost.min_verified,
        k=cfg.minboost.k,
    )
    write_proposal_folder(candidates, campaign, minboost_dir, link=cfg.proposals.link)
    minboost_file = ws / "minboost_verified.csv"
    boosted = verify(cfg, minboost_dir, minboost_file, campaign, "minboost", resume)
    effort["minboost"] = review_effort(boosted)
    labels["minboost"] = _labels_file(
        ws / "labels_minboost.csv", [kept, boosted[boosted["action"].isin(KEPT)]]
    )

    # 6. Retraining per treatment.
    treatment_scores = {"ood": ood_scores}
    for treatment in cfg.treatments:
        n_labels = len(pd.read_csv(labels[treatment], dtype=str))
        if n_labels < 2:  # nothing to retrain with: the treatment is the OOD ensemble
            log.warning(
                "treatment %s has %d target label(s): it keeps the OOD ensemble",
                treatment,
                n_labels,
            )
            treatment_scores[treatment] = ood_scores
            continue
        treatment_scores[treatment] = train_and_score(
            cfg, ws / "retrain" / treatment, labels[treatment]
        )

    # 7. Accuracy on the labelled target particles no treatment trained on.
    particles = campaign.particles.set_index("particle_id")
    used = set().union(*(pd.read_csv(labels[t], dtype=str)["particle_id"] for t in labels))
    target = particles[(particles["domain"] == cfg.target) & (particles["label"] != "")]
    held_out = set(target.index) - used
    accuracy = {
        t: accuracy_by_member(p, classes, target["label"], held_out)
        for t, p in treatment_scores.items()
    }
    summary = {
        "target": cfg.target,
        "members": list(cfg.members),
        "review_effort": effort,
        "held_out_particles": len(held_out),
        "accuracy": {
            t: {
                "mean": float(np.mean(a)),
                "sd": float(np.std(a, ddof=1)) if len(a) > 1 else None,
                "per_member": a,
            }
            for t, a in accuracy.items()
        },
    }
    summary.update(flux_stage(cfg, ws, campaign, treatment_scores, labels))
    with atomic_open(ws / "summary.json") as handle:
        json.dump(summary, handle, indent=2)
    print(format_summary(summary))
    return summary


def flux_stage(cfg: DictConfig, ws: Path, campaign, treatment_scores: dict, labels: dict) -> dict:
    """Flux tables, assessment and Figures 5–8 of every treatment into ``ws/flux``.

    Each member's prediction stands for the particles a treatment did not train on;
    the particles it trained on keep their (verified or proposed) training label.
    """
    classes = list(campaign.classes)
    predictions = pd.concat(
        [
            predictions_from_scores(pd.read_parquet(path), t, classes)
            for t, path in treatment_scores.items()
        ],
        ignore_index=True,
    )
    fixed = pd.concat(
        [
            pd.read_csv(labels[t], dtype=str, keep_default_na=False).assign(treatment=t)
            for t in treatment_scores
            if t in labels
        ],
        ignore_index=True,
    )
    out = ws / "flux"
    make_flux_figures(FluxInputs(campaign, predictions, None, fixed), out)
    mae = pd.read_csv(out / FILES["mae"], keep_default_na=False, na_values=[""])
    total = mae[(mae["reference"] == "measured") & (mae["class_group"] == "total")]
    by_treatment = total.groupby("treatment", sort=False)["mae_mmol_m2_d"].mean()
    return {
        "flux_dir": str(out),
        "flux_mae_vs_measured": {t: float(v) for t, v in by_treatment.items()},
    }


def format_summary(summary: dict) -> str:
    effort = summary["review_effort"]
    lines = [f"plankflux-pipeline: target {summary['target']}, {len(summary['members'])} members"]
    for stage, counts in effort.items():
        if counts:
            lines.append(
                f"  reviewed ({stage}): {counts['shown']} images shown, {counts['moved']} moved, "
                f"{counts['deleted']} deleted"
            )
    lines.append(f"  accuracy on {summary['held_out_particles']} held-out labelled target images:")
    for treatment, acc in summary["accuracy"].items():
        sd = f" ± {acc['sd']:.3f}" if acc["sd"] is not None else ""
        mae = summary.get("flux_mae_vs_measured", {}).get(treatment)
        flux = f"; flux MAE vs measured {mae:.2f} mmol C m-2 d-1" if mae is not None else ""
        lines.append(f"    {treatment:9s} {acc['mean']:.3f}{sd}{flux}")
    human = summary.get("flux_mae_vs_measured", {}).get("human")
    if human is not None:
        lines.append(f"  human-label flux MAE vs measured: {human:.2f} mmol C m-2 d-1")
    lines.append(f"  flux tables and Figures 5-8: {summary.get('flux_dir')}")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="pipeline")
def main(cfg: DictConfig) -> None:
    try:
        run_pipeline(cfg)
    except AwaitingExpert as waiting:
        print(waiting)
