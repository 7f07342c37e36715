"""``plankflux pipeline``: Paper A's human-in-the-loop domain adaptation, end to end.

Stages, each writing into one workspace folder (:class:`~plankflux.layout.Workspace`)
and skipped when its output is complete, so a stopped run resumes where it stopped
(steps 1–7 of ``docs/paper_a.md``, "Human-in-the-loop domain adaptation"):

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
   target accuracy per treatment, and Paper A's claims tested over members
   (:mod:`plankflux.eval.claims`).

:func:`run_pipeline` is the orchestration, free of Hydra: it calls the steps of
:mod:`plankflux.hitl.steps` and a ``fit_and_score`` function for the training stages
(tests pass a fake one). :func:`run_from_config` supplies the real one from a Hydra
config: :func:`plankflux.runs.train.run_members`, then :func:`plankflux.runs.predict.run`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig, open_dict

from plankflux.data.campaign import Campaign, load_campaign
from plankflux.data.classes import to_original_scheme
from plankflux.eval import claims as claims_lib
from plankflux.eval.flux_assessment import FILES, human_reference_note
from plankflux.flux.predictions import human_label_column, predictions_from_scores
from plankflux.hitl import steps
from plankflux.hitl.review import review_time
from plankflux.layout import (
    MANIFEST_FILE,
    PARTICLES_FILE,
    PREDICTION_COLUMNS,
    SCORES_FILE,
    Workspace,
    read_scores,
    read_verified,
)
from plankflux.runs import predict, train
from plankflux.tables.flux_figures import FluxInputs, make_flux_figures
from plankflux.utils.atomic import atomic_open, remove_partial_writes

log = logging.getLogger(__name__)
TREATMENTS = ("top1k", "verify", "minboost")

#: ``fit_and_score(ensemble_dir, target_labels)`` trains an ensemble into
#: ``ensemble_dir`` (with the target labels of a treatment, or none for the OOD
#: ensemble) and returns the ``scores.parquet`` of its predictions on the target.
FitAndScore = Callable[[Path, Path | None], Path]


class AwaitingExpert(Exception):
    """The pipeline stopped until a person has verified a proposal folder."""


@dataclass(frozen=True)
class PipelineSettings:
    """What a pipeline run does; the Hydra config's ``conf/pipeline.yaml`` keys."""

    target: str
    members: Sequence[int]
    expert: str = "simulated"  # simulated | human
    k: int = 1000  # proposals per class
    link: bool = False
    min_verified: int = 100  # minboost for classes with fewer verified images
    minboost_k: int = 1000
    treatments: Sequence[str] = TREATMENTS
    resume_command: str = "plankflux pipeline"


def verify(
    settings: PipelineSettings, folder: Path, out: Path, campaign: Campaign, mode: str
) -> pd.DataFrame:
    """The expert's verdicts on one proposal folder: simulated, or wait for a person."""
    if not out.exists():
        if settings.expert == "human":
            raise AwaitingExpert(awaiting_message(settings, folder, out, campaign, mode))
        steps.simulate_and_ingest(folder, campaign, out, mode)
    return read_verified(out)


def awaiting_message(
    settings: PipelineSettings, folder: Path, out: Path, campaign: Campaign, mode: str
) -> str:
    """What a person does next: review in the browser first; folders or EcoTaxa second."""
    flags = f"--campaign {campaign.root} --mode {mode} --out {out}"
    wrong = (
        "  - move a wrongly labelled image into the folder of its right class;\n"
        if mode == "verify"
        else "  - delete an image that is not of its folder's class;\n"
    )
    return (
        f"\nVerify the proposals in {folder} in your web browser:\n"
        f"  plankflux review {folder} {flags}\n"
        "  (open the address it prints; decisions are kept as you make them, and Finish "
        f"writes {out})\n"
        "Or edit the folder itself:\n"
        "  - leave a correctly labelled image where it is;\n"
        + wrong
        + "  - delete an image you cannot decide on;\n"
        "  then record your verdicts:\n"
        f"  plankflux ingest {folder} {flags}\n"
        f"Or in EcoTaxa: plankflux ecotaxa export {folder} --campaign {campaign.root} "
        f"--out proposals.zip, then plankflux ecotaxa import EXPORT.tsv --proposals {folder} "
        f"--campaign {campaign.root} --out {out}\n"
        "Then resume:\n"
        f"  {settings.resume_command}\n"
    )


