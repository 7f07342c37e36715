"""Synthetic sediment-trap campaigns in the real campaign format (docs/synthetic_data.md).

``generate_trap_campaign(out, scale, seed)`` writes ``images/<domain>/<sample>/<id>.png``,
``particles.csv`` and ``samples.csv`` exactly as a real campaign, plus
``synthetic_truth.csv`` (``particle_id, true_label``) holding the class of *every*
particle, so a simulated expert can verify proposals of unlabelled images too.

What makes it useful for testing the method rather than only the plumbing:

* five domains (RR, FC, FO, SR, JC) with their own class priors (aggregates the
  majority, salp pellets and rhizaria rare) and their own look (background level and
  tint, blur, grain, mottling, particle size); RR's blur, grain and mottling lie
  outside the range of the other four, so an out-of-domain model is worse on it;
* one vectorised numpy drawer per class, so the classes differ in shape;
* ``esd_um`` measured from the drawn footprint, so it agrees with the image;
* a true flux from Table 1 allometry, a noisy "measured" flux, and ``ambiguous`` flags;
* as in Paper A's campaigns, an older-scheme original annotation ``label_original`` on
  *every* particle (about 80 % agreement with the true class) and the revised
  ``label`` on a subset (the labelled counts of the scale).

Everything is drawn from ``numpy`` PCG64 streams keyed on ``seed`` (one stream for
the plan, one per particle image), so a seed gives byte-identical files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy.ndimage import gaussian_filter
from tqdm.auto import tqdm

from plankflux.data.campaign import PARTICLES_FILE, write_campaign
from plankflux.data.classes import (
    DOMAINS,
    OLD_NAME_ALIASES,
    ORIGINAL_GROUP,
    TRAP_CLASSES,
)
from plankflux.flux.allometry import particle_carbon_mg
from plankflux.layout import TRUTH_FILE
from plankflux.utils.atomic import write_csv_atomic

SCALES = ("tiny", "demo", "paper")

# Pixel size at full resolution (a 224-px ROI) for each microscope magnification; the
# pixel size scales as 1/magnification. Smaller scales are downsampled ROIs, so one of
# their pixels covers 224/nominal as many µm (see ``pixel_size_um``).
UM_PER_PX_FULL = {7: 2.5, 10: 1.75, 20: 0.875}


@dataclass(frozen=True)
class _Scale:
    nominal_px: int
    counts: dict[str, tuple[int, int]]  # domain -> (images, labelled)
    samples: dict[str, int]  # domain -> trap samples
    min_labelled: int  # labelled per class in RR and JC; for common classes elsewhere


_SCALE_SPECS = {
    "tiny": _Scale(
        32,
        {"RR": (100, 60), "FC": (50, 30), "FO": (40, 24), "SR": (60, 34), "JC": (100, 56)},
        {"RR": 3, "FC": 2, "FO": 2, "SR": 2, "JC": 3},
        2,
    ),
    "demo": _Scale(
        64,
        {
            "RR": (1000, 450),
            "FC": (400, 160),
            "FO": (300, 120),
            "SR": (600, 240),
            "JC": (1200, 480),
        },
        {"RR": 6, "FC": 4, "FO": 4, "SR": 5, "JC": 6},
        4,
    ),
    "paper": _Scale(  # the real campaign sizes in docs/data_formats.md
        224,
        {
            "RR": (30300, 9078),
            "FC": (5454, 1186),
            "FO": (1799, 353),
            "SR": (16522, 4091),
            "JC": (115368, 35274),
        },
        {"RR": 30, "FC": 6, "FO": 4, "SR": 10, "JC": 20},
        2,
    ),
}

# Class priors (per cent, TRAP_CLASSES order): aggregate, long, short, mini, salp,
# rhizaria, dino, phyto_long, phyto_round, swimmer, fiber_blur, fiber_sharp, bubble, noise.
CLASS_PRIORS: dict[str, tuple[float, ...]] = {
    "RR": (46, 9, 8, 10, 0.4, 1.2, 1.5, 2.5, 2.5, 4, 3, 3, 3, 6),
    "FC": (36, 4, 7, 16, 0.2, 0.6, 5, 8, 8, 3, 3, 3, 1, 5),
    "FO": (44, 6, 12, 12, 0.3, 0.8, 2, 3, 4, 5, 2, 2, 4, 5),
    "SR": (52, 8, 5, 6, 1.0, 1.5, 1, 2, 2, 6, 4, 3, 2, 5),
    "JC": (40, 14, 9, 6, 0.6, 2.0, 2, 3, 3, 8, 3, 4, 2, 3),
}
_COMMON = 3.0  # per cent: classes at least this common get ``min_labelled`` everywhere


@dataclass(frozen=True)
class DomainStyle:
    """How one campaign's images look. Lengths are fractions of the nominal size."""

    background: float  # grey level of the gel
    tint: tuple[float, float, float]  # illumination colour, multiplies everything
    blur: float  # Gaussian sigma / nominal px
    grain: float  # per-pixel noise sd
    mottle: float  # amplitude of low-frequency background unevenness
    size: float  # particle size multiplier
    gain: float  # particle brightness multiplier
    magnifications: tuple[int, ...]
    base_flux: float  # true flux at 100 m, mmol C m-2 d-1
    start_date: str


