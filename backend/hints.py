"""Simulated user colour hints (Comicolorization / interactive colorization style).

A hint is a small dot (1-3 px) or a short stroke of the ground-truth local colour, placed where a
user would put it: on paper between the ink (not on a line, not on a screentone dot) and inside an
area of uniform colour (not straddling a colour edge). Its colour is the median of the ground
truth in a small window. The output is an RGBA uint8 layer of the page's size (alpha 255 = hint),
the same format the plugin sends and `structure.resample_hints` reads.

`sample_hints` is deterministic for a given generator state; the bench calls it with k in
{0, 16, 64}. `hint_count` draws the training schedule: 0..15 hints mostly (Comicolorization),
with a tail of many (16..128).
"""

from __future__ import annotations

import cv2
import numpy as np

PAPER_LEVEL = 0.75  # ink above this is paper where a hint may sit
UNIFORM_RANGE = 0.10  # max per-channel spread of the ground truth around a hint
COLOURFUL_SATURATION = 0.15  # max-min of RGB above which a pixel counts as coloured
COLOURFUL_WEIGHT = 4.0  # coloured pixels are this much likelier to receive a hint than gray/white ones

__all__ = ["hint_candidates", "sample_hints", "hint_count"]


def _as_float_rgb(rgb: np.ndarray) -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.dtype == np.uint8:
        return arr[..., :3].astype(np.float32) / 255.0
    return np.clip(arr[..., :3].astype(np.float32), 0.0, 1.0)