def accuracy_by_member(scores: Path, classes, truth: pd.Series, keep: set[str]) -> list[float]:
    """Per-member accuracy of ``scores`` on the labelled particles in ``keep``."""
    frame = read_scores(scores, classes)
    frame = frame[frame["particle_id"].isin(keep)]
    predicted = np.asarray(classes)[frame[list(classes)].to_numpy().argmax(axis=1)]
    correct = predicted == truth.reindex(frame["particle_id"]).to_numpy()
    return [
        float(correct[frame["member"].to_numpy() == m].mean())
        for m in sorted(frame["member"].unique())
    ]


def run_pipeline(
    settings: PipelineSettings, campaign: Campaign, ws: Workspace, fit_and_score: FitAndScore
) -> dict:
    """Run (or resume) every stage; return the summary also written to ``summary.json``.

    Raises :class:`AwaitingExpert` where a person must verify a folder first.
    """
    classes = list(campaign.classes)
    effort: dict[str, dict] = {}
    for leftover in remove_partial_writes(ws.root):  # a killed run's half-written files
        log.info("removed %s, left by an interrupted write", leftover)

    # 1-2. Out-of-domain ensemble and its scores on every target particle.
    ood_scores = _fit_once(fit_and_score, ws.ensemble("ood"), None)
    scores = read_scores(ood_scores, classes)

    # 3. Voting proposals; "top1k" retrains with them unverified. A folder whose
    # manifest exists is complete (the manifest is written last) and is not rewritten.
    if not (ws.proposals / MANIFEST_FILE).exists():
        steps.propose(scores, campaign, ws.proposals, k=settings.k, link=settings.link)
    manifest = steps.read_proposals(ws.proposals, campaign)
    top1k = manifest.rename(columns={"proposed_label": "label"})
    labels = {"top1k": steps.write_training_labels(ws.labels("top1k"), [top1k])}

    # 4. Verification.
    verified = verify(settings, ws.proposals, ws.verified, campaign, "verify")
    effort["verify"] = steps.review_effort(verified)
    kept = steps.kept_labels(verified)
    labels["verify"] = steps.write_training_labels(ws.labels("verify"), [kept])

    # 5. Minboost: rare classes, the images every member ranks in its top K.
    if not (ws.minboost / MANIFEST_FILE).exists():
        steps.boost(
            scores,
            verified,
            None,  # Paper A: only images verified as a class are not proposed for it again
            campaign,
            ws.minboost,
            min_verified=settings.min_verified,
            k=settings.minboost_k,
            link=settings.link,
        )
    boosted = verify(settings, ws.minboost, ws.minboost_verified, campaign, "minboost")
    effort["minboost"] = steps.review_effort(boosted)
    labels["minboost"] = steps.write_training_labels(
        ws.labels("minboost"), [kept, steps.kept_labels(boosted)]
    )

    # 6. Retraining per treatment.
    treatment_scores = {"ood": ood_scores}
    for treatment in settings.treatments:
        n_labels = len(pd.read_csv(labels[treatment], dtype=str))
        if n_labels < 2:  # nothing to retrain with: the treatment is the OOD ensemble
            log.warning(
                "treatment %s has %d target label(s): it keeps the OOD ensemble",
                treatment,
                n_labels,
            )
            treatment_scores[treatment] = ood_scores
            continue
        treatment_scores[treatment] = _fit_once(
            fit_and_score, ws.ensemble(treatment), labels[treatment]
        )

    # 7. Accuracy on the labelled target particles no treatment trained on.
    particles = campaign.particles.set_index("particle_id")
    used = set().union(*(pd.read_csv(labels[t], dtype=str)["particle_id"] for t in labels))
    target = particles[(particles["domain"] == settings.target) & (particles["label"] != "")]
    held_out = set(target.index) - used
    accuracy = {
        t: accuracy_by_member(p, classes, target["label"], held_out)
        for t, p in treatment_scores.items()
    }
    # Minboost's classes: those the verification left short.
    counts = kept["label"].value_counts()
    rare = [c for c in classes if counts.get(c, 0) < settings.min_verified]
    summary = {
        "target": settings.target,
        "members": list(settings.members),
        "review_effort": effort,
        "review_time": {
            stage: time
            for stage, folder in (("verify", ws.proposals), ("minboost", ws.minboost))
            if (time := review_time(folder)) is not None
        },
        "target_images": int((particles["domain"] == settings.target).sum()),
        "held_out_particles": len(held_out),
        "accuracy": {t: _mean_sd(a) for t, a in accuracy.items()},
        "rare_classes": rare,
    }
    summary.update(flux_stage(ws, campaign, treatment_scores, labels, settings.members))
    summary["claims"] = paper_a_claims(summary)
    with atomic_open(ws.summary) as handle:
        json.dump(summary, handle, indent=2)
    print(format_summary(summary))
    return summary


