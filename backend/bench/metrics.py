"""The bench's metrics. Every function takes plain numpy arrays and returns a float (NaN where the
metric is undefined for that input, e.g. hint adherence without hints), so each can be tested alone.

Conventions: RGB images are uint8 HxWx3; the ink is float32 HxW in [0, 1] with 1 = paper (as in
`backend.structure`); an "output" is what the user sees: the composite, colour multiplied by the ink.
"""

from __future__ import annotations

import cv2
import numpy as np

from .. import color
from ..structure import enclosed_holes

INK_LEVEL = 0.5  # ink darker than this is ink (the same threshold as structure.INK_LEVEL)
PAPER_LEVEL = 0.8  # ink lighter than this is paper for balloon detection
STILL_WHITE_DE = 5.0  # a balloon pixel is preserved if the output is within this dE00 of the page
GT_WHITE_DE = 5.0  # a ground-truth pixel within this dE00 of pure white is white

# Balloon-like regions: enclosed white areas of a useful size, convex, with text-like holes.
BALLOON_MIN_SHARE = 0.001  # of the page area
BALLOON_MAX_SHARE = 0.06
BALLOON_MIN_SOLIDITY = 0.9  # filled area / convex hull area
BALLOON_MIN_HOLES = 3  # ink blobs enclosed (the glyphs)
BALLOON_MAX_HOLES = 400  # more than this is screentone or hatching, not lettering


def _as_u8(rgb: np.ndarray) -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.dtype == np.uint8:
        return arr[..., :3]
    return np.clip(arr[..., :3] * 255.0 + 0.5, 0, 255).astype(np.uint8)


