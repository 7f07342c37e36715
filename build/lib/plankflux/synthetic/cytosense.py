"""Synthetic CytoSense pair data sets in the real pair layout (docs/synthetic_data.md).

``generate_cytosense(out, kind, scale, seed)`` writes ``annotations.csv`` (``image,
profile, class, particle_id``), greyscale PNGs with a 25-px scale bar on top,
profile CSVs of varying length, ``classes.txt`` (labelled kinds) and
``synthetic_truth.csv`` (``particle_id, true_class`` for every particle, UTO too).

A species is a shape, a fluorescence signature and a typical size (``round_chl``:
a chlorophyll-red disc of ``species_size`` µm). Each particle draws one latent (size,
elongation, cell count, orientation) that makes both its image and its profile, so
size agrees across the two. The image is bright-field greyscale, so pigments are
invisible in it; the profile is a 1-D pass through the beam, so all "bump" shapes
(round, spiky, square, ring, triangle, crescent, cluster) give the same scatter
pulse. Sizes follow ``(shape index + signature index) mod 3``, so some species are
twins for one modality: ``round_chl``/``round_green`` (same shape and size) differ
only in fluorescence, ``round_chl``/``ring_chl`` (bump shapes, same signature and
size) only in the image; the others differ in both. I+P separates the twins that
I or P alone confuse.

Kinds: ``lab`` (cultures: clean, balanced), ``sea`` (in situ: long-tailed class
prior, LAB's species plus others, shifted look and detector gains), ``uto`` (in situ,
the SEA species pool with another prior, unlabelled). Every draw comes from numpy
PCG64 streams keyed on ``(seed, kind[, particle])``: a seed gives identical files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy.ndimage import gaussian_filter
from tqdm.auto import tqdm

from plankflux.data.cytosense import write_pairs, write_profile
from plankflux.layout import TRUTH_FILE
from plankflux.utils.atomic import write_csv_atomic

KINDS = ("lab", "sea", "uto")
SCALES = ("tiny", "demo", "paper")
SCALE_BAR_PX = 25
SHAPES = ("round", "spiky", "square", "ring", "elongated", "chain")
SHAPES += ("triangle", "crescent", "filament", "cluster")
BUMP_SHAPES = ("round", "spiky", "square", "ring", "triangle", "crescent", "cluster")
SIZE_CLASSES_UM = (8.0, 12.0, 18.0)  # median equivalent diameters
# Relative peak of FL green, yellow, orange, red per unit of forward scatter.
FLUORESCENCE = {
    "chl": (0.02, 0.04, 0.08, 0.90),  # chlorophyll: red
    "phyco": (0.02, 0.35, 0.80, 0.45),  # phycoerythrin: orange and yellow
    "none": (0.01, 0.01, 0.01, 0.01),  # heterotroph or detritus
    "green": (0.55, 0.12, 0.06, 0.35),
}
_LAB_SPECIES = {
    "tiny": [
        "round_chl",
        "round_green",
        "ring_chl",
        "spiky_phyco",
        "chain_none",
        "elongated_green",
    ],
    "demo": [
        f"{s}_{f}" for s in ("round", "spiky", "ring", "chain") for f in ("chl", "phyco", "green")
    ],
    "paper": [f"{s}_{f}" for s in SHAPES[:6] for f in FLUORESCENCE],
}
_SEA_EXTRA = {
    "tiny": ["triangle_chl", "filament_phyco"],
    "demo": ["triangle_chl", "triangle_phyco", "filament_chl", "filament_phyco"],
    "paper": [f"{s}_{f}" for s in SHAPES[6:] for f in FLUORESCENCE][:14],
}
# (total particles per kind, pixels per µm, profile samples per µm)
_SIZES = {
    "tiny": ({"lab": 60, "sea": 60, "uto": 80}, 1.2, 1.0),
    "demo": ({"lab": 720, "sea": 600, "uto": 1500}, 1.6, 1.5),
    "paper": ({"lab": 20_050, "sea": 9_353, "uto": 32_930}, 2.5, 2.0),
}
# Look and detector gains: LAB cultures are clean; the in-situ kinds are shifted.
_STYLE = {
    "lab": dict(bg=186.0, bg_sd=3.0, noise=2.5, blur=0.5, size=1.0, scatter=1.0, fl=1.0),
    "sea": dict(bg=168.0, bg_sd=8.0, noise=5.0, blur=0.9, size=1.12, scatter=1.1, fl=0.8),
    "uto": dict(bg=172.0, bg_sd=8.0, noise=5.0, blur=0.9, size=1.08, scatter=1.05, fl=0.85),
}


def species_of(kind: str, scale: str) -> list[str]:
    """The species (class names) of a kind at a scale; SEA and UTO extend LAB's."""
    lab = _LAB_SPECIES[scale]
    return lab if kind == "lab" else lab + _SEA_EXTRA[scale]