def _mean_sd(per_member: list[float]) -> dict:
    """Mean and sd (ddof=1) over members; ``None`` where there is nothing to average
    (no held-out particle: e.g. a tiny target that a treatment trained on entirely)."""
    return {
        "mean": float(np.mean(per_member)) if per_member else None,
        "sd": float(np.std(per_member, ddof=1)) if len(per_member) > 1 else None,
        "per_member": per_member,
    }


def _fit_once(fit_and_score: FitAndScore, out_dir: Path, labels: Path | None) -> Path:
    scores = out_dir / SCORES_FILE
    if scores.exists():
        log.info("%s exists: stage skipped", scores)
        return scores
    return fit_and_score(out_dir, labels)


def flux_stage(
    ws: Workspace, campaign: Campaign, treatment_scores: dict, labels: dict, members: Sequence[int]
) -> dict:
    """Flux tables, assessment and Figures 5–8 of every treatment into ``ws/flux``.

    Each member's prediction stands for the particles a treatment did not train on;
    the particles it trained on keep their (verified or proposed) training label.
    """
    classes = list(campaign.classes)
    fixed = pd.concat(
        [
            pd.read_csv(labels[t], dtype=str, keep_default_na=False).assign(treatment=t)
            for t in treatment_scores
            if t in labels
        ],
        ignore_index=True,
    )
    predictions = []
    for treatment, path in treatment_scores.items():
        predicted = predictions_from_scores(read_scores(path, classes), treatment, classes)
        if predicted.empty:  # it trained on every target particle: its labels stand for all
            own = fixed[fixed["treatment"] == treatment]
            every_member = pd.DataFrame({"member": range(len(members))})
            predicted = own.merge(every_member, how="cross")[list(PREDICTION_COLUMNS)]
        predictions.append(predicted)
    predictions = pd.concat(predictions, ignore_index=True)
    out = ws.flux
    # Recomputed from the treatments' scores on every run (cheap, and a changed
    # allometry or campaign table then shows): say so when earlier files are replaced.
    rewrite = out.is_dir() and any(out.iterdir())
    log.info("%s flux tables and figures in %s", "rewriting" if rewrite else "writing", out)
    make_flux_figures(FluxInputs(campaign, predictions, None, fixed), out)
    mae = pd.read_csv(out / FILES["mae"], keep_default_na=False, na_values=[""])
    reference = pd.read_csv(out / FILES["human_reference"], keep_default_na=False)
    result = {"flux_dir": str(out)}
    for ref in ("measured", "human"):
        total = mae[(mae["reference"] == ref) & (mae["class_group"] == "total")]
        per_member = total.groupby("treatment", sort=False)["mae_mmol_m2_d"].agg(list)
        result[f"flux_mae_vs_{ref}"] = {t: float(np.mean(v)) for t, v in per_member.items()}
        result[f"flux_mae_vs_{ref}_by_member"] = {
            t: [float(x) for x in v] for t, v in per_member.items()
        }
    accuracy = pd.read_csv(out / FILES["accuracy_original"], keep_default_na=False)
    per_member = accuracy.groupby("treatment", sort=False)["accuracy"].agg(list)
    result["accuracy_vs_original"] = {
        t: _mean_sd([float(x) for x in v]) for t, v in per_member.items()
    }
    # Recall of the rare classes (original scheme) against the original annotation.
    pr_path = out / FILES["precision_recall"]
    result["rare_recall_vs_original"] = {}
    if pr_path.is_file():
        pr = pd.read_csv(pr_path, keep_default_na=False, na_values=[""])
        result["rare_recall_vs_original"] = _rare_recall(pr, ws.minboost / MANIFEST_FILE)
    result["human_reference"] = {
        "column": human_label_column(campaign.particles),
        "coverage_min": float(reference["coverage"].min()) if len(reference) else None,
        "compared": bool(len(reference) and reference["compared"].all()),
        "note": human_reference_note(reference),
    }
    return result