# RR's gel is brighter than any other domain's and its images the grainiest and most
# mottled, with slightly larger particles (its tint lies inside the others' range).
# With a ResNet-18 from scratch at 32 px on the demo campaign, restored to its best
# validation epoch, RR accuracy is ~0.89 when RR's labelled images are in the training
# set and far lower (~0.2) when trained on FC+FO+SR+JC only: tests/e2e/test_domain_shift.py.
DOMAIN_STYLES: dict[str, DomainStyle] = {
    "RR": DomainStyle(
        0.34, (1.02, 1.00, 0.97), 0.020, 0.036, 0.07, 1.10, 1.00, (7,), 5.0, "2018-06-02"
    ),
    "FC": DomainStyle(
        0.30, (0.88, 0.98, 1.12), 0.006, 0.015, 0.02, 0.85, 0.85, (10,), 3.0, "2019-05-10"
    ),
    "FO": DomainStyle(
        0.26, (0.92, 1.06, 1.00), 0.009, 0.025, 0.03, 1.15, 0.90, (10,), 2.0, "2019-08-20"
    ),
    "SR": DomainStyle(
        0.16, (1.05, 1.00, 0.93), 0.011, 0.020, 0.04, 0.95, 1.10, (7,), 4.0, "2021-05-04"
    ),
    "JC": DomainStyle(
        0.12, (0.97, 1.02, 1.08), 0.008, 0.020, 0.02, 1.10, 1.15, (7, 10), 8.0, "2022-08-15"
    ),
}

# Per class: (RGB colour, opacity, size range as a fraction of the canvas's short side).
_LOOK: dict[str, tuple[tuple[float, float, float], float, tuple[float, float]]] = {
    "aggregate": ((0.82, 0.76, 0.64), 0.80, (0.40, 0.85)),
    "long_pellet": ((0.62, 0.44, 0.27), 0.97, (0.60, 0.95)),
    "short_pellet": ((0.66, 0.48, 0.30), 0.97, (0.38, 0.60)),
    "mini_pellet": ((0.58, 0.42, 0.26), 0.97, (0.12, 0.24)),
    "salp_pellet": ((0.55, 0.56, 0.30), 0.95, (0.45, 0.75)),
    "rhizaria": ((0.90, 0.90, 0.84), 0.70, (0.60, 0.95)),
    "phyto_dino": ((0.80, 0.63, 0.34), 0.90, (0.40, 0.65)),
    "phyto_long": ((0.45, 0.72, 0.40), 0.90, (0.55, 0.95)),
    "phyto_round": ((0.50, 0.78, 0.45), 0.90, (0.30, 0.55)),
    "swimmer": ((0.88, 0.52, 0.36), 0.85, (0.55, 0.90)),
    "fiber_blur": ((0.78, 0.82, 0.92), 0.60, (0.55, 0.95)),
    "fiber_sharp": ((0.80, 0.85, 0.95), 0.95, (0.60, 1.00)),
    "bubble": ((0.97, 0.97, 0.97), 1.00, (0.35, 0.70)),
    "noise": ((0.60, 0.60, 0.60), 0.35, (0.20, 0.60)),
}

