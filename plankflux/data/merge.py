"""Several deployments in one campaign: merging campaigns.

A scientist's campaign grows one deployment at a time: a labelled one first, then one
to be verified. :func:`merge_campaigns` joins loaded campaigns into the tables of one,
and :func:`merge_into` adds an imported deployment to an existing campaign in place.

Refused, with every problem named (nothing is written): a particle id, sample id or
image file present in two campaigns (an image in two deployments would be trained on
and predicted), and a label that is not in the first campaign's class list
(the merged campaign keeps that list and its order). Relative image paths are made
absolute when the merged campaign lives elsewhere, so every row still points at its
image. Images are never moved, copied or modified.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from plankflux.data.campaign import Campaign, load_campaign, write_campaign
from plankflux.errors import ProblemsError
from plankflux.layout import CLASSES_FILE, PARTICLES_FILE, SAMPLES_FILE

#: Where ``merge_into`` keeps the files it replaced (inside the campaign).
HISTORY_DIR = ".plankflux_history"


def _clashes(
    frames: Sequence[pd.DataFrame], column: str, roots: Sequence[Path], what: str = ""
) -> list[str]:
    seen: dict[str, Path] = {}
    problems = []
    for frame, root in zip(frames, roots, strict=True):
        for value in pd.unique(frame[column]):
            if value in seen and seen[value] != root:
                problems.append(f"{what or column} {value!r} is in both {seen[value]} and {root}")
            seen.setdefault(value, root)
    return problems


def merge_campaigns(
    campaigns: Sequence[Campaign], out_root: str | os.PathLike
) -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, ...]]:
    """``(particles, samples, classes)`` of one campaign at ``out_root`` holding all of
    ``campaigns``; a :class:`ProblemsError` lists every clash."""
    out_root = Path(out_root).resolve()
    classes = campaigns[0].classes
    roots = [c.root for c in campaigns]
    problems = _clashes([c.particles for c in campaigns], "particle_id", roots)
    problems += _clashes([c.samples for c in campaigns], "sample_id", roots)
    # The same image file in two deployments would sit in training and in the domain
    # that is predicted (e.g. "all images" imported again as the unlabelled part).
    files = [
        pd.DataFrame({"file": [os.path.realpath(p) for p in c.image_paths()]}) for c in campaigns
    ]
    problems += _clashes(files, "file", roots, what="image file")
    for campaign in campaigns[1:]:
        used = set(campaign.particles["label"]) - {""}
        missing = sorted(used - set(classes))
        if missing:
            problems.append(
                f"{campaign.root}: label(s) {missing} are not in the class list of "
                f"{campaigns[0].root} ({CLASSES_FILE}); add them there first"
            )
    if problems:
        raise ProblemsError("cannot merge the campaigns", problems, note=" (nothing was written)")
    particles = []
    for campaign in campaigns:
        frame = campaign.particles.copy()
        if campaign.root.resolve() != out_root:
            frame["image"] = [str(campaign.image_path(p).resolve()) for p in frame["image"]]
        particles.append(frame)
    samples = pd.concat([c.samples for c in campaigns], ignore_index=True)
    return pd.concat(particles, ignore_index=True), samples, classes


def merge_into(campaign_root: str | os.PathLike, addition: str | os.PathLike) -> Campaign:
    """Add the campaign at ``addition`` to the one at ``campaign_root`` in place.

    The replaced ``particles.csv`` and ``samples.csv`` are kept under
    ``<campaign>/.plankflux_history/<UTC time>/``; each new file is written atomically.
    """
    target = load_campaign(campaign_root, check_images="none")
    extra = load_campaign(addition, check_images="none")
    particles, samples, classes = merge_campaigns([target, extra], target.root)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    history = target.root / HISTORY_DIR / stamp
    history.mkdir(parents=True)
    for name in (PARTICLES_FILE, SAMPLES_FILE, CLASSES_FILE):
        if (target.root / name).exists():
            shutil.copy2(target.root / name, history / name)
    write_campaign(target.root, particles, samples, classes)
    return load_campaign(target.root, check_images="none")