def _rare_recall(pr: pd.DataFrame, manifest: Path) -> dict:
    """Per treatment and member, the mean recall (original scheme, against the original
    annotation) over the classes minboost proposed for: ``{"classes": [...],
    treatment: [per member], ...}``; empty without minboost proposals."""
    boosted = pd.read_csv(manifest, dtype=str) if manifest.is_file() else None
    if boosted is None or boosted.empty:
        return {}
    groups = sorted(set(to_original_scheme(boosted["proposed_label"])))
    rows = pr[pr["class"].isin(groups) & (pr["support"] > 0)]
    per_member = rows.groupby(["treatment", "member"], sort=False)["recall"].mean()
    out: dict[str, list[float]] = {}
    for (treatment, _), value in per_member.items():
        out.setdefault(treatment, []).append(float(value))
    return {"classes": groups, **out}


def paper_a_claims(summary: dict) -> list[dict]:
    """Paper A's claims on this run, tested over ensemble members (Welch t)."""
    found = []
    held_out = {t: v["per_member"] for t, v in summary.get("accuracy", {}).items()}
    found.append(
        claims_lib.compare(
            "held-out accuracy (classifiers only): OOD < +verify", "ood", held_out.get("ood"),
            "verify", held_out.get("verify"), "<",
            "accuracy of each member's predictions on the labelled target images that no "
            "treatment trained on (revised labels), per member",
        )
    )  # fmt: skip
    accuracy = {t: v["per_member"] for t, v in summary.get("accuracy_vs_original", {}).items()}
    found.append(
        claims_lib.compare(
            "target accuracy vs the original annotation: OOD < +verify", "ood",
            accuracy.get("ood"), "verify", accuracy.get("verify"), "<",
            "accuracy (original scheme) of the labels each treatment gives the whole target "
            "(its training labels where it trained on a particle, else the member's "
            "prediction) against label_original, per member",
        )
    )  # fmt: skip
    human = summary.get("flux_mae_vs_human_by_member", {})
    note = "" if summary["human_reference"]["compared"] else summary["human_reference"]["note"]
    found.append(
        claims_lib.compare(
            "flux MAE vs the original annotation: OOD > +verify", "ood", human.get("ood"),
            "verify", human.get("verify"), ">",
            "MAE of the total flux against the human-label flux over the target's samples, "
            "per member (mmol C m-2 d-1)", note=note,
        )
    )  # fmt: skip
    rare_recall = summary.get("rare_recall_vs_original", {})
    rare = ", ".join(rare_recall.get("classes", [])) or "none proposed"
    found.append(
        claims_lib.compare(
            "+minboost helps rare classes: recall +minboost > +verify", "minboost",
            rare_recall.get("minboost"), "verify", rare_recall.get("verify"), ">",
            f"mean recall against the original annotation over the classes minboost "
            f"proposed for ({rare}), per member",
        )
    )  # fmt: skip
    shown = sum(e.get("shown", 0) for e in summary["review_effort"].values())
    images = summary["target_images"]
    fraction = shown / images if images else None
    found.append(
        claims_lib.descriptive(
            "review effort: images shown / target images", "fraction", fraction,
            None if fraction is None else fraction < 1,
            f"{shown} images shown to the expert (verification + minboost) of {images}",
        )
    )  # fmt: skip
    return found


