"""Speech balloons and caption boxes, found by their lettering, and the rule that keeps them white.

Colorists leave lettered regions white; a network that sees a white region enclosed by a line
cannot tell a balloon from a white shirt, but the lettering can: many small glyphs of similar
size, in a convex white area with no screentone. Found on the full-resolution page, one balloon
at a time, so the pipeline can decide per balloon without labelling the page again.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .structure import INK_LEVEL, Checkpoint, enclosed_holes

BALLOON_MIN_SHARE = 0.0005  # of the page area
BALLOON_MAX_SHARE = 0.08
BALLOON_MIN_GLYPHS = 4  # an emoji face (eyes, mouth) has fewer features of one size than a line of text
BALLOON_MAX_GLYPH_SIDE = 0.3  # a glyph's bounding box side / the region's shorter side
BALLOON_MIN_INK_SHARE = 0.02  # dark lettering ink / balloon area: a few specks are not text
BALLOON_MAX_INK_SHARE = 0.35  # lettering covers a minority of the balloon
BALLOON_MAX_GLYPH_SIZE_CV = 0.35  # standard deviation / mean of the glyph sizes
BALLOON_MAX_TONE_SHARE = 0.02  # screentone inside means a drawn object, not a balloon
BALLOON_MIN_SOLIDITY = 0.85  # filled area / convex hull area: balloons and boxes are convex
BALLOON_PAPER_LEVEL = 0.8


@dataclass
class Balloon:
    rows: slice  # its bounding box on the page
    cols: slice
    filled: np.ndarray  # bool, the balloon inside its box, the lettering included


def find_balloons(ink: np.ndarray, tone: np.ndarray, checkpoint: Checkpoint | None = None) -> list[Balloon]:
    """Speech balloons and caption boxes of a full-resolution page: paper regions away from the
    border that enclose many glyph-sized blobs of ink, hold no screentone and are convex. A
    heuristic; a hint inside a balloon overrules it (`white_balloons`). `checkpoint` is called
    before each candidate region (it raises to stop)."""
    h, w = ink.shape
    # Stricter than INK_LEVEL: the gray edge of a thin balloon outline must still close it.
    paper = np.ascontiguousarray(ink > BALLOON_PAPER_LEVEL).view(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(paper, connectivity=4)
    del paper
    if checkpoint is not None:
        checkpoint()
    out: list[Balloon] = []
    total = float(h * w)
    x0, y0, bw0, bh0, area0 = (stats[:, c] for c in range(5))
    candidates = np.flatnonzero(
        (area0 >= BALLOON_MIN_SHARE * total) & (area0 <= BALLOON_MAX_SHARE * total)
        & (x0 > 0) & (y0 > 0) & (x0 + bw0 < w) & (y0 + bh0 < h)
    )  # fmt: skip
    for i in candidates[candidates > 0]:
        if checkpoint is not None:
            checkpoint()
        x, y, bw, bh = int(x0[i]), int(y0[i]), int(bw0[i]), int(bh0[i])
        comp = labels[y : y + bh, x : x + bw] == i
        holes = enclosed_holes(comp)  # glyphs and their counters
        filled = comp | holes
        filled_area = float(filled.sum())
        letter_ink = float((ink[y : y + bh, x : x + bw][holes] < INK_LEVEL).sum()) / filled_area
        if not BALLOON_MIN_INK_SHARE <= letter_ink <= BALLOON_MAX_INK_SHARE:
            continue
        if tone[y : y + bh, x : x + bw][holes].sum() > BALLOON_MAX_TONE_SHARE * filled_area:
            continue
        # The glyphs: the larger enclosed blobs (kana, kanji, letters; not dots and dakuten) are
        # many, small next to the balloon, and of one size. Eyes, folds and hatching are not.
        _, _, hole_stats, _ = cv2.connectedComponentsWithStats(holes.astype(np.uint8), connectivity=8)
        side = np.maximum(hole_stats[1:, cv2.CC_STAT_WIDTH], hole_stats[1:, cv2.CC_STAT_HEIGHT]).astype(np.float64)
        if side.size < BALLOON_MIN_GLYPHS:
            continue
        glyph_side = side[side >= 0.5 * np.percentile(side, 90)]
        if glyph_side.size < BALLOON_MIN_GLYPHS or glyph_side.std() > BALLOON_MAX_GLYPH_SIZE_CV * glyph_side.mean():
            continue
        if glyph_side.max() > BALLOON_MAX_GLYPH_SIDE * min(bw, bh):
            continue
        contours, _ = cv2.findContours(filled.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull_area = cv2.contourArea(cv2.convexHull(np.concatenate(contours)))
        if filled_area < BALLOON_MIN_SOLIDITY * hull_area:
            continue
        out.append(Balloon(rows=slice(y, y + bh), cols=slice(x, x + bw), filled=filled))
    return out


def _touching(a: Balloon, b: Balloon) -> bool:
    """Whether two balloons overlap or touch (8-connected): joined balloons of one speech."""
    rows = slice(max(a.rows.start - 1, b.rows.start), min(a.rows.stop + 1, b.rows.stop))
    cols = slice(max(a.cols.start - 1, b.cols.start), min(a.cols.stop + 1, b.cols.stop))
    if rows.start >= rows.stop or cols.start >= cols.stop:
        return False
    grown = cv2.dilate(np.pad(a.filled, 1).view(np.uint8), np.ones((3, 3), np.uint8)) > 0  # rows/cols from start - 1
    part = grown[rows.start - a.rows.start + 1 : rows.stop - a.rows.start + 1, cols.start - a.cols.start + 1 : cols.stop - a.cols.start + 1]
    return bool((part & b.filled[rows.start - b.rows.start : rows.stop - b.rows.start, cols.start - b.cols.start : cols.stop - b.cols.start]).any())


def white_balloons(balloons: list[Balloon], hints: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    """bool HxW: the balloons that stay paper white, those with no hint pixel inside; None if
    there are none. A hint in one of several joined balloons (touching) keeps them all in colour.
    Only hint pixels count, not colour propagated at the working resolution (where a thin balloon
    outline may leak)."""
    if not balloons:
        return None
    group = list(range(len(balloons)))  # union-find over touching balloons

    def root(i: int) -> int:
        while group[i] != i:
            group[i] = i = group[group[i]]
        return i

    for i, a in enumerate(balloons):
        for j in range(i + 1, len(balloons)):
            if root(i) != root(j) and _touching(a, balloons[j]):
                group[root(j)] = root(i)
    coloured = set()
    if hints is not None:
        coloured = {root(i) for i, b in enumerate(balloons) if (hints[b.rows, b.cols, 3][b.filled] > 0).any()}
    white = np.zeros(shape, bool)
    for i, b in enumerate(balloons):
        if root(i) not in coloured:
            white[b.rows, b.cols] |= b.filled
    return white