# Which class a human confuses each class with, in the original (older) labels. The
# choices are plausible look-alikes whose carbon (Table 1, at the particle's ESD) roughly
# cancels over each class's list: e.g. an aggregate read as a phytoplankton cell gains
# carbon and one read as noise or a rhizarian loses it, and no aggregate is read as a
# (far denser) pellet. So the original annotation's flux stays close to the true and the
# measured flux, as in Paper A (human labels vs measured: MAE 0.71 on RR).
_CONFUSABLE = {
    "aggregate": ("noise", "phyto_round", "rhizaria"),
    "long_pellet": ("short_pellet", "salp_pellet"),
    "short_pellet": ("long_pellet", "mini_pellet"),
    "mini_pellet": ("short_pellet", "phyto_round"),
    "salp_pellet": ("long_pellet", "aggregate"),
    "rhizaria": ("aggregate", "phyto_round"),
    "phyto_dino": ("aggregate", "rhizaria"),
    "phyto_long": ("fiber_sharp", "aggregate"),
    "phyto_round": ("aggregate", "rhizaria"),
    "swimmer": ("aggregate", "fiber_sharp"),
    "fiber_blur": ("noise", "aggregate"),
    "fiber_sharp": ("swimmer", "phyto_long"),
    "bubble": ("aggregate", "fiber_blur"),
    "noise": ("aggregate", "fiber_blur"),
}
# Older annotation names (from classes.py) and how often an annotator used them.
_OLD_NAMES = {
    cls: tuple(old for old, new in OLD_NAME_ALIASES.items() if new == cls)
    for cls in ("aggregate", "long_pellet", "swimmer")
}
_OLD_NAME_RATE = {"aggregate": 0.2, "long_pellet": 0.3, "swimmer": 1.0}
# Paper A: every target image has an original annotation; where a random subset was
# relabelled, the two agree for about 80 % of images. So 20 % of original labels name a
# class a person plausibly confuses the true one with; 3 % of images are ambiguous, and
# so are 15 % of the disputed ones.
_DISAGREE, _AMBIGUOUS, _DISPUTED_AMBIGUOUS = 0.20, 0.03, 0.15


def pixel_size_um(magnification: int, scale: str) -> float:
    """µm covered by one pixel of an image at this magnification and scale."""
    return UM_PER_PX_FULL[magnification] * 224 / _SCALE_SPECS[scale].nominal_px