def species_size(species: str) -> float:
    """Median equivalent diameter (µm) of a species: shared by its image and profile."""
    shape, fluor = species.rsplit("_", 1)
    return SIZE_CLASSES_UM[(SHAPES.index(shape) + list(FLUORESCENCE).index(fluor)) % 3]


def _counts(n: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Split ``n`` over classes ∝ ``weights`` (largest remainder), each ≥ ``minimum``."""
    free = n - minimum * len(weights)
    share = free * weights / weights.sum()
    counts = np.floor(share).astype(int)
    counts[np.argsort(counts - share)[: free - counts.sum()]] += 1
    return counts + minimum


def _plan(kind: str, scale: str, rng: np.random.Generator) -> list[str]:
    species = species_of(kind, scale)
    n = _SIZES[scale][0][kind]
    if kind == "lab":
        weights = np.ones(len(species))
    else:  # long-tailed: Zipf-like prior over a random ranking of the species
        weights = 1.0 / (1.0 + rng.permutation(len(species))) ** 1.1
    counts = _counts(n, weights, minimum=2 if scale == "tiny" else 3)
    labels = np.repeat(np.array(species, dtype=object), counts)
    return list(labels[rng.permutation(len(labels))])


def _latent(species: str, style: dict, rng: np.random.Generator) -> dict:
    """One particle's shared latent: size (µm), elongation, cells, orientation."""
    shape = species.rsplit("_", 1)[0]
    size = species_size(species) * style["size"] * np.exp(rng.normal(0.0, 0.18))
    aspect = {"elongated": rng.uniform(2.0, 3.0), "filament": rng.uniform(5.0, 7.0)}
    cells = int(rng.integers(2, 6)) if shape == "chain" else 1
    return dict(size=size, aspect=aspect.get(shape, 1.0), cells=cells, theta=rng.uniform(0, np.pi))


def _half_extent(shape: str, latent: dict) -> tuple[float, float]:
    """Half length along the flow axis and half width, in µm."""
    r = latent["size"] / 2
    if shape == "chain":
        return latent["cells"] * 0.85 * r + 0.1 * r, 0.8 * r
    if shape in ("elongated", "filament"):
        width = r if shape == "elongated" else 0.35 * r
        return latent["aspect"] * width, width
    return 1.15 * r, 1.15 * r


def _distance(shape: str, u, v, r: float, latent: dict, rng) -> np.ndarray:
    """Approximate signed distance (px, < 0 inside) in the particle frame (u along flow)."""
    rad, phi = np.hypot(u, v), np.arctan2(v, u)
    if shape == "round":
        return rad - r
    if shape == "spiky":
        k = int(rng.integers(5, 9))
        return rad - r * (0.75 + 0.35 * np.cos(k * phi + rng.uniform(0, 6.3)))
    if shape == "square":
        return (np.abs(u) ** 4 + np.abs(v) ** 4) ** 0.25 - 0.9 * r
    if shape == "ring":
        return np.abs(rad - 0.75 * r) - 0.28 * r
    if shape == "triangle":
        normals = [(np.cos(a), np.sin(a)) for a in (0.0, 2.09, 4.19)]
        return np.max([nx * u + ny * v for nx, ny in normals], axis=0) - 0.6 * r
    if shape == "crescent":
        return np.maximum(rad - r, 0.85 * r - np.hypot(u - 0.45 * r, v))
    if shape == "cluster":
        centres = rng.uniform(-0.6 * r, 0.6 * r, size=(int(rng.integers(5, 9)), 2))
        return np.min([np.hypot(u - a, v - b) for a, b in centres], axis=0) - 0.38 * r
    if shape == "chain":
        cell = 0.8 * r
        centres = (np.arange(latent["cells"]) - (latent["cells"] - 1) / 2) * 1.7 * cell
        return np.min([np.hypot(u - c, v) for c in centres], axis=0) - cell
    half_len, half_w = _half_extent(shape, latent)  # elongated, filament: an ellipse
    width_px = half_w * 2 * r / latent["size"]
    return np.hypot(u * half_w / half_len, v) - width_px


def _image(shape: str, latent: dict, style: dict, px_um: float, rng) -> np.ndarray:
    """(25 + H, W) uint8: bright-field crop with a scale bar strip on top."""
    half_len, half_w = (e * px_um for e in _half_extent(shape, latent))
    c, s = np.cos(latent["theta"]), np.sin(latent["theta"])
    margin = 3 + 0.15 * max(half_len, half_w)
    half_x = abs(half_len * c) + abs(half_w * s) + margin
    half_y = abs(half_len * s) + abs(half_w * c) + margin
    h, w = max(8, int(2 * half_y)), max(16, int(2 * half_x))
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = x - (w - 1) / 2, y - (h - 1) / 2
    u, v = x * c + y * s, -x * s + y * c
    d = _distance(shape, u, v, latent["size"] / 2 * px_um, latent, rng)
    alpha = np.clip(0.5 - d / 1.2, 0.0, 1.0)
    texture = 1.0 + 0.8 * gaussian_filter(rng.normal(0, 1, (h, w)), 1.2)
    bg = style["bg"] + rng.normal(0, style["bg_sd"])
    pixels = bg * (1.0 - rng.uniform(0.35, 0.55) * alpha * texture)
    pixels = gaussian_filter(pixels, style["blur"]) + rng.normal(0, style["noise"], (h, w))
    strip = np.full((SCALE_BAR_PX, w), bg)
    strip[11:14, 2 : 2 + max(3, min(w - 4, int(10 * px_um)))] = 20.0  # a 10-µm bar
    return np.clip(np.vstack([strip, pixels]), 0, 255).astype(np.uint8)


def _profile(shape: str, fluor: str, latent: dict, style: dict, per_um: float, rng):
    """(L, 6) raw detector signal; L follows the particle's length along the flow."""
    half_len, _ = _half_extent(shape, latent)
    if shape in BUMP_SHAPES:  # the same pulse for every bump shape: size alone sets it
        half_len = 1.15 * latent["size"] / 2
    length = max(6, int(round(2 * half_len * per_um)) + 8)
    t = (np.arange(length) - (length - 1) / 2) / per_um  # µm along the flow
    if shape == "chain":
        cell = 0.8 * latent["size"] / 2
        centres = (np.arange(latent["cells"]) - (latent["cells"] - 1) / 2) * 1.7 * cell
        pulse = sum(np.exp(-0.5 * ((t - c) / (0.55 * cell)) ** 2) for c in centres)
    elif shape in ("elongated", "filament"):
        pulse = 1.0 / (1.0 + (np.abs(t) / (0.8 * half_len)) ** 6)
    else:
        pulse = np.exp(-0.5 * (t / (0.5 * half_len)) ** 2)
    fws = 8.0 * latent["size"] ** 2 * style["scatter"] * np.exp(rng.normal(0, 0.1))
    bands = [fws * pulse, 0.3 * fws * pulse * np.exp(rng.normal(0, 0.15))]
    for rel in FLUORESCENCE[fluor]:
        gain = 3.0 * latent["size"] ** 2 * style["fl"] * rel * np.exp(rng.normal(0, 0.2))
        bands.append(gain * pulse**1.5)  # pigments sit inside: a narrower pulse
    signal = np.stack(bands, axis=1)
    signal += rng.normal(0.5, 0.4 + 0.02 * signal, signal.shape)
    return np.clip(signal, 0.0, 7400.0)


def generate_cytosense(
    out: str | os.PathLike,
    kind: str = "lab",
    scale: str = "tiny",
    seed: int = 0,
    progress: bool = False,
) -> Path:
    """Write a synthetic ``kind`` data set at ``scale`` into the new folder ``out``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    root = Path(out)
    if root.exists() and any(root.iterdir()):
        raise ValueError(f"output folder {root} exists and is not empty")
    key = KINDS.index(kind)
    labels = _plan(kind, scale, np.random.default_rng([seed, key, 1 << 20]))
    _, px_um, per_um = _SIZES[scale]
    style, rows = _STYLE[kind], []
    for i, species in enumerate(tqdm(labels, desc=f"cytosense {kind}", disable=not progress)):
        rng = np.random.default_rng([seed, key, i])
        shape, fluor = species.rsplit("_", 1)
        latent = _latent(species, style, rng)
        pid = f"{kind}_{i:06d}"
        image, profile = f"images/{i // 1000:03d}/{pid}.png", f"profiles/{i // 1000:03d}/{pid}.csv"
        (root / image).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_image(shape, latent, style, px_um, rng)).save(root / image)
        write_profile(root / profile, _profile(shape, fluor, latent, style, per_um, rng))
        rows.append({"image": image, "profile": profile, "particle_id": pid, "true": species})
    frame = pd.DataFrame(rows)
    frame["class"] = "" if kind == "uto" else frame["true"]
    truth = frame[["particle_id", "true"]].rename(columns={"true": "true_class"})
    write_csv_atomic(truth, root / TRUTH_FILE)
    classes = None if kind == "uto" else species_of(kind, scale)
    write_pairs(root, frame[["image", "profile", "class", "particle_id"]], classes)
    return root
