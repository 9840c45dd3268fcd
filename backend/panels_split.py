"""Panel segmentation internals for backend.panels: gutter lines, recursive cuts, insets.

Everything here works on the page reduced to a fixed working size (`WORK_LONG` px on the long side);
the thresholds are fractions of that size or of the page area, so they do not depend on the scan
resolution.

- Paper: brighter than 0.8 x the paper level (the 97th percentile, robust to grey scans); ink:
  darker than 0.5 x. Content: non-paper pixels without specks.
- The page (trimmed to its content, leaving out marks apart from the panels) is cut recursively
  along gutter lines, XY-cut style but at any angle within MAX_SLANT degrees of level: a band of
  paper crossing the region, a frame line beside it, content on both sides, open at both ends.
  The angles tried are 0 and those of the long straight ink lines in the region (probabilistic
  Hough at a quarter degree): gutters run along frame lines. Best-scoring band first.
- Each region left is a convex polygon; trimmed to its content, it is a panel. Panels bleeding off
  the page keep the page edge as their side.
- Insets: a ring of paper inside a panel enclosing a large, mostly non-white, rectangular region
  (a panel with its own gutter, drawn over another panel).
"""

from __future__ import annotations

import cv2
import numpy as np

WORK_LONG = 1000  # working resolution, long side in px
CLOSE_GAP = 0.002  # insets: white ring eroded by this radius (fraction of the long side)
MIN_PANEL = 0.01  # smallest panel, fraction of the page area
MAX_SLANT = 12  # degrees: slanted gutters searched within this of horizontal/vertical
GUTTER_WHITE = 0.8  # a gutter line is at least this much paper
FRAME_INK = 0.4  # the frame line beside it is at least this much ink
FRAME_REACH = 0.008  # the frame line lies within this fraction of the long side of the gutter band
WIDE_GUTTER = 0.025  # a band this wide (fraction of the long side) needs a frame line on one side only
SPECK = 0.00005  # non-white specks smaller than this fraction of the page are noise
MAX_PANELS = 60
OPEN_END = 0.008  # open ends: this much paper (fraction of the long side) where a gutter meets the region edge
MIN_GUTTER = 0.002  # narrowest gutter, fraction of the long side
SIDE_CONTENT = 0.15  # each side of a gutter holds at least this x MIN_PANEL of content
TRIM = 0.02  # page level: marks apart from the panels holding less than this of the content are left out
LINE_MIN = 0.05  # long lines: at least this fraction of the long side
LINE_ANGLES = 6  # most frequent frame-line angles tried (each +- a quarter degree)
MIN_SIDE = 0.03  # a panel is at least this wide and high, fraction of the long side
INSET_MIN = 0.03  # an inset is at least this fraction of the page area
INSET_RECT = 0.85  # area / min-area-rectangle area of an inset
INSET_RING = 0.6  # white ring area at most this fraction of the enclosed area
INSET_INK = 0.25  # enclosed region at least this much non-white (a text box is mostly white)
INSET_MAX = 0.6  # an inset covers at most this fraction of its panel (else it is the panel's own art)


def work_image(page: np.ndarray) -> tuple[np.ndarray, float]:
    """Gray page (uint8 0..255 or float 0..1) -> uint8 at the working size, and the scale used."""
    g = np.asarray(page)
    if g.ndim == 3:
        g = g[..., :3].mean(axis=2) if g.shape[2] >= 3 else g[..., 0]
    if g.ndim != 2 or min(g.shape) < 8:
        raise ValueError(f"a page must be a 2-D gray image of at least 8x8 px, got shape {np.shape(page)}")
    if np.issubdtype(g.dtype, np.floating):
        g = np.clip(np.nan_to_num(g) * 255.0 if float(np.nanmax(g)) <= 1.0 else g, 0, 255)
    g = g.astype(np.uint8)
    s = WORK_LONG / max(g.shape)
    if s < 1:
        g = cv2.resize(g, (max(1, round(g.shape[1] * s)), max(1, round(g.shape[0] * s))), interpolation=cv2.INTER_AREA)
    else:
        s = 1.0
    return g, s


