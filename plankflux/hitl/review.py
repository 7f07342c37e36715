"""A review session: the verdicts a person gives on ``plankflux review``'s page, kept as made.

The page (``plankflux/review/``) is a view on this module; everything that decides
what ends in ``verified.csv`` lives here, free of any web framework:

* the proposal folder is only read: its ``manifest.csv`` (checked as the folder ingest
  checks it), its images, and the campaign's originals where a copy has vanished;
* each decision is written at once, atomically, to ``<proposal_dir>.review.json``
  (beside the folder, :data:`~plankflux.layout.REVIEW_STATE_SUFFIX`), so a crash or a
  closed tab loses nothing and reopening resumes; the file also records the seconds
  spent on each image and the last actions, for undo;
* :meth:`ReviewSession.finish` turns the decisions into the location of each file as
  the folder workflow would have left it (confirmed: its proposed class folder;
  relabelled: the new class; wrong or undecided: deleted) and writes ``verified.csv``
  through :func:`plankflux.hitl.ingest.verdicts`, the same code as ``plankflux
  ingest``, so identical decisions give a byte-identical file;
* :meth:`ReviewSession.apply_to_folder` (only when the user asks) moves and deletes the
  proposal copies to match, after which ``plankflux ingest`` reads the same verdicts.

Verdicts (:data:`~plankflux.layout.REVIEW_VERDICTS`): ``confirmed``, ``relabelled``
(with the new label), ``wrong`` and ``undecided`` (both ``rejected`` in
``verified.csv``; in a ``minboost`` round "not that class").
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from plankflux.data.campaign import Campaign
from plankflux.errors import PlankfluxError, ProblemsError
from plankflux.hitl.ingest import default_verified_path, read_manifest, verdicts, write_verified
from plankflux.layout import (
    MANIFEST_FILE,
    REVIEW_LOCK_SUFFIX,
    REVIEW_MODES,
    REVIEW_STATE_SUFFIX,
    REVIEW_VERDICTS,
    SCORE_KEYS,
    read_scores,
)
from plankflux.utils.atomic import atomic_open

STATE_FORMAT = 1
#: A gap longer than this between two decisions counts as this long (a break, not review).
MAX_SECONDS_PER_ACTION = 300.0
#: Undo reaches back this many actions.
MAX_UNDO = 500
#: Confirmed examples shown per class for reference.
N_REFERENCES = 6


class ReviewError(ProblemsError):
    """A proposal folder or its saved review cannot be reviewed; lists every problem."""

    def __init__(self, proposal_dir: Path, problems: Sequence[str]):
        super().__init__(
            f"cannot review proposal folder {proposal_dir}",
            problems,
            note=" (nothing was changed)",
            max_shown=50,
        )


def review_state_path(proposal_dir: str | os.PathLike) -> Path:
    """``<proposal_dir>.review.json``, beside the proposal folder."""
    folder = Path(os.path.abspath(proposal_dir))
    return folder.with_name(folder.name + REVIEW_STATE_SUFFIX)


def review_lock_path(proposal_dir: str | os.PathLike) -> Path:
    """``<proposal_dir>.review.lock``, held while ``plankflux review`` serves the folder."""
    folder = Path(os.path.abspath(proposal_dir))
    return folder.with_name(folder.name + REVIEW_LOCK_SUFFIX)


def manifest_mode(manifest: pd.DataFrame) -> str:
    """``minboost`` for a folder that ``plankflux minboost`` wrote (``round`` column), else
    ``verify``."""
    if "round" in manifest.columns and set(manifest["round"]) == {"minboost"}:
        return "minboost"
    return "verify"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Item:
    """One proposed image as the page shows it."""

    index: int
    particle_id: str
    proposed_label: str
    score: float
    rank: int
    file: str  # path inside the proposal folder, ``<class>/<name>``
    original: str  # the campaign's image, relative to the campaign folder


class ReviewSession:
    """The decisions on one proposal folder; every change is saved before it returns.

    Args:
        proposal_dir: the folder ``plankflux propose`` / ``minboost`` / the pipeline wrote.
        campaign: its campaign (class list, particle ids, original images, references).
        mode: ``verify`` or ``minboost``; default from the manifest.
        out: the ``verified.csv`` :meth:`finish` writes (default
            :func:`~plankflux.hitl.ingest.default_verified_path`).
        scores: optional per-member score table, for each member's vote.

    Raises :class:`ReviewError` listing every problem (a bad manifest, proposed labels
    or particle ids the campaign does not know, a saved review of another manifest or
    with unknown labels) before anything is written.
    """

    def __init__(
        self,
        proposal_dir: str | os.PathLike,
        campaign: Campaign,
        mode: str | None = None,
        out: str | os.PathLike | None = None,
        scores: pd.DataFrame | None = None,
    ):
        self.proposal_dir = Path(os.path.abspath(proposal_dir))
        self.campaign = campaign
        self.classes = list(campaign.classes)
        if not self.proposal_dir.is_dir():
            raise ReviewError(self.proposal_dir, [f"{self.proposal_dir}: folder not found"])
        particles = campaign.particles.set_index(campaign.particles["particle_id"].astype(str))
        manifest, problems = read_manifest(self.proposal_dir, self.classes, set(particles.index))
        if manifest is None:
            raise ReviewError(self.proposal_dir, problems)
        self.manifest = manifest
        if mode is not None and mode not in REVIEW_MODES:
            raise PlankfluxError(f"mode must be one of {REVIEW_MODES}, got {mode!r}")
        self.mode = mode or manifest_mode(manifest)
        self.out = Path(out) if out else default_verified_path(self.proposal_dir)
        self.state_path = review_state_path(self.proposal_dir)
        originals = particles.loc[manifest["particle_id"], "image"].tolist()
        self.items = [
            Item(i, pid, label, float(score), int(rank), image, original)
            for i, (pid, label, score, rank, image, original) in enumerate(
                zip(
                    manifest["particle_id"],
                    manifest["proposed_label"],
                    manifest["score"],
                    manifest["rank"],
                    manifest["image"],
                    originals,
                    strict=True,
                )
            )
        ]
        self.by_id = {item.particle_id: item for item in self.items}
        self.votes = _member_votes(scores, self.by_id, self.classes) if scores is not None else {}
        self.references = _references(campaign, set(self.by_id), self.classes)
        self.manifest_sha256 = _sha256(self.proposal_dir / MANIFEST_FILE)
        self.decisions: dict[str, dict] = {}
        self.seconds: dict[str, float] = {}
        self.history: list[list[dict]] = []
        self.finished: dict | None = None
        self._load()

    # ------------------------------------------------------------------ state file
    def _load(self) -> None:
        if not self.state_path.is_file():
            return
        path = self.state_path
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ReviewError(self.proposal_dir, [f"{path}: cannot be read ({err})"]) from None
        problems = []
        if state.get("format") != STATE_FORMAT:
            problems.append(f"{path}: format {state.get('format')!r}, expected {STATE_FORMAT}")
        if state.get("manifest_sha256") != self.manifest_sha256:
            problems.append(
                f"{path}: saved for another {MANIFEST_FILE} (the proposal set changed); "
                "move it away to start this review afresh"
            )
        for pid, decision in (state.get("decisions") or {}).items():
            problems += self._check(pid, decision.get("verdict"), decision.get("label", ""), path)
        if problems:
            raise ReviewError(self.proposal_dir, problems)
        self.decisions = dict(state.get("decisions") or {})
        self.seconds = {k: float(v) for k, v in (state.get("seconds") or {}).items()}
        self.history = list(state.get("history") or [])
        self.finished = state.get("finished")

    def _save(self) -> None:
        state = {
            "format": STATE_FORMAT,
            "proposal_dir": str(self.proposal_dir),
            "manifest_sha256": self.manifest_sha256,
            "mode": self.mode,
            "decisions": self.decisions,
            "seconds": self.seconds,
            "history": self.history[-MAX_UNDO:],
            "finished": self.finished,
        }
        with atomic_open(self.state_path, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=0, sort_keys=True)

    # ------------------------------------------------------------------- decisions
    def _check(self, pid: object, verdict: object, label: object, where: object) -> list[str]:
        if pid not in self.by_id:
            return [f"{where}: particle_id {pid!r} is not in this proposal set"]
        if verdict not in REVIEW_VERDICTS:
            return [
                f"{where}: particle {pid}: unknown verdict {verdict!r}; one of {REVIEW_VERDICTS}"
            ]
        if verdict == "relabelled" and label not in self.classes:
            return [f"{where}: particle {pid}: unknown class {label!r}"]
        return []

    def decide(self, changes: Iterable[tuple[str, str, str]], seconds: float = 0.0) -> None:
        """Record ``(particle_id, verdict, label)`` decisions as one action (one undo
        step); ``seconds`` since the previous action is shared among them. Raises
        :class:`PlankfluxError` (recording nothing) for an unknown particle, verdict or
        class."""
        changes = list(changes)
        problems = [p for c in changes for p in self._check(*c, "decision")]
        if problems:
            raise PlankfluxError("; ".join(problems))
        if not changes:
            return
        seconds = _clamp(seconds)
        step = []
        for pid, verdict, label in changes:
            if verdict == "relabelled" and label == self.by_id[pid].proposed_label:
                verdict = "confirmed"  # moved back to its own folder
            label = label if verdict == "relabelled" else ""
            step.append({"particle_id": pid, "before": self.decisions.get(pid)})
            self.decisions[pid] = {"verdict": verdict, "label": label}
            self.seconds[pid] = self.seconds.get(pid, 0.0) + seconds / len(changes)
        self.history.append(step)
        self._changed()

    def undo(self) -> list[str]:
        """Take back the last action; return the particle ids it touched (none left: [])."""
        if not self.history:
            return []
        step = self.history.pop()
        for change in step:
            if change["before"] is None:
                self.decisions.pop(change["particle_id"], None)
            else:
                self.decisions[change["particle_id"]] = change["before"]
        self._changed()
        return [change["particle_id"] for change in step]

    def _changed(self) -> None:
        """Save; once finished, keep ``verified.csv`` in step with later changes (rewritten
        while every image has a decision, else marked stale until finished again)."""
        if self.finished is not None and not self.undecided():
            self.finish()
            return
        if self.finished is not None:
            self.finished = {**self.finished, "stale": True}
        self._save()

    # ---------------------------------------------------------------- what it shows
    def progress(self) -> dict:
        """Decided / total images per class (in class order, classes with proposals) and overall."""
        per_class = {}
        for item in self.items:
            entry = per_class.setdefault(item.proposed_label, {"total": 0, "decided": 0})
            entry["total"] += 1
            entry["decided"] += item.particle_id in self.decisions
        ordered = {c: per_class[c] for c in self.classes if c in per_class}
        return {
            "classes": ordered,
            "total": len(self.items),
            "decided": len(self.decisions),
        }

    def class_items(self, label: str) -> list[Item]:
        """The proposals of one class, best ensemble score first."""
        if label not in self.classes:
            raise PlankfluxError(f"unknown class {label!r}")
        items = [item for item in self.items if item.proposed_label == label]
        return sorted(items, key=lambda it: (-it.score, it.rank, it.index))

    def image_path(self, item: Item) -> Path | None:
        """The proposal copy, else the campaign's original (the copy vanished), else None."""
        copy = self.proposal_dir / item.file
        if copy.is_file():
            return copy
        original = self.campaign.image_path(item.original)
        return original if original.is_file() else None

    def vanished(self) -> list[Item]:
        """Proposals whose copy is no longer in the proposal folder (moved or deleted by hand)."""
        return [item for item in self.items if not (self.proposal_dir / item.file).is_file()]

    # ---------------------------------------------------------------------- results
    def location(self) -> dict[str, str]:
        """Manifest file name -> the class folder the folder workflow would leave it in."""
        where = {}
        for pid, decision in self.decisions.items():
            item = self.by_id[pid]
            name = item.file.split("/")[-1]
            if decision["verdict"] == "confirmed":
                where[name] = item.proposed_label
            elif decision["verdict"] == "relabelled":
                where[name] = decision["label"]
        return where

    def undecided(self) -> list[str]:
        return [item.particle_id for item in self.items if item.particle_id not in self.decisions]

    def foreign_out(self) -> bool:
        """Whether :attr:`out` exists and was written by something else than this review."""
        mine = self.finished is not None and self.finished.get("out") == str(self.out)
        return self.out.exists() and not mine

    def finish(self) -> pd.DataFrame:
        """Write ``verified.csv`` (every image must have a decision) and return it."""
        left = self.undecided()
        if left:
            raise PlankfluxError(
                f"{len(left)} of {len(self.items)} images have no decision yet "
                f"(first: {', '.join(left[:5])}); nothing was written"
            )
        if self.foreign_out():
            raise PlankfluxError(
                f"{self.out} already exists and this review did not write it (plankflux "
                "ingest, EcoTaxa or the simulated expert did?): it is kept; start plankflux "
                "review with --out to write elsewhere, or move that file away"
            )
        verified = verdicts(self.manifest, self.location())
        write_verified(verified, self.out)
        self.finished = {
            "out": str(self.out),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self._save()
        return verified

    def apply_to_folder(self) -> dict[str, int]:
        """Move and delete the proposal copies as the decisions say (only on request).

        Confirmed stays, relabelled moves to its class folder, wrong/undecided is
        deleted (a copy or a link, never the original). Returns counts. Every image
        must have a decision and still be in its proposed folder.
        """
        left = self.undecided()
        gone = [str(self.proposal_dir / item.file) for item in self.vanished()]
        if left or gone:
            raise PlankfluxError(
                f"cannot update {self.proposal_dir}: {len(left)} image(s) without a decision, "
                f"{len(gone)} no longer in their folder" + (f" (e.g. {gone[0]})" if gone else "")
            )
        counts = {"kept": 0, "moved": 0, "deleted": 0}
        for pid, decision in self.decisions.items():
            item = self.by_id[pid]
            src = self.proposal_dir / item.file
            if decision["verdict"] == "confirmed":
                counts["kept"] += 1
            elif decision["verdict"] == "relabelled":
                os.rename(src, self.proposal_dir / decision["label"] / src.name)
                counts["moved"] += 1
            else:
                os.remove(src)
                counts["deleted"] += 1
        return counts


def _clamp(seconds: object) -> float:
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return 0.0
    return min(max(value, 0.0), MAX_SECONDS_PER_ACTION) if math.isfinite(value) else 0.0


def _member_votes(scores: pd.DataFrame, by_id: dict[str, Item], classes: list[str]) -> dict:
    """particle_id -> [(member, voted class, member's score for the proposed class)]."""
    columns = [c for c in classes if c in scores.columns]
    frame = scores[scores["particle_id"].astype(str).isin(by_id)]
    if frame.empty or not columns:
        return {}
    values = frame[columns].to_numpy(dtype=float)
    voted = np.asarray(columns, dtype=object)[values.argmax(axis=1)]
    votes: dict[str, list] = {}
    for row, (pid, member) in enumerate(frame[list(SCORE_KEYS)].itertuples(index=False)):
        pid = str(pid)
        proposed = by_id[pid].proposed_label
        score = float(values[row, columns.index(proposed)]) if proposed in columns else None
        votes.setdefault(pid, []).append((int(member), str(voted[row]), score))
    return {pid: sorted(v) for pid, v in votes.items()}


def _references(campaign: Campaign, proposed: set[str], classes: list[str]) -> dict[str, list]:
    """Up to :data:`N_REFERENCES` labelled campaign images per class (not proposed), spread
    evenly over the class's particles in id order: ``class -> [(particle_id, path)]``."""
    particles = campaign.particles
    labelled = particles[(particles["label"] != "") & ~particles["particle_id"].isin(proposed)]
    found = {}
    for label, group in labelled.groupby("label", sort=False):
        if label not in classes:
            continue
        group = group.sort_values("particle_id")
        picks = np.unique(np.linspace(0, len(group) - 1, min(N_REFERENCES, len(group))).round())
        rows = group.iloc[picks.astype(int)]
        found[label] = [
            (str(pid), campaign.image_path(image))
            for pid, image in zip(rows["particle_id"], rows["image"], strict=True)
        ]
    return found


def read_review_scores(
    path: str | os.PathLike | None, classes: Sequence[str]
) -> pd.DataFrame | None:
    """The per-member score table for the votes, or ``None`` when there is none."""
    if path is None or not Path(path).is_file():
        return None
    return read_scores(path, classes)


def review_time(proposal_dir: str | os.PathLike) -> dict | None:
    """The review time recorded by ``plankflux review`` on a folder, or ``None``.

    ``{"seconds", "images", "seconds_per_image", "per_class": {class: {"images",
    "seconds", "seconds_per_image"}}}``, images = those with a decision; the proposed
    class of each image counts its time.
    """
    path = review_state_path(proposal_dir)
    if not path.is_file():
        return None
    state = json.loads(path.read_text(encoding="utf-8"))
    manifest = pd.read_csv(Path(proposal_dir) / MANIFEST_FILE, dtype=str, keep_default_na=False)
    label = dict(zip(manifest["particle_id"], manifest["proposed_label"], strict=True))
    seconds = {k: float(v) for k, v in (state.get("seconds") or {}).items() if k in label}
    decided = [pid for pid in state.get("decisions") or {} if pid in label]
    per_class: dict[str, dict] = {}
    for pid in decided:
        entry = per_class.setdefault(label[pid], {"images": 0, "seconds": 0.0})
        entry["images"] += 1
        entry["seconds"] += seconds.get(pid, 0.0)
    for entry in per_class.values():
        entry["seconds"] = round(entry["seconds"], 3)
        entry["seconds_per_image"] = round(entry["seconds"] / entry["images"], 3)
    total = round(sum(seconds.values()), 3)
    return {
        "seconds": total,
        "images": len(decided),
        "seconds_per_image": round(total / len(decided), 3) if decided else None,
        "per_class": dict(sorted(per_class.items())),
    }