# --------------------------------------------------------------------------- drawing
def _coverage(dist: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage from a signed distance in px (negative inside)."""
    return np.clip(0.5 - dist, 0.0, 1.0)


def _polyline_dist(u: np.ndarray, v: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Distance from every pixel to the polyline through ``pts`` (m, 2)."""
    a, ab = pts[:-1], np.diff(pts, axis=0)
    pu, pv = u[..., None] - a[:, 0], v[..., None] - a[:, 1]
    t = np.clip((pu * ab[:, 0] + pv * ab[:, 1]) / np.maximum((ab**2).sum(1), 1e-9), 0, 1)
    return np.hypot(pu - t * ab[:, 0], pv - t * ab[:, 1]).min(-1)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Bilinearly interpolated value noise in [0, 1], ``cells`` blobs across."""
    grid = rng.random((cells + 1, cells + 1))
    y, x = np.linspace(0, cells, h, endpoint=False), np.linspace(0, cells, w, endpoint=False)
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    g = grid[y0][:, x0], grid[y0][:, x0 + 1], grid[y0 + 1][:, x0], grid[y0 + 1][:, x0 + 1]
    return (g[0] * (1 - fx) + g[1] * fx) * (1 - fy) + (g[2] * (1 - fx) + g[3] * fx) * fy


def _curve(rng, length: float, bend: float, m: int = 12) -> np.ndarray:
    """Points of a bent line of ``length`` centred on the origin along u."""
    s = np.linspace(-0.5, 0.5, m) * length
    return np.stack([s, bend * length * (4 * (s / length) ** 2 - 1) * rng.choice([-1, 1])], 1)


@dataclass(frozen=True)
class _Grid:
    """Pixel coordinates of one canvas in the particle's frame, and its scale.

    ``u, v``: rotated coordinates about the particle centre (px, u along the long
    axis); ``rho, phi``: the same in polar form; ``size``: the particle's major extent
    (px); ``px``: nominal pixel scale (1 at 32 px), for minimum line widths.
    """

    u: np.ndarray
    v: np.ndarray
    rho: np.ndarray
    phi: np.ndarray
    size: float
    px: float

    @property
    def r(self) -> float:
        return self.size / 2

    @property
    def line(self) -> float:  # width of thin structures: spines, legs, fibres
        return max(0.6, 0.02 * self.size)

    def dist_to(self, pts: np.ndarray) -> np.ndarray:
        return _polyline_dist(self.u, self.v, pts)

    def dist_to_points(self, pts: np.ndarray) -> np.ndarray:
        return np.hypot(self.u[..., None] - pts[:, 0], self.v[..., None] - pts[:, 1]).min(-1)


# Each drawer returns (alpha, shade, footprint): coverage in [0, 1], a brightness
# multiplier (array or scalar), and the boolean mask whose area defines the ESD.
def _aggregate(rng, g: _Grid):
    """Irregular outline with many lobes plus a few stuck-on blobs; porous inside."""
    k = np.arange(2, 9)[:, None, None]
    amp = rng.uniform(0.06, 0.22, (7, 1, 1)) / k**0.5
    wobble = (amp * np.cos(k * g.phi + rng.uniform(0, 2 * np.pi, (7, 1, 1)))).sum(0)
    dist = g.rho - 0.8 * g.r * (1 + wobble)
    for angle in rng.uniform(0, 2 * np.pi, int(rng.integers(0, 4))):
        at = 0.7 * g.r * np.array([[np.cos(angle), np.sin(angle)]])
        dist = np.minimum(dist, g.dist_to_points(at) - rng.uniform(0.2, 0.35) * g.r)
    alpha = _coverage(dist)
    cells = int(rng.integers(3, 7) * max(1.0, g.px / 2))  # finer pores on larger images
    pores = _smooth_noise(rng, *g.u.shape, cells=cells)
    return alpha, 0.45 + 0.6 * pores * (pores > 0.2), alpha > 0.5


def _pellet(aspect_range: tuple[float, float], capsule: bool):
    """Dense faecal pellet: a (slightly bent) capsule or an ellipse, shaded as a solid."""

    def draw(rng, g: _Grid):
        w = g.r / rng.uniform(*aspect_range)  # half-width
        if capsule:
            vb = g.v - rng.uniform(-0.4, 0.4) * g.u**2 / g.size
            dist = np.hypot(np.maximum(np.abs(g.u) - (g.r - w), 0), vb) - w
        else:
            vb = g.v
            dist = (np.hypot(g.u / g.r, g.v / w) - 1) * w
        alpha = _coverage(dist)
        return alpha, 1.05 - 0.45 * np.clip(vb / w, -1, 1) ** 2, alpha > 0.5

    return draw


def _salp_pellet(rng, g: _Grid):
    """Rounded rectangle with a cross-hatched surface."""
    a, b = g.r, g.r / rng.uniform(1.0, 1.5)
    corner = 0.12 * b
    q = np.maximum(np.stack([np.abs(g.u) - a + corner, np.abs(g.v) - b + corner]), 0)
    alpha = _coverage(np.hypot(*q) - corner)
    period = max(2.5 * g.px, 0.12 * g.size)
    hatch = 0.85 + 0.15 * np.cos(2 * np.pi * g.u / period) * np.cos(2 * np.pi * g.v / period)
    return alpha, hatch, alpha > 0.5


def _rhizaria(rng, g: _Grid):
    """Translucent round body with thin tapering spines radiating from it."""
    period = 2 * np.pi / int(rng.integers(9, 17))
    dphi = np.mod(g.phi - rng.uniform(0, period), period) - period / 2
    taper = g.line * np.clip(1 - g.rho / g.r, 0, 1)
    spines = _coverage(g.rho * np.abs(np.sin(dphi)) - taper) * (g.rho < g.r)
    body = _coverage(g.rho - g.r * rng.uniform(0.35, 0.5))
    return np.maximum(0.75 * body, spines), 1.0, (body > 0.5) | (spines > 0.5)


def _phyto_dino(rng, g: _Grid):
    """Dinoflagellate: round cell with an equatorial groove, an apical and 1-2 antapical horns."""
    body_r = 0.6 * g.r
    body = _coverage(np.hypot(g.u, g.v * rng.uniform(1.0, 1.2)) - body_r)
    horns = [np.array([[0.5 * body_r, 0], [g.r, 0]])]
    for side in (-1, 1)[: int(rng.integers(1, 3))]:
        angle = np.pi - side * rng.uniform(0.25, 0.5)
        horns.append(np.array([[0, 0], [g.r * np.cos(angle), g.r * np.sin(angle)]]))
    horn = np.zeros_like(g.u)
    for seg in horns:  # tapering from base to tip
        t = np.clip((g.u * seg[1, 0] + g.v * seg[1, 1]) / g.r**2, 0, 1)
        horn = np.maximum(horn, _coverage(g.dist_to(seg) - max(0.5, 0.18 * body_r) * (1 - t)))
    groove = 1 - 0.55 * np.exp(-((g.u / (0.12 * body_r)) ** 2))
    alpha = np.maximum(body, horn)
    return alpha, np.where(body > 0, groove, 1.0), alpha > 0.5


def _phyto_long(rng, g: _Grid):
    """Diatom chain of small cells along a gentle curve, or (1 in 3) a thin needle."""
    pts = _curve(rng, g.size * 0.9, rng.uniform(0, 0.12), m=int(rng.integers(4, 10)))
    if rng.random() < 0.35:
        alpha = _coverage(g.dist_to(pts) - max(0.5, 0.03 * g.size))
        return alpha, 1.0, alpha > 0.5
    bead = 0.45 * g.size * 0.9 / (len(pts) - 1)
    d = g.dist_to_points(pts)
    alpha = _coverage(d - bead)
    return alpha, 0.8 + 0.4 * (d > 0.6 * bead), alpha > 0.5


def _phyto_round(rng, g: _Grid):
    """One to four small round cells with bright rims."""
    n = int(rng.integers(1, 5))
    cell = g.r / (1.0 + 0.6 * (n > 1))
    d = g.dist_to_points(rng.uniform(-1, 1, (n, 2)) * (g.r - cell) * (n > 1))
    alpha = _coverage(d - cell)
    return alpha, 0.75 + 0.5 * (d > 0.65 * cell), alpha > 0.5


def _swimmer(rng, g: _Grid):
    """Copepod-like: segmented body, a tail, two swept-back antennae and legs."""
    size, a = g.size, 0.32 * g.size
    b = a / rng.uniform(2.0, 2.8)
    body = _coverage((np.hypot((g.u - 0.1 * size) / a, g.v / b) - 1) * b)
    tail = np.array([[0.1 * size - 0.8 * a, 0], [-0.5 * size, rng.uniform(-0.1, 0.1) * g.r]])
    limbs = [g.dist_to(tail) - 0.3 * b]
    tip = 0.1 * size + a
    for side in (-1, 1):
        antenna = np.array(
            [
                [tip, side * 0.2 * b],
                [tip + 0.08 * size, side * 1.2 * b],
                [tip - 0.25 * size, side * 0.48 * size],
            ]
        )
        limbs.append(g.dist_to(antenna) - g.line / 2)
    for x in np.linspace(0.1 * size - 0.6 * a, 0.1 * size + 0.4 * a, int(rng.integers(3, 6))):
        limbs.append(
            g.dist_to(np.array([[x, -0.7 * b], [x - 0.06 * size, -b - 0.2 * size]])) - g.line / 2
        )
    alpha = np.maximum(body, _coverage(np.min(limbs, axis=0)))
    segments = 0.8 + 0.25 * np.cos(2 * np.pi * g.u / max(2 * g.px, a / 2.5))
    return alpha, np.where(body > 0.5, segments, 1.0), alpha > 0.5


def _fiber(blurred: bool):
    """A thin bent line; out of focus (wider, blurred, fainter) when ``blurred``."""

    def draw(rng, g: _Grid):
        pts = _curve(rng, g.size, rng.uniform(0, 0.25), m=16)
        alpha = _coverage(g.dist_to(pts) - g.line * (1.2 if blurred else 0.5))
        footprint = alpha > 0.5
        if blurred:
            alpha = np.clip(1.6 * gaussian_filter(alpha, 0.06 * g.size), 0, 1)
        return alpha, 1.0, footprint

    return draw


def _bubble(rng, g: _Grid):
    """Bright ring with a clear centre and one specular highlight; footprint = the disc."""
    ring = _coverage(np.abs(g.rho - g.r) - max(0.6, 0.08 * g.r))
    spot = _coverage(np.hypot(g.u + 0.4 * g.r, g.v + 0.4 * g.r) - max(0.7, 0.15 * g.r))
    inside = _coverage(g.rho - g.r)
    return np.maximum.reduce([0.12 * inside, ring, spot]), 1.0, inside > 0.5


def _noise(rng, g: _Grid):
    """Empty field with a few faint specks (their area is the small ESD)."""
    d = g.dist_to_points(rng.uniform(-1, 1, (int(rng.integers(2, 9)), 2)) * g.r)
    alpha = _coverage(d - rng.uniform(0.4, 1.0) * g.px)
    return alpha, 1.0, alpha > 0.5


_DRAWERS = {
    "aggregate": _aggregate,
    "long_pellet": _pellet((3.0, 6.0), capsule=True),
    "short_pellet": _pellet((1.5, 2.2), capsule=False),
    "mini_pellet": _pellet((1.0, 1.15), capsule=False),
    "salp_pellet": _salp_pellet,
    "rhizaria": _rhizaria,
    "phyto_dino": _phyto_dino,
    "phyto_long": _phyto_long,
    "phyto_round": _phyto_round,
    "swimmer": _swimmer,
    "fiber_blur": _fiber(blurred=True),
    "fiber_sharp": _fiber(blurred=False),
    "bubble": _bubble,
    "noise": _noise,
}
assert set(_DRAWERS) == set(TRAP_CLASSES)


def _render(
    cls: str,
    style: DomainStyle,
    nominal: int,
    size_factor: float,
    ambiguous: bool,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """One RGB uint8 image of a ``cls`` particle in ``style``; also its footprint in px."""
    h, w = (int(round(nominal * f)) for f in rng.uniform(0.6, 1.3, 2))
    colour, opacity, (lo, hi) = _LOOK[cls]
    short = min(h, w)
    size = min(rng.uniform(lo, hi) * size_factor, 0.97) * short
    cy, cx = np.array([h, w]) / 2 + rng.uniform(-0.06, 0.06, 2) * short
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
    v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
    grid = _Grid(u, v, np.hypot(u, v), np.arctan2(v, u), size, nominal / 32)
    alpha, shade, footprint = _DRAWERS[cls](rng, grid)

    a = (alpha * opacity * (0.55 if ambiguous else 1.0))[..., None]
    mottle = 1 + style.mottle * (2 * _smooth_noise(rng, h, w, 3) - 1)
    background = (style.background * mottle)[..., None]
    shade = np.broadcast_to(np.asarray(shade, dtype=float), (h, w))[..., None]
    particle = np.asarray(colour) * style.gain * rng.uniform(0.85, 1.1) * shade
    img = (background * (1 - a) + particle * a) * np.asarray(style.tint)
    img = gaussian_filter(img, (style.blur * nominal,) * 2 + (0,))
    img += rng.normal(0, style.grain, img.shape)
    img = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    return img, max(int(footprint.sum()), 1)  # noise still has a (tiny) footprint


# --------------------------------------------------------------------------- planning
def _allocate(rng, n: int, probs: np.ndarray, minimum: np.ndarray) -> np.ndarray:
    """Class counts summing to ``n``: at least ``minimum`` each, otherwise near ``probs``.

    The rest after the minimum goes to the classes short of their expected count, so
    raising rare classes to the minimum does not eat the aggregates' majority.
    """
    rest = n - int(minimum.sum())
    if rest < 0:
        raise ValueError(f"{n} labelled particles cannot cover the per-class minimum")
    shortfall = np.clip(probs * n - minimum, 0, None)
    return minimum + rng.multinomial(rest, shortfall / shortfall.sum())


def _plan_domain(rng, domain: str, spec: _Scale) -> pd.DataFrame:
    """Particles of one domain, in file order: true class index, labelled flag, sample."""
    n, n_lab = spec.counts[domain]
    probs = np.asarray(CLASS_PRIORS[domain], dtype=float)
    probs /= probs.sum()
    everywhere = domain in ("RR", "JC")  # so both RR and the OOD union see every class
    minimum = np.where(everywhere | (probs * 100 >= _COMMON), spec.min_labelled, 0)
    n_classes = len(TRAP_CLASSES)
    labelled_counts = _allocate(rng, n_lab, probs, minimum)
    unlabelled_counts = rng.multinomial(n - n_lab, probs)
    cls = np.r_[
        np.repeat(np.arange(n_classes), labelled_counts),
        np.repeat(np.arange(n_classes), unlabelled_counts),
    ]
    labelled = np.arange(n) < n_lab
    # Samples differ in weight and in composition (each class's share varies).
    n_samples = spec.samples[domain]
    weight = rng.dirichlet(np.full(n_samples, 4.0))[:, None] * rng.lognormal(
        0, 0.5, (n_samples, n_classes)
    )
    p = weight[:, cls] / weight[:, cls].sum(0)
    sample = np.minimum((p.cumsum(0) < rng.random(n)).sum(0), n_samples - 1)
    for s in range(n_samples):  # every sample gets at least one particle
        if not (sample == s).any():
            sample[np.flatnonzero(sample == np.bincount(sample).argmax())[0]] = s
    order = np.lexsort((rng.permutation(n), sample))  # by sample, shuffled within
    return pd.DataFrame({"cls": cls[order], "labelled": labelled[order], "sample": sample[order]})


def _original_label(cls: str, rng) -> tuple[str, bool]:
    """The older-scheme human label of a particle, and whether it disagrees."""
    disagree = rng.random() < _DISAGREE
    if disagree:
        cls = _CONFUSABLE[cls][int(rng.integers(len(_CONFUSABLE[cls])))]
    if cls in _OLD_NAMES and rng.random() < _OLD_NAME_RATE[cls]:
        return _OLD_NAMES[cls][int(rng.integers(len(_OLD_NAMES[cls])))], disagree
    return ORIGINAL_GROUP[cls], disagree


# --------------------------------------------------------------------------- campaign
def _plan(rng, spec: _Scale) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The samples table (without area and fluxes) and every particle's plan, in file order."""
    samples, plans = [], []
    for domain in DOMAINS:
        start = pd.Timestamp(DOMAIN_STYLES[domain].start_date)
        plan = _plan_domain(rng, domain, spec)
        plan.insert(0, "domain", domain)
        plans.append(plan)
        for s in range(spec.samples[domain]):
            samples.append(
                {
                    "sample_id": f"{domain}{s + 1:02d}",
                    "domain": domain,
                    "depth_m": float(rng.choice([50, 100, 150, 200, 300, 500])),
                    "deployment_days": round(float(rng.uniform(1, 5)), 2),
                    "deployment": f"{domain}-{start.year}",
                    "date": (start + pd.Timedelta(days=7 * s // 3)).date().isoformat(),
                }
            )
    samples = pd.DataFrame(samples)
    plan = pd.concat(plans, ignore_index=True)
    plan["sample_id"] = plan["domain"] + (plan["sample"] + 1).map("{:02d}".format)
    plan["n"] = plan.groupby("sample_id").cumcount() + 1
    plan["depth_m"] = plan["sample_id"].map(samples.set_index("sample_id")["depth_m"])
    return samples, plan


def _make_particle(out: Path, scale: str, seed: int, i: int, p) -> dict:
    """Render particle ``i`` of the plan, save its PNG and return its particles.csv row.

    Each particle draws from its own stream keyed on (seed, i), so its image does not
    depend on how many random numbers the particles before it used.
    """
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 1, i])))
    style, cls = DOMAIN_STYLES[p.domain], TRAP_CLASSES[p.cls]
    mag = int(rng.choice(style.magnifications))
    ambiguous = bool(rng.random() < _AMBIGUOUS)
    original, disagree = _original_label(cls, rng)
    ambiguous |= disagree and rng.random() < _DISPUTED_AMBIGUOUS  # disputed: often ambiguous
    # Deeper traps catch smaller, more degraded particles.
    size = style.size * (p.depth_m / 150) ** -0.1 * rng.lognormal(0, 0.08)
    img, area = _render(cls, style, _SCALE_SPECS[scale].nominal_px, size, ambiguous, rng)
    pid = f"{p.sample_id}_{p.n:06d}"
    rel = f"images/{p.domain}/{p.sample_id}/{pid}.png"
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img, "RGB").save(out / rel, format="PNG", compress_level=6)
    esd = round(2 * math.sqrt(area / math.pi) * pixel_size_um(mag, scale), 2)
    return {
        "particle_id": pid,
        "image": rel,
        "domain": p.domain,
        "sample_id": p.sample_id,
        "esd_um": esd,
        "label": cls if p.labelled else "",
        "label_original": original,  # every particle, as in the paper's campaigns
        "ambiguous": "true" if ambiguous else "false",
        "magnification": mag,
        "true_label": cls,
    }