def hint_candidates(gt_rgb: np.ndarray, ink: np.ndarray, clearance: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(bool mask of pixels where a hint dot may be centred, float sampling weight).

    A candidate has paper (no ink) within `clearance` px all around it and a uniform ground truth
    in its 5x5 window; coloured pixels weigh more, so hints go where the colour is.
    """
    rgb = _as_float_rgb(gt_rgb)
    paper = (np.asarray(ink, np.float32) > PAPER_LEVEL).astype(np.uint8)
    k = 2 * clearance + 1
    clear = cv2.erode(paper, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)), borderType=cv2.BORDER_REPLICATE) > 0
    box = np.ones((5, 5), np.uint8)
    spread = np.max(cv2.dilate(rgb, box) - cv2.erode(rgb, box), axis=-1)
    mask = clear & (spread < UNIFORM_RANGE)
    sat = rgb.max(-1) - rgb.min(-1)
    weight = np.where(sat > COLOURFUL_SATURATION, COLOURFUL_WEIGHT, 1.0).astype(np.float32)
    return mask, weight


def _median_colour(rgb: np.ndarray, y: int, x: int, r: int = 1) -> np.ndarray:
    h, w = rgb.shape[:2]
    win = rgb[max(0, y - r) : min(h, y + r + 1), max(0, x - r) : min(w, x + r + 1)].reshape(-1, 3)
    return np.median(win, axis=0)


def hint_count(rng: np.random.Generator, max_many: int = 128) -> int:
    """Training schedule: none 15%, 1..15 uniformly 60%, a tail of 16..max_many 25%."""
    u = rng.random()
    if u < 0.15:
        return 0
    if u < 0.75:
        return int(rng.integers(1, 16))
    return int(np.exp(rng.uniform(np.log(16), np.log(max_many + 1))))


def sample_hints(
    gt_rgb: np.ndarray,
    ink: np.ndarray,
    k: int,
    rng: np.random.Generator,
    strokes: bool = False,
    candidates: tuple[np.ndarray, np.ndarray] | None = None,
    sizes: tuple[int, ...] = (1, 2, 3),
) -> np.ndarray:
    """k hints of the ground truth's colour as an RGBA uint8 layer the size of `gt_rgb`.

    Dots are squares of a side drawn from `sizes`; with `strokes`, about half the hints are short
    strokes (4-16 px) that stay on candidate pixels of the same colour. `candidates` may pass a
    precomputed `hint_candidates(gt_rgb, ink)`. Fewer than k hints come back only when the page
    has fewer candidate pixels.
    """
    rgb = _as_float_rgb(gt_rgb)
    h, w = rgb.shape[:2]
    layer = np.zeros((h, w, 4), np.uint8)
    if k <= 0:
        return layer
    mask, weight = candidates if candidates is not None else hint_candidates(rgb, ink)
    idx = np.flatnonzero(mask.ravel())
    if idx.size == 0:
        return layer
    p = weight.ravel()[idx].astype(np.float64)
    p /= p.sum()
    chosen = rng.choice(idx, size=min(k, idx.size), replace=False, p=p)
    for flat in chosen:
        y, x = divmod(int(flat), w)
        col = _median_colour(rgb, y, x)
        c8 = np.clip(col * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if strokes and rng.random() < 0.5:
            length = int(rng.integers(4, 17))
            for yy, xx in _stroke_points(rgb, mask, y, x, col, length, rng.uniform(0, np.pi)):
                layer[yy, xx, :3] = c8
                layer[yy, xx, 3] = 255
        else:
            s = int(sizes[int(rng.integers(len(sizes)))])
            y0, x0 = y - (s - 1) // 2, x - (s - 1) // 2
            ys = slice(max(0, y0), min(h, y0 + s))
            xs = slice(max(0, x0), min(w, x0 + s))
            layer[ys, xs, :3] = c8
            layer[ys, xs, 3] = 255
    return layer


def _stroke_points(
    rgb: np.ndarray, allowed: np.ndarray, y: int, x: int, col: np.ndarray, length: int, angle: float
) -> list[tuple[int, int]]:
    """The pixels of a straight stroke of about `length` px through (y, x) at `angle`, grown both
    ways from the centre until it would leave the `allowed` pixels or the colour `col`."""
    h, w = allowed.shape
    dy, dx = np.sin(angle), np.cos(angle)
    points = []
    for sign in (1.0, -1.0):
        for t in range(0 if sign > 0 else 1, length // 2 + 1):
            yy, xx = int(round(y + sign * t * dy)), int(round(x + sign * t * dx))
            if not (0 <= yy < h and 0 <= xx < w) or not allowed[yy, xx]:
                break
            if np.abs(rgb[yy, xx] - col).max() > UNIFORM_RANGE:
                break
            points.append((yy, xx))
    return points


# ----------------------------------------------------------------------------- colorist-style hints

COLORIST_BACKGROUND_SHARE = 0.10  # share of hints a colorist puts on the background (white paper gets a white hint)
COLORIST_SHAPES = ("dot", "square", "stroke")  # drawn with equal odds
COLORIST_SQUARE_SIDES = (2, 3, 4, 5)
COLORIST_STROKE_LENGTH = (4, 16)  # px, inclusive
COLORIST_STROKE_WIDTHS = (1, 2, 3)
WHITE_LEVEL = 0.94  # every RGB channel above this: white paper in the ground truth
BACKGROUND_MIN_SHARE = 0.001  # a background region is a white area of at least this share of the page

__all__ += ["colorist_hints", "figure_and_background"]


def figure_and_background(gt_rgb: np.ndarray, ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(figure, background) bool masks of a ground-truth page: the figure is every pixel whose
    truth is not white; the background is white truth in a large paper area of the ink (4-connected
    paper regions of at least 0.1 % of the page): the paper around figures, not the white of an eye."""
    rgb = _as_float_rgb(gt_rgb)
    white = rgb.min(-1) > WHITE_LEVEL
    paper = ((np.asarray(ink, np.float32) > PAPER_LEVEL) & white).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(paper, connectivity=4)
    big = stats[:, cv2.CC_STAT_AREA] >= BACKGROUND_MIN_SHARE * paper.size
    big[0] = False
    return ~white, big[labels]


def colorist_hints(
    gt_rgb: np.ndarray,
    ink: np.ndarray,
    k: int,
    rng: np.random.Generator,
    background_share: float = COLORIST_BACKGROUND_SHARE,
) -> np.ndarray:
    """k hints as a colorist places them, as an RGBA uint8 layer the size of `gt_rgb`.

    Each hint is, with equal odds, a 1-px dot, a small square (2-5 px a side) or a short stroke
    (4-16 px long, 1-3 px wide, in a random direction, cut where it would leave the local colour
    or touch ink), of the true local colour (the median of the 3x3 truth). About
    `background_share` of them (a binomial draw) go on the background (white paper gets a white
    hint, as a colorist marks the background), the rest on the figure's coloured pixels, weighted
    towards saturated colour like `sample_hints`. Positions are candidates of `hint_candidates`
    (paper 2 px all around, uniform truth in 5x5), so a square fits. Deterministic for a given
    generator state; fewer than k hints only where the page has fewer candidate pixels. When one
    side has no candidates its hints go to the other.
    """
    rgb = _as_float_rgb(gt_rgb)
    h, w = rgb.shape[:2]
    layer = np.zeros((h, w, 4), np.uint8)
    if k <= 0:
        return layer
    ok, weight = hint_candidates(rgb, ink)
    figure, background = figure_and_background(rgb, ink)
    pools = []
    for sel in (ok & figure, ok & background):
        idx = np.flatnonzero(sel.ravel())
        p = weight.ravel()[idx].astype(np.float64)
        pools.append((idx, p / p.sum() if idx.size else p))
    n_bg = int(rng.binomial(k, background_share))
    counts = [k - n_bg, n_bg]
    for side in (0, 1):  # an empty side hands its hints to the other
        if pools[side][0].size == 0:
            counts[1 - side] += counts[side]
            counts[side] = 0
    paper = np.asarray(ink, np.float32) > PAPER_LEVEL
    for (idx, p), n in zip(pools, counts):
        n = min(n, idx.size)
        if n <= 0:
            continue
        chosen = rng.choice(idx, size=n, replace=False, p=p)
        for flat in chosen:
            y, x = divmod(int(flat), w)
            col = _median_colour(rgb, y, x)
            c8 = np.clip(col * 255.0 + 0.5, 0, 255).astype(np.uint8)
            shape = COLORIST_SHAPES[int(rng.integers(len(COLORIST_SHAPES)))]
            if shape == "dot":
                pts = [(y, x)]
            elif shape == "square":
                s = int(COLORIST_SQUARE_SIDES[int(rng.integers(len(COLORIST_SQUARE_SIDES)))])
                y0, x0 = y - (s - 1) // 2, x - (s - 1) // 2
                pts = [(yy, xx) for yy in range(y0, y0 + s) for xx in range(x0, x0 + s)]
            else:
                length = int(rng.integers(COLORIST_STROKE_LENGTH[0], COLORIST_STROKE_LENGTH[1] + 1))
                width = int(COLORIST_STROKE_WIDTHS[int(rng.integers(len(COLORIST_STROKE_WIDTHS)))])
                ang = rng.uniform(0, np.pi)
                dy, dx = np.sin(ang), np.cos(ang)
                centre = _stroke_points(rgb, ok, y, x, col, length, ang)
                r0 = -((width - 1) // 2)
                # widen across the stroke (perpendicular offsets), staying on the candidate's clear paper
                pts = [(int(round(cy + o * dx)), int(round(cx - o * dy))) for cy, cx in centre for o in range(r0, r0 + width)]
            for yy, xx in pts:
                if 0 <= yy < h and 0 <= xx < w and paper[yy, xx] and np.abs(rgb[yy, xx] - col).max() <= UNIFORM_RANGE:
                    layer[yy, xx, :3] = c8
                    layer[yy, xx, 3] = 255
    return layer
