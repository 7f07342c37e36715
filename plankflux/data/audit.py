"""Checks of a valid campaign for what would quietly hurt training (``plankflux validate``).

* :func:`duplicate_images`: byte-identical image files filed as different particles.
  Filed under two different labels they are an error (the model is taught both
  answers for one image); otherwise a warning (the copy is counted twice, and may sit
  in training and in the test split at once).
* :func:`degenerate_images`: images whose size cannot show a particle (a side under
  :data:`MIN_SIDE_PX` pixels, such as a 1×1 placeholder, or an aspect ratio above
  :data:`MAX_ASPECT`, a stripe): a warning, as they decode, but resized to the model's
  square input they become a few smeared pixels.
* :func:`unsplittable_classes`: labelled classes of a domain too small to give the
  validation split an image (with ``val_fraction`` 0.2, classes of 1–2 images): they
  go entirely into training and are never validated or tested.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection

from PIL import Image

from plankflux.data.campaign import Campaign
from plankflux.errors import Problem
from plankflux.layout import PARTICLES_FILE

_CHUNK = 1 << 20
#: Sides shorter than this (pixels) are flagged: particle crops are tens of pixels or more.
MIN_SIDE_PX = 4
#: Width/height (or height/width) above this is flagged; long fibres stay well below it.
MAX_ASPECT = 50


def _digest(path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def duplicate_images(campaign: Campaign) -> tuple[list[Problem], list[Problem]]:
    """``(errors, warnings)`` for groups of particles whose image files are identical."""
    particles = campaign.particles
    by_content: dict[str, list[int]] = defaultdict(list)
    for i, path in enumerate(campaign.image_paths()):
        by_content[_digest(path)].append(i)
    errors, warnings = [], []
    for rows in by_content.values():
        if len(rows) < 2:
            continue
        ids = [str(particles["particle_id"].iat[i]) for i in rows]
        labels = sorted({particles["label"].iat[i] for i in rows} - {""})
        first = rows[0]
        pairs = zip(ids[1:], rows[1:], strict=True)
        others = ", ".join(f"{pid!r} (line {i + 2})" for pid, i in pairs)
        where = f"the same image as {others}"
        if len(labels) > 1:
            message = f"{where}, but labelled {' / '.join(labels)}: keep one particle"
            errors.append(Problem(PARTICLES_FILE, message, first + 2, "image", ids[0]))
        else:
            message = f"{where} (a duplicate counts twice and may be in training and test)"
            warnings.append(Problem(PARTICLES_FILE, message, first + 2, "image", ids[0]))
    return errors, warnings


def degenerate_images(campaign: Campaign) -> list[Problem]:
    """Warnings for images with a side under :data:`MIN_SIDE_PX` px or an aspect ratio
    above :data:`MAX_ASPECT` (sizes read from the file headers; images that do not
    open are left to the campaign check, which reports them as errors)."""
    warnings = []
    for i, path in enumerate(campaign.image_paths()):
        try:
            with Image.open(path) as image:
                width, height = image.size
        except Exception:  # noqa: BLE001 - unreadable images are the decode check's errors
            continue
        short, long = min(width, height), max(width, height)
        if short < MIN_SIDE_PX:
            why = f"{width}x{height} pixels: a side under {MIN_SIDE_PX} px"
        elif long > MAX_ASPECT * short:
            why = f"{width}x{height} pixels: an aspect ratio above {MAX_ASPECT}"
        else:
            continue
        pid = str(campaign.particles["particle_id"].iat[i])
        message = f"{why}, too small or thin to show a particle (is {path} a real crop?)"
        warnings.append(Problem(PARTICLES_FILE, message, i + 2, "image", pid))
    return warnings


def unsplittable_classes(
    campaign: Campaign, val_fraction: float = 0.2, domains: Collection[str] | None = None
) -> list[str]:
    """One line per (domain, class) whose labelled images give no validation image
    (only ``domains``, when given)."""
    labelled = campaign.particles[campaign.particles["label"] != ""]
    if domains is not None:
        labelled = labelled[labelled["domain"].isin(list(domains))]
    counts = labelled.groupby(["domain", "label"]).size()
    lines = []
    for (domain, label), n in counts.items():
        if n < 2 or round(val_fraction * n) == 0:
            lines.append(
                f"domain {domain}, class {label!r}: {n} labelled image(s), too few for a "
                f"{val_fraction:.0%} validation split: all go into training (never validated "
                "or tested)"
            )
    return lines
