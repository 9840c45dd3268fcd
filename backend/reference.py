"""The page palette, after the network: each unhinted region's colour moves to the nearest colour
of the palette the user gave, the hint colours and the main colours of the reference images.

The network reads a reference only as a 216-bin histogram and the hints as planes; a small model
trained on little data follows both weakly where no hint propagated, and guesses muted or stray
colours there. The palette says more: its colours are the page's. Like Welsh et al. (2002,
"Transferring colour to greyscale images") this transfers chroma only and keeps the network's
lightness (its shading from the ink); unlike them it works per line-enclosed region, so a region
takes one palette colour instead of a per-pixel patchwork.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import color
from .structure import Regions

N_REFERENCE_COLOURS = 8
MAX_HINT_COLOURS = 16
SAMPLE_SIDE = 160  # references are shrunk to this long side before clustering (speed; colours survive)
PAPER_L, PAPER_CHROMA = 90.0, 10.0  # reference pixels lighter and greyer than this are paper, not colour
INK_L = 12.0  # and darker than this are ink
WHITE_REGION_L, WHITE_REGION_CHROMA = 90.0, 6.0  # regions the network left white stay white
SOLID_HINT_ALPHA = 128  # soft brush edges are not colours the user chose


def _kmeans(lab: np.ndarray, k: int) -> np.ndarray:
    criteria = (cv2.TERM_CRITERIA_MAX_ITER + cv2.TERM_CRITERIA_EPS, 20, 0.5)
    cv2.setRNGSeed(0)  # the same inputs give the same colours
    _, _, centres = cv2.kmeans(lab.astype(np.float32), k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    return centres.astype(np.float64)


def reference_colours(references: list[np.ndarray], k: int = N_REFERENCE_COLOURS) -> np.ndarray:
    """The references' main colours (Lab, k-means over their non-paper, non-ink pixels); none
    (0 x 3) when they hold too little colour to cluster."""
    if not references:
        return np.zeros((0, 3))
    pixels = []
    for ref in references:
        scale = SAMPLE_SIDE / max(ref.shape[:2])
        if scale < 1.0:
            size = (max(1, round(ref.shape[1] * scale)), max(1, round(ref.shape[0] * scale)))
            ref = cv2.resize(ref, size, interpolation=cv2.INTER_AREA)
        pixels.append(ref[..., :3].reshape(-1, 3))
    lab = color.rgb_to_lab(np.concatenate(pixels).astype(np.float64) / 255.0)
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    lab = lab[~((lab[:, 0] > PAPER_L) & (chroma < PAPER_CHROMA)) & (lab[:, 0] > INK_L)]
    if len(lab) < 4 * k:
        return np.zeros((0, 3))
    return _kmeans(lab, k)


def hint_colours(hints: np.ndarray | None, k: int = MAX_HINT_COLOURS) -> np.ndarray:
    """The colours the user painted as hints (Lab), at most `k` (clustered when there are more)."""
    if hints is None:
        return np.zeros((0, 3))
    rgb = hints[..., :3][hints[..., 3] >= SOLID_HINT_ALPHA]
    if len(rgb) == 0:
        return np.zeros((0, 3))
    unique = np.unique(rgb.reshape(-1, 3), axis=0)
    lab = color.rgb_to_lab(unique.astype(np.float64) / 255.0)
    return lab if len(lab) <= k else _kmeans(color.rgb_to_lab(rgb.reshape(-1, 3).astype(np.float64) / 255.0), k)


def match_palette(
    color_work: np.ndarray,
    regions: Regions,
    hinted: np.ndarray,
    palette: np.ndarray,
    strength: float,
    paper: np.ndarray | None = None,
) -> np.ndarray:
    """Move the chroma of every unhinted, coloured, enclosed region (the gap-closed `regions` the
    network was told about) toward the nearest (CIEDE2000) palette colour (Lab, N x 3) by
    `strength` (0..1). Hinted regions, regions open to the page border, regions the network left
    white and paper (`paper`, what the paper seed won) are kept. Working resolution, sRGB float HxWx3."""
    if len(palette) == 0 or strength <= 0:
        return color_work
    labels, n = regions.labels, regions.n
    h, w = labels.shape
    lab = color.rgb_to_lab(color_work.reshape(-1, 3).astype(np.float64))
    flat = labels.ravel()
    area = np.maximum(regions.area, 1).astype(np.float64)
    mean = np.stack([np.bincount(flat, weights=lab[:, c], minlength=n) for c in range(3)], -1) / area[:, None]
    keep = regions.touches_border.copy()
    keep[0] = True  # the walls: hidden under the ink
    keep |= np.bincount(flat, weights=hinted.ravel().astype(np.float64), minlength=n) > 0
    if paper is not None:
        keep |= np.bincount(flat, weights=paper.ravel().astype(np.float64), minlength=n) > 0
    keep |= (mean[:, 0] > WHITE_REGION_L) & (np.hypot(mean[:, 1], mean[:, 2]) < WHITE_REGION_CHROMA)
    k = len(palette)
    de = color.ciede2000(np.repeat(mean, k, axis=0), np.tile(palette, (n, 1))).reshape(n, k)
    shift = palette[de.argmin(1)] - mean
    shift[:, 0] = 0.0  # chroma only: the lightness is the network's shading
    shift[keep] = 0.0
    lab += strength * shift[flat]
    return np.clip(color.lab_to_rgb(lab), 0.0, 1.0).reshape(h, w, 3).astype(np.float32)
