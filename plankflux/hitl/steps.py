"""The human-in-the-loop steps of Paper A, each implemented once.

``plankflux pipeline``, the ``plankflux propose|minboost|simulate-expert|ingest``
commands and the :class:`~plankflux.callbacks.voting_proposals.VotingProposals`
callback all call these functions; none of them knows about Hydra or Lightning.
The method is described in ``docs/paper_a.md`` ("Human-in-the-loop domain
adaptation"); the files they write are named in :mod:`plankflux.layout`.

* :func:`propose` – step 3: unanimous votes, top ``k`` per class, into a proposal folder;
* :func:`boost` – step 5: every member's top ``k`` for the classes with few verified
  images, each class on its own, minus the images verified as that class, into a
  second folder;
* :func:`simulate`, :func:`simulate_and_ingest` – step 4 in experiments: the simulated
  expert edits a folder from known labels, then the edits are read as a person's are;
* :func:`review_effort`, :func:`kept_labels`, :func:`write_training_labels` – what the
  expert did, and the target labels a treatment retrains with (step 6).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from plankflux.data.campaign import Campaign
from plankflux.hitl.ingest import VerificationError, ingest_verification, read_manifest
from plankflux.hitl.minboost import minboost_candidates
from plankflux.hitl.proposals import write_proposal_folder
from plankflux.hitl.simulated_expert import ReviewEffort, simulate_expert, truth_from_campaign
from plankflux.hitl.voting import consensus, top_k_per_class
from plankflux.layout import KEPT_ACTIONS
from plankflux.utils.atomic import write_csv_atomic


def propose(
    scores: pd.DataFrame,
    campaign: Campaign,
    out_dir: str | os.PathLike,
    k: int = 1000,
    link: bool = False,
    classes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Unanimous top-``k`` proposals per class, written into ``out_dir/<class>/``.

    Args:
        scores: the long score table (``particle_id``, ``member``, one column per class).
        classes: the class columns to vote over (default: the campaign's classes).

    Returns:
        the proposals (``particle_id, proposed_label, score, rank``), also listed in
        ``out_dir/manifest.csv``.
    """
    classes = list(classes if classes is not None else campaign.classes)
    proposals = top_k_per_class(consensus(scores, classes), k, classes)
    write_proposal_folder(proposals, campaign, out_dir, link=link, classes=classes)
    return proposals


def boost(
    scores: pd.DataFrame,
    verified: pd.DataFrame,
    shown_ids: Iterable[str] | None,
    campaign: Campaign,
    out_dir: str | os.PathLike,
    min_verified: int = 100,
    k: int = 1000,
    link: bool = False,
) -> pd.DataFrame:
    """Minboost candidates of the short classes, written into ``out_dir/<class>/``;
    the manifest's ``round`` column says ``minboost``. Returns the candidates.

    ``shown_ids``: particles to leave out of every class; ``None`` (Paper A) leaves
    out only the images verified as the class in question.
    """
    classes = list(campaign.classes)
    candidates = minboost_candidates(
        scores, verified, set(shown_ids or ()), classes, min_verified=min_verified, k=k
    )
    write_proposal_folder(
        candidates, campaign, out_dir, link=link, manifest_extra={"round": "minboost"}
    )
    return candidates


def simulate(folder: str | os.PathLike, campaign: Campaign, mode: str) -> ReviewEffort:
    """Let the simulated expert edit ``folder`` from the campaign's known labels
    (``synthetic_truth.csv``, else the ``label`` column) as a person would."""
    truth, ambiguous = truth_from_campaign(campaign.root)
    return simulate_expert(folder, truth, ambiguous, mode=mode, classes=campaign.classes)


def simulate_and_ingest(
    folder: str | os.PathLike, campaign: Campaign, out: str | os.PathLike, mode: str
) -> pd.DataFrame:
    """:func:`simulate`, then ingest the edited folder into ``out`` exactly as for a
    person. Returns the verdicts."""
    simulate(folder, campaign, mode)
    return ingest_verification(
        folder,
        campaign.classes,
        out_path=out,
        mode=mode,
        particle_ids=set(campaign.particles["particle_id"]),
    )


def read_proposals(folder: str | os.PathLike, campaign: Campaign) -> pd.DataFrame:
    """The checked manifest of a finished proposal folder (``MANIFEST_COLUMNS`` and any
    extra columns); :class:`~plankflux.hitl.ingest.VerificationError` listing every
    problem (a file edited by hand or by a spreadsheet, ids not in the campaign)."""
    manifest, problems = read_manifest(
        Path(folder), campaign.classes, set(campaign.particles["particle_id"])
    )
    if problems:
        raise VerificationError(Path(folder), problems)
    return manifest.drop(columns=["folder", "file"])


def review_effort(verified: pd.DataFrame) -> dict[str, int]:
    """What the expert did: images shown, confirmed, moved to another class, deleted."""
    actions = verified["action"].value_counts()
    return {
        "shown": len(verified),
        "confirmed": int(actions.get("confirmed", 0)),
        "moved": int(actions.get("relabelled", 0)),
        "deleted": int(actions.get("rejected", 0)),
    }


def kept_labels(verified: pd.DataFrame) -> pd.DataFrame:
    """The verdicts whose label is kept (confirmed or moved), i.e. the verified images."""
    return verified[verified["action"].isin(KEPT_ACTIONS)]


def write_training_labels(path: Path, frames: Sequence[pd.DataFrame]) -> Path:
    """Write ``particle_id, label`` of a treatment's target training images to ``path``
    once (a later frame's label wins for a particle in several); an existing file is
    kept, so a resumed pipeline retrains with the labels it started with."""
    if not path.exists():
        labels = pd.concat(frames, ignore_index=True).drop_duplicates("particle_id", keep="last")
        write_csv_atomic(labels[["particle_id", "label"]], path)
    return path
