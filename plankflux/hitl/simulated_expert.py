"""A simulated expert that edits a proposal folder exactly as a person would (docs/paper_a.md).

Experiments run the same ingest path as a real verification: this module only moves
files between class folders (``os.rename`` inside the proposal folder) and deletes
the proposal copies or links (``os.remove``, which removes a link, never its target).
Original images are never touched.

Decisions per proposed particle, from its known true label:

* ambiguous particle -> deleted;
* true label == proposed -> left in place;
* ``verify`` mode: wrong proposal -> moved to the true class folder (deleted when the
  true class has no folder, i.e. is outside the class list);
* ``minboost`` mode: wrong proposal -> deleted ("not that class");
* no known true label -> deleted (a person cannot verify it either), counted in
  ``unknown`` as well as ``deleted``.

The simulation is idempotent: a file already where the decision puts it counts the
same, so an interrupted simulation can be rerun and reports the same effort.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from plankflux.data.campaign import load_campaign
from plankflux.errors import PlankfluxError
from plankflux.hitl.ingest import MODES, scan_proposal_folder
from plankflux.hitl.proposals import is_os_metadata
from plankflux.layout import TRUTH_FILE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReviewEffort:
    """What a person would have done: images ``shown`` = confirmed + moved + deleted."""

    shown: int
    confirmed: int
    moved: int
    deleted: int
    unknown: int = 0  # deleted because no true label was known (included in ``deleted``)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def __str__(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.as_dict().items())


def truth_from_campaign(root: str | os.PathLike) -> tuple[dict[str, str], set[str]]:
    """Known true labels and the ambiguous particle ids of a campaign.

    Labels come from ``synthetic_truth.csv`` (every particle of a synthetic campaign)
    when present, else from the ``label`` column of ``particles.csv`` (labelled
    particles only). Ambiguous ids come from the ``ambiguous`` column.
    """
    root = Path(root)
    campaign = load_campaign(root, check_images="none")
    particles = campaign.particles
    truth_path = root / TRUTH_FILE
    if truth_path.is_file():
        table = pd.read_csv(truth_path, dtype=str, keep_default_na=False)
        truth = dict(zip(table["particle_id"], table["true_label"], strict=True))
    else:
        labelled = particles[particles["label"] != ""]
        truth = dict(zip(labelled["particle_id"], labelled["label"], strict=True))
    truth = {pid: label for pid, label in truth.items() if label}
    ambiguous = set(particles.loc[particles["ambiguous"], "particle_id"].astype(str))
    return truth, ambiguous


def _class_folders(proposal_dir: Path) -> list[str]:
    return sorted(
        e.name
        for e in os.scandir(proposal_dir)
        if e.is_dir(follow_symlinks=False) and not is_os_metadata(e.name)
    )


def simulate_expert(
    proposal_dir: str | os.PathLike,
    truth: Mapping[str, str],
    ambiguous: set[str] | frozenset[str] = frozenset(),
    mode: str = "verify",
    classes: Sequence[str] | None = None,
) -> ReviewEffort:
    """Edit ``proposal_dir`` as an expert knowing ``truth`` would; return the effort.

    ``classes``: the class list (default: the class folders present, which the
    proposal writer creates for every class). Refuses (:class:`PlankfluxError`) a
    folder none of whose particles has a truth label. Raises
    :class:`~plankflux.hitl.ingest.VerificationError` if the folder is not a valid
    proposal folder, and ``RuntimeError`` if an earlier edit contradicts the decisions
    (a file deleted that should have stayed), before changing anything.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    proposal_dir = Path(proposal_dir)
    classes = list(classes) if classes is not None else _class_folders(proposal_dir)
    manifest, location = scan_proposal_folder(proposal_dir, classes, decided=False)
    available = set(classes)
    proposed_in = manifest.groupby("file")["proposed_label"].agg(set).to_dict()

    # One decision per manifest row, i.e. per copy: a particle proposed for two classes
    # (minboost) has a copy in each folder; the one of its true class stays, the other goes.
    plan = []  # (file, folder of this row's copy now or "", target or "" to delete)
    counts = {"confirmed": 0, "moved": 0, "deleted": 0, "unknown": 0}
    for pid, name, proposed in zip(
        manifest["particle_id"], manifest["file"], manifest["proposed_label"], strict=True
    ):
        true = truth.get(pid, "")
        where = location.get(name, [])
        if pid in ambiguous:
            target = ""
        elif not true:
            target = ""
            counts["unknown"] += 1
        elif true == proposed:
            target = proposed
        elif mode == "verify" and true in available and true not in proposed_in[name]:
            target = true
        else:
            target = ""
        counts["deleted" if not target else "confirmed" if target == proposed else "moved"] += 1
        if proposed in where:
            now = proposed
        else:  # already handled: moved to its target, or deleted
            now = target if target in where else ""
        plan.append((name, now, target))

    if plan and counts["unknown"] == len(plan):
        raise PlankfluxError(
            f"{proposal_dir}: none of the {len(plan)} proposed particles has a known true "
            f"label ({TRUTH_FILE} or the campaign's label column), so the simulated expert "
            "would delete every proposal; verify this folder by hand (or in EcoTaxa)"
        )
    contradicted = [
        str(proposal_dir / target / name) for name, now, target in plan if target and not now
    ]
    if contradicted:
        raise RuntimeError(
            f"{len(contradicted)} file(s) that the simulated expert would keep are already "
            f"deleted from {proposal_dir}: " + ", ".join(contradicted[:20])
        )
    for name, now, target in plan:
        if now == target:
            continue
        source = proposal_dir / now / name
        if not target:
            os.remove(source)  # the proposal copy or link, never the original
        else:
            destination = proposal_dir / target / name
            if destination.exists() or destination.is_symlink():
                raise FileExistsError(f"{destination} exists; refusing to overwrite it")
            destination.parent.mkdir(exist_ok=True)
            os.rename(source, destination)
    effort = ReviewEffort(len(plan), counts["confirmed"], counts["moved"], counts["deleted"],
                          counts["unknown"])  # fmt: skip
    log.info("simulated expert on %s: %s", proposal_dir, effort)
    return effort