def format_summary(summary: dict) -> str:
    """The run's printed summary; every per-treatment block in the accuracy block's order."""
    order = list(summary["accuracy"])

    def in_order(per_treatment: dict) -> list:
        rank = {t: i for i, t in enumerate(order)}
        return sorted(per_treatment.items(), key=lambda item: rank.get(item[0], len(order)))

    effort = summary["review_effort"]
    lines = [f"plankflux pipeline: target {summary['target']}, {len(summary['members'])} members"]
    for stage, counts in effort.items():
        if counts:
            lines.append(
                f"  reviewed ({stage}): {counts['shown']} images shown, {counts['moved']} moved, "
                f"{counts['deleted']} deleted"
            )
    for stage, time in summary.get("review_time", {}).items():
        per_image = time["seconds_per_image"]
        lines.append(
            f"  review time ({stage}, plankflux review): {time['seconds'] / 60:.1f} min for "
            f"{time['images']} images"
            + (f", {per_image:.1f} s per image" if per_image is not None else "")
        )
    lines.append(
        f"  accuracy on {summary['held_out_particles']} held-out labelled target images"
        " (revised labels; none of them trained on by any treatment):"
    )
    for treatment, acc in summary["accuracy"].items():
        sd = f" ± {acc['sd']:.3f}" if acc["sd"] is not None else ""
        mae = summary.get("flux_mae_vs_measured", {}).get(treatment)
        flux = f"; flux MAE vs measured {mae:.2f} mmol C m-2 d-1" if mae is not None else ""
        mean = f"{acc['mean']:.3f}" if acc["mean"] is not None else "n/a"
        lines.append(f"    {treatment:9s} {mean}{sd}{flux}")
    if summary.get("accuracy_vs_original"):
        lines.append("  accuracy of each treatment's target labels vs the original annotation:")
        for treatment, acc in in_order(summary["accuracy_vs_original"]):
            sd = f" ± {acc['sd']:.3f}" if acc["sd"] is not None else ""
            lines.append(f"    {treatment:9s} {acc['mean']:.3f}{sd}")
    reference = summary.get("human_reference")
    human = summary.get("flux_mae_vs_measured", {}).get("human")
    if reference is not None:
        coverage = reference["coverage_min"]
        shown = f"{coverage:.2f}" if coverage is not None else "n/a"
        lines.append(
            f"  human-label flux ({reference['column']}, coverage >= {shown}): "
            + (
                f"MAE vs measured {human:.2f} mmol C m-2 d-1"
                if human is not None and reference["compared"]
                else reference["note"]
            )
        )
    for treatment, mae in in_order(summary.get("flux_mae_vs_human", {})):
        lines.append(f"    {treatment:9s} flux MAE vs human labels {mae:.2f} mmol C m-2 d-1")
    if summary.get("claims"):
        lines.append("  Paper A's claims, over members (Welch t, two-sided, alpha 0.05):")
        lines.extend(claims_lib.format_claims(summary["claims"], indent="    "))
    lines.append(f"  flux tables and Figures 3, 5-8: {summary.get('flux_dir')}")
    return "\n".join(lines)


def fit_and_score_from_config(cfg: DictConfig) -> FitAndScore:
    """The real training stage: ``cfg.members`` trained with Lightning, then scored."""

    def fit_and_score(out_dir: Path, target_labels: Path | None) -> Path:
        stage = cfg.copy()
        with open_dict(stage):
            stage.paths.output_dir = str(out_dir)
            stage.data.target_labels = str(target_labels) if target_labels else None
        train.run_members(stage)
        with open_dict(stage):
            stage.checkpoints = str(out_dir)
            stage.writer = {
                "_target_": "plankflux.callbacks.prediction_writer.EnsembleScoreWriter",
                "out_dir": str(out_dir),
            }
            stage.callbacks = None  # the training callbacks are not prediction's
        predict.run(stage)
        return out_dir / SCORES_FILE

    return fit_and_score


def run_from_config(cfg: DictConfig) -> dict | None:
    """``plankflux pipeline``: the settings, campaign and training stage from ``cfg``.

    Returns the summary, or ``None`` when the run stopped for a person to verify.
    """
    if not Path(cfg.data.root, PARTICLES_FILE).exists():  # a synthetic one, on first use
        hydra.utils.instantiate(cfg.data, _convert_="all").prepare_data()
    campaign = load_campaign(cfg.data.root)
    with open_dict(cfg):
        cfg.data.target_domain = cfg.target
        cfg.data.train_domains = sorted(set(campaign.particles["domain"]) - {cfg.target})
    settings = PipelineSettings(
        target=cfg.target,
        members=list(cfg.members),
        expert=cfg.expert,
        k=cfg.proposals.k,
        link=cfg.proposals.link,
        min_verified=cfg.minboost.min_verified,
        minboost_k=cfg.minboost.k,
        treatments=list(cfg.treatments),
        resume_command="plankflux pipeline " + " ".join(sys.argv[1:]),
    )
    try:
        return run_pipeline(
            settings,
            campaign,
            Workspace(Path(cfg.paths.output_dir)),
            fit_and_score_from_config(cfg),
        )
    except AwaitingExpert as waiting:
        print(waiting)
        return None