def _add_fluxes(rng, samples: pd.DataFrame, particles: pd.DataFrame) -> pd.DataFrame:
    """Set imaged area so true flux follows a Martin curve; measured = true × noise.

    The imaged particles are what the campaign holds, so the area is chosen to put the
    true flux (Table 1 carbon / area / days) at a realistic 0.5-20 mmol C m-2 d-1;
    the measured bulk flux adds lognormal error (sd ~15 %).
    """
    carbon = (
        samples["sample_id"]
        .map(particles.groupby("sample_id")["carbon_mg"].sum() / 12.011)
        .fillna(0.0)
    )
    base = samples["domain"].map({k: v.base_flux for k, v in DOMAIN_STYLES.items()})
    target = base * (samples["depth_m"] / 100) ** -0.86 * rng.lognormal(0, 0.3, len(samples))
    days = samples["deployment_days"]
    area = (carbon / (target * days)).where(carbon > 0, 2e-4)  # no carbon: any area does
    samples["imaged_area_m2"] = [float(f"{a:.6g}") for a in area]
    measured = carbon / (samples["imaged_area_m2"] * days) * rng.lognormal(0, 0.15, len(days))
    samples["measured_flux_mmol_m2_d"] = [round(float(x), 4) for x in measured]
    samples["measured_flux_sd"] = [round(float(x * rng.uniform(0.05, 0.2)), 4) for x in measured]
    return samples