def ink_to_rgb(ink: np.ndarray) -> np.ndarray:
    """The page itself as an RGB image (the 'no colour' output)."""
    g = np.clip(np.asarray(ink, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=-1)


def _pack(rgb: np.ndarray) -> np.ndarray:
    r = rgb.astype(np.int64)
    return (r[..., 0] << 16) | (r[..., 1] << 8) | r[..., 2]


def _unpack(code: np.ndarray) -> np.ndarray:
    return np.stack([(code >> 16) & 255, (code >> 8) & 255, code & 255], -1).astype(np.float64) / 255.0


def delta_e_pixels(rgb1: np.ndarray, rgb2: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(unique dE00 values, their pixel counts) between two uint8 images over `mask`.

    Exact, but computed once per distinct colour pair: a page has far fewer distinct pairs than pixels.
    """
    a, b = _as_u8(rgb1), _as_u8(rgb2)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if mask is not None:
        a, b = a[mask], b[mask]
    ka, kb = _pack(a), _pack(b)
    if ka.size == 0:
        return np.zeros(0), np.zeros(0, np.int64)
    pairs, counts = np.unique((ka.ravel() << 24) | kb.ravel(), return_counts=True)
    lab1 = color.rgb_to_lab(_unpack(pairs >> 24))
    lab2 = color.rgb_to_lab(_unpack(pairs & 0xFFFFFF))
    return color.ciede2000(lab1, lab2), counts


def mean_delta_e(rgb1: np.ndarray, rgb2: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean CIEDE2000 between two RGB images over `mask` (all pixels if None); NaN if the mask is empty."""
    de, counts = delta_e_pixels(rgb1, rgb2, mask)
    if counts.sum() == 0:
        return float("nan")
    return float((de * counts).sum() / counts.sum())


def delta_e_non_ink(output: np.ndarray, gt: np.ndarray, ink: np.ndarray) -> float:
    """Mean dE00 of the output vs the ground truth on pixels that are not ink (ink >= 0.5).

    Ink pixels are excluded because Multiply keeps them black whatever the colour is, and the
    ground truth's colour under a line is not something the colorist can see or choose.
    """
    return mean_delta_e(output, gt, np.asarray(ink) >= INK_LEVEL)


def hint_adherence(output: np.ndarray, hints_rgba: np.ndarray | None) -> float:
    """Mean dE00 between the output and the hint colour at the hint pixels (NaN without hints)."""
    if hints_rgba is None:
        return float("nan")
    mask = hints_rgba[..., 3] > 0
    if not mask.any():
        return float("nan")
    return mean_delta_e(output, hints_rgba[..., :3], mask)


def colourfulness(rgb: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Hasler & Suesstrunk (2003) colourfulness M on 0..255 sRGB: sigma_rgyb + 0.3 mu_rgyb.

    About 0 for a gray image; 15 'slightly', 33 'moderately', 59 'quite', 82 'highly', 109 'extremely' colourful.
    """
    x = _as_u8(rgb).astype(np.float64)
    if mask is not None:
        x = x[mask]
    x = x.reshape(-1, 3)
    if x.shape[0] == 0:
        return float("nan")
    rg = x[:, 0] - x[:, 1]
    yb = 0.5 * (x[:, 0] + x[:, 1]) - x[:, 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


MIN_GT_COLOURFULNESS = 1.0  # below this the ground truth is gray and the ratio means nothing


def colourfulness_ratio(output: np.ndarray, gt: np.ndarray, m_gt: float | None = None) -> float:
    """M(output) / M(ground truth): 1 = as colourful as the truth, 0 = gray, > 1 = garish.
    `m_gt` may pass a precomputed colourfulness(gt)."""
    m_gt = colourfulness(gt) if m_gt is None else m_gt
    if not m_gt >= MIN_GT_COLOURFULNESS:
        return float("nan")
    return colourfulness(output) / m_gt


def palette_fidelity(output: np.ndarray, reference: np.ndarray) -> float:
    """216-bin (6x6x6 RGB) histogram intersection of the output with the reference: 1 = same colour proportions."""
    return color.histogram_intersection(color.histogram216(_as_u8(output)), color.histogram216(_as_u8(reference)))


def _luma(rgb: np.ndarray) -> np.ndarray:
    return _as_u8(rgb).astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0


def ink_preservation(output: np.ndarray, ink: np.ndarray) -> float:
    """Share of ink pixels (ink < 0.5) that are still ink in the output (luma < 0.5). NaN if no ink.

    Colour multiplied under the ink keeps this at 1 by construction; the metric guards that
    (a method or pipeline change that paints over lines, or lightens them, shows up here).
    """
    dark = np.asarray(ink) < INK_LEVEL
    if not dark.any():
        return float("nan")
    return float((_luma(output)[dark] < INK_LEVEL).mean())


def balloon_mask(ink: np.ndarray) -> np.ndarray:
    """Balloon-like white regions of a B/W page (bool HxW): a heuristic, not a balloon detector.

    4-connected paper regions (ink > 0.8) that do not touch the page border, cover 0.1-6 % of the
    page, are convex (solidity >= 0.9 with their holes filled) and enclose 3-400 ink blobs (the
    lettering). On the Black Jack pages this finds most balloons and caption boxes and a few
    convex white objects (a cap, a clock face); it misses balloons that open into the panel.
    """
    ink = np.asarray(ink, np.float32)
    h, w = ink.shape
    white = (ink > PAPER_LEVEL).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(white, connectivity=4)
    out = np.zeros((h, w), bool)
    total = float(h * w)
    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if not BALLOON_MIN_SHARE * total <= area <= BALLOON_MAX_SHARE * total:
            continue
        if x == 0 or y == 0 or x + bw == w or y + bh == h:
            continue
        comp = labels[y : y + bh, x : x + bw] == i
        holes = enclosed_holes(comp)
        filled = comp | holes
        n_holes = cv2.connectedComponents(holes.astype(np.uint8), connectivity=8)[0] - 1
        if not BALLOON_MIN_HOLES <= n_holes <= BALLOON_MAX_HOLES:
            continue
        contours, _ = cv2.findContours(filled.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull_area = cv2.contourArea(cv2.convexHull(np.concatenate(contours)))
        if filled.sum() / max(hull_area, 1.0) < BALLOON_MIN_SOLIDITY:
            continue
        out[y : y + bh, x : x + bw] |= comp
    return out


def balloons_from_seeds(ink: np.ndarray, seeds: list[tuple[float, float]]) -> np.ndarray:
    """Labelled balloons (bool HxW): the 4-connected paper region (ink > 0.8) under each seed (x, y),
    with what it encloses (the lettering) filled in."""
    ink = np.asarray(ink, np.float32)
    h, w = ink.shape
    white = (ink > PAPER_LEVEL).astype(np.uint8)
    _, labels = cv2.connectedComponents(white, connectivity=4)
    out = np.zeros((h, w), bool)
    for x, y in seeds:
        xi, yi = min(w - 1, int(round(x))), min(h - 1, int(round(y)))
        if labels[yi, xi] == 0:
            continue  # the seed fell on ink (a rescaled page): no region to take
        comp = labels == labels[yi, xi]
        out |= comp | enclosed_holes(comp)
    return out


WHITE_REGION_MIN_SHARE = 0.001  # of the page area


def white_regions(ink: np.ndarray, min_share: float = WHITE_REGION_MIN_SHARE) -> np.ndarray:
    """Large white areas of a B/W page (bool HxW): 4-connected paper regions (ink > 0.8) of at
    least `min_share` of the page: background, balloons, and shapes the artist left white."""
    white = (np.asarray(ink, np.float32) > PAPER_LEVEL).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(white, connectivity=4)
    big = stats[:, cv2.CC_STAT_AREA] >= min_share * white.size
    big[0] = False
    return big[labels]


def gt_white(gt: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """Pixels of the ground truth within dE00 5 of pure white (looked at only `where`, if given)."""
    rgb = _as_u8(gt)
    out = np.zeros(rgb.shape[:2], bool)
    sel = np.ones(rgb.shape[:2], bool) if where is None else np.asarray(where, bool)
    if not sel.any():
        return out
    lab = color.rgb_to_lab(rgb[sel].astype(np.float64) / 255.0)
    out[sel] = color.ciede2000(lab, np.array([100.0, 0.0, 0.0])) < GT_WHITE_DE
    return out


def balloon_preservation(output: np.ndarray, ink: np.ndarray, region: np.ndarray) -> float:
    """Share of `region` pixels (balloons, or large white areas) whose output is still the page's
    own gray (dE00 < 5). NaN when the page has no such region."""
    region = np.asarray(region, bool)
    if not region.any():
        return float("nan")
    de, counts = delta_e_pixels(output, ink_to_rgb(ink), region)
    return float(counts[de < STILL_WHITE_DE].sum() / counts.sum())


def shift_page(img: np.ndarray, shift: int, fill: float | int) -> np.ndarray:
    """The page moved `shift` px right and down; the uncovered strip is `fill` (paper or no hint)."""
    out = np.full_like(img, fill)
    out[shift:, shift:] = img[: img.shape[0] - shift, : img.shape[1] - shift]
    return out


def shift_consistency(output: np.ndarray, output_shifted: np.ndarray, ink: np.ndarray, shift: int) -> float:
    """Mean dE00 between the output of a page and the output of the same page shifted by `shift` px,
    on the overlap, over non-ink pixels (0 = the colouring does not depend on where the page sits)."""
    h, w = output.shape[:2]
    a = _as_u8(output)[: h - shift, : w - shift]
    b = _as_u8(output_shifted)[shift:, shift:]
    return mean_delta_e(a, b, np.asarray(ink)[: h - shift, : w - shift] >= INK_LEVEL)