def paper_and_ink(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    paper = max(float(np.percentile(g, 97)), 64.0)
    return g >= 0.8 * paper, g < 0.5 * paper


def _disk(r: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def raster(poly: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    if len(poly) >= 3:
        cv2.fillPoly(m, [np.round(poly * 16).astype(np.int32)], 1, shift=4)
    return m.astype(bool)


def clip(poly: np.ndarray, p: np.ndarray, q: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The part of convex polygon `poly` on the side of line p-q where `inside` lies (Sutherland-Hodgman)."""
    d = q - p
    nrm = np.array([-d[1], d[0]])
    if np.dot(inside - p, nrm) < 0:
        nrm = -nrm
    f = (poly - p) @ nrm
    out = []
    for i in range(len(poly)):
        a, b, fa, fb = poly[i - 1], poly[i], f[i - 1], f[i]
        if fb >= 0:
            if fa < 0:
                out.append(a + (b - a) * fa / (fa - fb))
            out.append(b)
        elif fa >= 0:
            out.append(a + (b - a) * fa / (fa - fb))
    return np.array(out, float).reshape(-1, 2)


def clip_box(poly: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    for p, q, c in (((x0, 0), (x0, 1), (x1, y0)), ((x1, 0), (x1, 1), (x0, y0)), ((0, y0), (1, y0), (x0, y1)), ((0, y1), (1, y1), (x0, y0))):
        if len(poly) < 3:
            break
        poly = clip(poly, np.array(p, float), np.array(q, float), np.array(c, float))
    return poly


def content_map(white: np.ndarray) -> np.ndarray:
    """Non-white pixels without specks (JPEG noise, dust): what a panel must contain."""
    n, lab, st, _ = cv2.connectedComponentsWithStats((~white).astype(np.uint8), connectivity=8)
    keep = st[:, cv2.CC_STAT_AREA] >= SPECK * white.size
    keep[0] = False
    return keep[lab]


def _bands(stack: np.ndarray, ang: float, px: dict, min_area: float):
    """Gutter bands across a crop (channels white, ink, region, content) rotated by ang.

    Returns [(score, a, b)] (rows a..b of the rotated crop are the band), the rotation and its size.
    A band: rows of at least GUTTER_WHITE paper across the region, at least MIN_GUTTER wide, with
    content on both sides, a frame line beside it (within `reach`, on both sides, or on one side of
    a wide band) and open ends (paper where it meets the region's edge: a gap between balloons or
    figures inside a panel runs into the panel's frame instead). A wide band must also be crossed by
    no straight line (the white inside of a panel between two other panels' frames).
    """
    reach, wide, end_px, min_gutter, min_side = px["reach"], px["wide"], px["end"], px["gutter"], px["side"]
    h, w = stack.shape[:2]
    D = int(np.ceil(np.hypot(h, w))) + 2
    M = cv2.getRotationMatrix2D((w / 2, h / 2), ang, 1.0)
    M[:, 2] += [(D - w) / 2, (D - h) / 2]
    r = cv2.warpAffine(stack, M, (D, D), flags=cv2.INTER_NEAREST, borderValue=(0, 0, 0, 0))
    reg = r[..., 2]
    n = reg.sum(axis=1, dtype=np.int32)
    valid = n >= 0.5 * n.max()
    nn = np.maximum(n, 1)
    wf = (r[..., 0] & reg).sum(axis=1, dtype=np.int32) / nn
    rows = np.flatnonzero(valid)
    out: list[tuple[float, int, int]] = []
    if len(rows) < 3:
        return out, M, D
    inf = (r[..., 1] & reg).sum(axis=1, dtype=np.int32) / nn
    cs = np.concatenate([[0], np.cumsum((r[..., 3] & reg).sum(axis=1, dtype=np.int64))])
    side_min = SIDE_CONTENT * min_area
    first, last = rows[0], rows[-1]
    good = valid & (wf >= GUTTER_WHITE)
    y = first
    while y <= last:
        if not good[y]:
            y += 1
            continue
        a = y
        while y <= last and good[y]:
            y += 1
        b = y - 1
        if cs[a] < side_min or cs[-1] - cs[b + 1] < side_min:
            continue  # not a gutter between two panels: nothing (or too little) on one side
        width = b - a + 1
        if width < min_gutter:
            continue
        above, below = inf[max(first, a - reach):a], inf[b + 1:min(last + 1, b + 1 + reach)]
        ia, ib = above.max(initial=0.0), below.max(initial=0.0)
        if not (min(ia, ib) >= FRAME_INK or (max(ia, ib) >= FRAME_INK and width >= wide)):
            continue
        # a framed side is a panel, not a sliver (the frame line of this very panel, cut off)
        if (ia >= FRAME_INK and a - first < min_side) or (ib >= FRAME_INK and last - b < min_side):
            continue
        band = reg[a:b + 1].astype(bool)
        f = np.argmax(band, axis=1)
        l = band.shape[1] - 1 - np.argmax(band[:, ::-1], axis=1)
        k = np.arange(end_px)
        wb = r[a:b + 1, :, 0]
        rr = np.arange(b - a + 1)[:, None]
        open_f = wb[rr, np.minimum(f[:, None] + k, D - 1)].all(axis=1).any()
        open_l = wb[rr, np.maximum(l[:, None] - k, 0)].all(axis=1).any()
        if not (open_f and open_l):
            continue
        if width >= wide and (((r[a:b + 1, :, 1] & reg[a:b + 1]).sum(axis=0)) >= 0.9 * width).any():
            continue
        out.append((float(min(ia, ib) + 0.5 * wf[a:b + 1].mean() + 0.02 * min(width, 15)), a, b))
    return out, M, D


def page_lines(ink: np.ndarray) -> np.ndarray:
    """Long straight ink lines of the page (probabilistic Hough at a quarter degree): (n, 4) x1 y1 x2 y2."""
    min_len = max(10, round(LINE_MIN * max(ink.shape)))
    lines = cv2.HoughLinesP(ink.astype(np.uint8), 1, np.pi / 720, threshold=min_len // 2, minLineLength=min_len, maxLineGap=3)
    return np.zeros((0, 4), np.int32) if lines is None else lines[:, 0]


def _line_angles(lines: np.ndarray, box: tuple[int, int, int, int], transpose: bool) -> list[float]:
    """Angles (degrees, within MAX_SLANT of level) of the long lines crossing a box, most ink first.

    Gutters run along frame lines: the angles where a gutter may be level. A line counts with its
    part inside the box, if that is at least a quarter of the box's width (height if transposed).
    """
    x0, y0, x1, y1 = box
    need = 0.25 * ((y1 - y0) if transpose else (x1 - x0))
    votes: dict[float, float] = {}
    for l in lines:
        ok, p, q = cv2.clipLine((int(x0), int(y0), int(x1 - x0), int(y1 - y0)), (int(l[0]), int(l[1])), (int(l[2]), int(l[3])))
        if not ok:
            continue
        dx, dy = q[0] - p[0], q[1] - p[1]
        if transpose:
            dx, dy = dy, dx
        length = float(np.hypot(dx, dy))
        if length < need:
            continue
        ang = (float(np.degrees(np.arctan2(dy, dx))) + 90) % 180 - 90
        if abs(ang) <= MAX_SLANT:
            key = round(ang * 4) / 4
            votes[key] = votes.get(key, 0.0) + length
    return [a for a, _ in sorted(votes.items(), key=lambda kv: -kv[1])[:LINE_ANGLES]]


def find_cut(poly: np.ndarray, white: np.ndarray, ink: np.ndarray, content: np.ndarray, lines: np.ndarray, min_area: float):
    """The best straight gutter across convex region `poly`: (score, (p, q, inside_a), (p, q, inside_b)) or None.

    Each side is a half-plane (line p-q, a point on the kept side); the band between them is gutter.
    Angles tried: level, and those of the long straight ink lines (frame lines) in the region, each
    +- a quarter degree (a thin frame line must be level to within a pixel or two).
    """
    H, W = white.shape
    x0, y0 = np.floor(poly.min(axis=0)).astype(int).clip(0)
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 1
    x1, y1 = min(x1, W), min(y1, H)
    reg = raster(poly - [x0, y0], (y1 - y0, x1 - x0))
    stack = np.dstack([white[y0:y1, x0:x1], ink[y0:y1, x0:x1], reg, content[y0:y1, x0:x1]]).astype(np.uint8)
    long_side = max(H, W)
    px = {
        "reach": max(2, round(FRAME_REACH * long_side)),
        "wide": round(WIDE_GUTTER * long_side),
        "end": max(2, round(OPEN_END * long_side)),
        "gutter": max(1, round(MIN_GUTTER * long_side)),
        "side": round(MIN_SIDE * long_side),
    }
    best = None
    for transpose in (False, True):
        st = np.ascontiguousarray(stack.transpose(1, 0, 2)) if transpose else stack
        fine = {0.0, -0.25, 0.25}
        for ang0 in _line_angles(lines, (x0, y0, x1, y1), transpose):
            fine |= {ang0 - 0.25, ang0, ang0 + 0.25}
        for ang in sorted(fine):
            bands, M, D = _bands(st, float(ang), px, min_area)
            if not bands:
                continue
            sc, a, b = max(bands)
            sc -= 0.002 * abs(ang)
            if best is not None and sc <= best[0]:
                continue
            Mi = cv2.invertAffineTransform(M)

            def orig(u: float, v: float, Mi=Mi, transpose=transpose) -> np.ndarray:
                x, y = Mi @ np.array([u, v, 1.0])
                return np.array([y, x] if transpose else [x, y]) + [x0, y0]

            side_a = (orig(0, a - 0.5), orig(D, a - 0.5), orig(D / 2, a - 5))
            side_b = (orig(0, b + 0.5), orig(D, b + 0.5), orig(D / 2, b + 5))
            best = (sc, side_a, side_b)
    return best


def _trimmed_extent(profile: np.ndarray, trim: float) -> tuple[int, int]:
    """First and last index of a content profile. With trim > 0, outer groups of content separated
    from the rest by blank lines and holding less than `trim` of it are left out (a scanner's edge
    line, a page number or a footnote beside the panels)."""
    nz = np.flatnonzero(profile)
    lo, hi = int(nz[0]), int(nz[-1])
    if trim <= 0:
        return lo, hi
    total = float(profile.sum())
    gaps = np.flatnonzero(np.diff(nz) > 1)  # blank runs between groups of content
    starts = np.concatenate([[nz[0]], nz[gaps + 1]])
    ends = np.concatenate([nz[gaps], [nz[-1]]])
    sums = [float(profile[s0:e0 + 1].sum()) for s0, e0 in zip(starts, ends)]
    i, j = 0, len(sums) - 1
    while i < j and sums[i] < trim * total:
        i += 1
    while j > i and sums[j] < trim * total:
        j -= 1
    return int(starts[i]), int(ends[j])


def segment(white: np.ndarray, ink: np.ndarray, content: np.ndarray, min_area: float) -> list[np.ndarray]:
    """Recursive cuts of the page along gutter lines: the panel regions (convex polygons)."""
    H, W = white.shape
    todo = [np.array([[0, 0], [W, 0], [W, H], [0, H]], float)]
    out = []
    root = True
    lines = page_lines(ink)
    while todo:
        poly = todo.pop()
        m = raster(poly, (H, W)) & content
        if m.sum() < 0.05 * min_area:
            continue
        trim = TRIM if root else 0.0  # stray marks beside the panels: only at the page level
        root = False
        bx0, bx1 = _trimmed_extent(m.sum(axis=0), trim)
        by0, by1 = _trimmed_extent(m.sum(axis=1), trim)
        poly = clip_box(poly, bx0 - 0.5, by0 - 0.5, bx1 + 0.5, by1 + 0.5)
        if len(poly) < 3 or abs(cv2.contourArea(poly.astype(np.float32))) < min_area:
            continue
        if min(np.ptp(poly, axis=0)) < MIN_SIDE * max(H, W):
            continue  # a strip (a footnote, a page number), not a panel
        cut = find_cut(poly, white, ink, content, lines, min_area) if len(out) + len(todo) < MAX_PANELS else None
        if cut is None:
            out.append(poly)
            continue
        for p, q, inside in cut[1:]:
            part = clip(poly, p, q, inside)
            if len(part) >= 3:
                todo.append(part)
    if not out and content.any():  # frameless art: one panel over all of it
        xs, ys = content.any(axis=0), content.any(axis=1)
        bx0, bx1 = _trimmed_extent(xs.astype(np.int64) * content.sum(axis=0), TRIM)
        by0, by1 = _trimmed_extent(ys.astype(np.int64) * content.sum(axis=1), TRIM)
        out.append(np.array([[bx0 - 0.5, by0 - 0.5], [bx1 + 0.5, by0 - 0.5], [bx1 + 0.5, by1 + 0.5], [bx0 - 0.5, by1 + 0.5]]))
    return out


def insets(m: np.ndarray, white: np.ndarray) -> list[np.ndarray]:
    """Inset panels inside panel mask m: regions enclosed by a thin ring of white paper."""
    page_area, panel_area = m.size, float(m.sum())
    r = max(1, round(CLOSE_GAP * max(m.shape)))
    w = cv2.erode((white & m).astype(np.uint8), _disk(r))
    contours, hier = cv2.findContours(w, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    if hier is None:
        return out
    for i, h in enumerate(hier[0]):
        if h[3] < 0:  # outer contour of a white region: look at its holes
            continue
        hole = contours[i]
        area = cv2.contourArea(hole)
        if area < INSET_MIN * page_area or area > INSET_MAX * panel_area:
            continue
        (_, (rw, rh), _) = cv2.minAreaRect(hole)
        if area < INSET_RECT * rw * rh:
            continue
        parent = h[3]
        ring = cv2.contourArea(contours[parent]) - area
        if ring > INSET_RING * area:
            continue
        inner = np.zeros(m.shape, np.uint8)
        cv2.drawContours(inner, [hole], -1, 1, -1)
        inner = inner.astype(bool)
        if (~white[inner]).mean() < INSET_INK:
            continue
        out.append(cv2.dilate(inner.astype(np.uint8), _disk(r)).astype(bool) & m)
    return out