def generate_trap_campaign(
    out: str | Path, scale: str = "tiny", seed: int = 0, progress: bool = False
) -> Path:
    """Write a synthetic trap campaign into ``out`` and return ``out``.

    ``scale``: ``tiny`` (350 images around 32 px, about a second), ``demo`` (3,500
    around 64 px, a few seconds) or ``paper`` (the real campaign sizes, see
    docs/data_formats.md, at 224 px: ~169k images, about an hour on one core and ~16 GB
    of PNG).
    Refuses to write where a ``particles.csv`` already exists. Images are written
    first and the CSVs last, so an interrupted run leaves no ``particles.csv``.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    out = Path(out)
    if (out / PARTICLES_FILE).exists():
        raise ValueError(
            f"{out} already holds a campaign ({PARTICLES_FILE}); "
            "choose an empty folder, nothing was overwritten"
        )
    spec = _SCALE_SPECS[scale]
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), 0])))
    samples, plan = _plan(rng, spec)

    bar = tqdm(plan.itertuples(), total=len(plan), desc=f"trap {scale}", disable=not progress)
    particles = pd.DataFrame(
        [_make_particle(out, scale, int(seed), i, p) for i, p in enumerate(bar)]
    )
    particles["carbon_mg"] = particle_carbon_mg(particles["true_label"], particles["esd_um"])
    samples = _add_fluxes(rng, samples, particles)

    write_csv_atomic(particles[["particle_id", "true_label"]], out / TRUTH_FILE)
    write_campaign(out, particles.drop(columns=["true_label", "carbon_mg"]), samples)
    return out
