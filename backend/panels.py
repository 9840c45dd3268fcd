"""Panel detection on a manga page: polygons and boxes in reading order.

    detect_panels(page, order="rtl") -> list[Panel]
    panels_to_json(panels, shape) / panels_from_json(text, shape=None) -> (panels, (h, w))
    panel_masks(panels, shape) -> int32 label map (0 = no panel, i + 1 = panel i; insets win)
    python -m backend panels PAGE [--json] [--order rtl|ltr]   (add_cli / run_cli)

Method (details and thresholds in backend/panels_split.py): the page, trimmed to its content, is
cut recursively along gutters: straight bands of paper across the region, level or slanted (at the
angles of the long frame lines found by a Hough transform), with a frame line beside them, content on
both sides and open ends. What is left are the panels, each a convex polygon (4 corners for a
rectangle or a slanted quadrilateral) trimmed to its content; a panel that bleeds off the page runs
to the page edge. A panel drawn inside another with its own white ring is reported as well (an
inset, flagged; the outer one keeps its polygon). A page with no panel (frameless art) gives one
panel over its content; a blank page gives none. Reading order: recursive XY-cut on the boxes.

Limits: two panels separated by a single line (no paper between them) or by a gutter under about
0.2 % of the page's long side stay one panel; an inset without its own white ring is not found.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import cv2
import numpy as np

from . import panels_split as ps

ORDERS = ("rtl", "ltr")
SIMPLIFY = 0.005  # polygon simplification, fraction of the perimeter
EDGE_SNAP = 0.01  # polygon corners this close to the page edge (fraction of the side) go onto it
QUAD_EPS = 0.04  # approxPolyDP tolerance, fraction of the hull's perimeter


class PanelsError(ValueError):
    """A panels file or argument that cannot be used; str() is the message for the user."""


@dataclass
class Panel:
    polygon: list[tuple[int, int]]
    box: tuple[int, int, int, int] = field(default=(0, 0, 0, 0))  # x0, y0, x1, y1 (x1, y1 exclusive)
    inset: bool = False

    def __post_init__(self) -> None:
        self.polygon = [(int(x), int(y)) for x, y in self.polygon]
        xs = [p[0] for p in self.polygon]
        ys = [p[1] for p in self.polygon]
        self.box = (min(xs), min(ys), max(xs), max(ys))

    def to_json(self) -> dict:
        d = {"polygon": [list(p) for p in self.polygon], "box": list(self.box)}
        if self.inset:
            d["inset"] = True
        return d


def _polygon(poly: np.ndarray, s: float, shape: tuple[int, int]) -> list[tuple[int, int]]:
    """Working-grid polygon (pixel-centre coordinates) -> page pixels, corners near the edge on it."""
    h, w = shape
    poly = np.asarray(poly, np.float32).reshape(-1, 1, 2)
    poly = cv2.approxPolyDP(poly, SIMPLIFY * cv2.arcLength(poly, True), True).reshape(-1, 2)
    out: list[tuple[int, int]] = []
    for x, y in poly.astype(float):
        X, Y = (x + 0.5) / s, (y + 0.5) / s
        X = 0 if X < EDGE_SNAP * w else (w if X > (1 - EDGE_SNAP) * w else min(max(X, 0), w))
        Y = 0 if Y < EDGE_SNAP * h else (h if Y > (1 - EDGE_SNAP) * h else min(max(Y, 0), h))
        pt = (int(round(X)), int(round(Y)))
        if not out or pt != out[-1]:
            out.append(pt)
    return out


def _mask_polygon(m: np.ndarray) -> np.ndarray:
    cs, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(max(cs, key=cv2.contourArea))
    quad = cv2.approxPolyDP(hull, QUAD_EPS * cv2.arcLength(hull, True), True)
    return (quad if len(quad) == 4 else hull).reshape(-1, 2).astype(float)


def detect_panels(page: np.ndarray, order: str = "rtl") -> list[Panel]:
    """Panels of a gray page (HxW uint8 0..255 or float 0..1), in reading order."""
    if order not in ORDERS:
        raise PanelsError(f"order must be one of {ORDERS}, got {order!r}")
    H, W = np.shape(page)[:2]
    g, s = ps.work_image(page)
    white, ink = ps.paper_and_ink(g)
    content = ps.content_map(white)
    min_area = ps.MIN_PANEL * g.size
    regions = ps.segment(white, ink, content, min_area)
    panels = [Panel(_polygon(r, s, (H, W))) for r in regions]
    for r in regions:
        for inner in ps.insets(ps.raster(r, g.shape), white):
            panels.append(Panel(_polygon(_mask_polygon(inner), s, (H, W)), inset=True))
    return reading_order(panels, order)


def reading_order(panels: list[Panel], order: str = "rtl") -> list[Panel]:
    """Recursive XY-cut on the boxes: bands top to bottom, columns right to left (rtl) or left to right."""
    if order not in ORDERS:
        raise PanelsError(f"order must be one of {ORDERS}, got {order!r}")
    if len(panels) <= 1:
        return list(panels)
    boxes = [p.box for p in panels]
    span = max(max(b[2] for b in boxes) - min(b[0] for b in boxes), max(b[3] for b in boxes) - min(b[1] for b in boxes))
    tol = 0.03 * span  # slanted gutters: boxes of neighbours overlap a little

    def groups(axis: int) -> list[list[int]]:
        idx = sorted(range(len(panels)), key=lambda i: boxes[i][axis])
        out, end = [], None
        for i in idx:
            lo, hi = boxes[i][axis], boxes[i][axis + 2]
            if end is not None and lo < end - tol:
                out[-1].append(i)
                end = max(end, hi)
            else:
                out.append([i])
                end = hi
        return out

    rows = groups(1)
    if len(rows) > 1:
        return [p for r in rows for p in reading_order([panels[i] for i in r], order)]
    cols = groups(0)
    if len(cols) > 1:
        if order == "rtl":
            cols = cols[::-1]
        return [p for c in cols for p in reading_order([panels[i] for i in c], order)]
    # nothing separates them (an inset inside its panel): outer first, then top to bottom
    return sorted(panels, key=lambda p: (p.inset, p.box[1], -p.box[2] if order == "rtl" else p.box[0]))


def panels_to_json(panels: list[Panel], shape: tuple[int, int], order: str | None = None) -> str:
    h, w = shape[:2]
    d = {"width": int(w), "height": int(h), "panels": [p.to_json() for p in panels]}
    if order:
        d["order"] = order
    return json.dumps(d, indent=1)


def panels_from_json(text: str | bytes, shape: tuple[int, int] | None = None) -> tuple[list[Panel], tuple[int, int]]:
    """Parse and check a panels file (as written by panels_to_json, possibly edited by a user).

    Returns the panels (in the file's order) and the page shape (h, w). With `shape`, the file's
    width/height must match it. Raises PanelsError with a message for the user on anything wrong.
    """
    try:
        d = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise PanelsError(f"panels file is not valid JSON: {e}") from None
    if not isinstance(d, dict):
        raise PanelsError("panels file must be a JSON object with width, height and panels")
    for k in ("width", "height"):
        v = d.get(k)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise PanelsError(f"panels file: {k!r} must be a positive integer, got {v!r}")
    w, h = d["width"], d["height"]
    if shape is not None and (h, w) != tuple(shape[:2]):
        raise PanelsError(f"panels file is for a {w}x{h} page, but the page is {shape[1]}x{shape[0]}")
    items = d.get("panels")
    if not isinstance(items, list):
        raise PanelsError("panels file: 'panels' must be a list")
    out = []
    for i, it in enumerate(items):
        where = f"panels file: panel {i + 1}"
        poly = it.get("polygon") if isinstance(it, dict) else it
        if not isinstance(poly, list):
            raise PanelsError(f"{where}: needs a 'polygon' list of [x, y] points")
        if len(poly) < 3:
            raise PanelsError(f"{where}: a polygon needs at least 3 points, got {len(poly)}")
        pts = []
        for p in poly:
            if not (isinstance(p, list) and len(p) == 2 and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in p)):
                raise PanelsError(f"{where}: each point must be [x, y] numbers, got {p!r}")
            x, y = p
            if not (np.isfinite(x) and np.isfinite(y)) or not (0 <= x <= w and 0 <= y <= h):
                raise PanelsError(f"{where}: point {p!r} is outside the {w}x{h} page")
            pts.append((int(round(x)), int(round(y))))
        if abs(cv2.contourArea(np.array(pts, np.float32))) < 1:
            raise PanelsError(f"{where}: the polygon has no area")
        inset = it.get("inset", False) if isinstance(it, dict) else False
        out.append(Panel(pts, inset=bool(inset)))
    return out, (h, w)


def panel_masks(panels: list[Panel], shape: tuple[int, int]) -> np.ndarray:
    """int32 label map: 0 = no panel, i + 1 = panel i. Where panels overlap, the smaller one (an inset) wins."""
    h, w = shape[:2]
    lab = np.zeros((h, w), np.int32)
    areas = [abs(cv2.contourArea(np.array(p.polygon, np.float32))) for p in panels]
    for i in sorted(range(len(panels)), key=lambda i: -areas[i]):
        cv2.fillPoly(lab, [np.array(panels[i].polygon, np.int32)], int(i + 1))
    return lab


def add_cli(subparsers) -> None:  # type: ignore[no-untyped-def]
    """Add `panels PAGE [--json] [--order rtl|ltr]` to an argparse subparsers object."""
    p = subparsers.add_parser("panels", help="detect the panels of a page", description="Detect the panels of a manga page, in reading order.")
    p.add_argument("page", help="the page image (any format the colorizer reads)")
    p.add_argument("--json", action="store_true", help="print the panels file (JSON) instead of a table")
    p.add_argument("--order", choices=ORDERS, default="rtl", help="reading order: rtl (manga, default) or ltr")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:  # type: ignore[no-untyped-def]
    import sys

    from .imageio import ImageError, load_ink

    try:
        page = load_ink(args.page, "page")
    except (ImageError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    panels = detect_panels(page, order=args.order)
    if args.json:
        print(panels_to_json(panels, page.shape, order=args.order))
        return 0
    print(f"{len(panels)} panels ({args.order}) on a {page.shape[1]}x{page.shape[0]} page")
    for i, p in enumerate(panels, 1):
        x0, y0, x1, y1 = p.box
        kind = " inset" if p.inset else ""
        print(f"{i:3d}  box {x0},{y0}-{x1},{y1}  {len(p.polygon)} corners{kind}")
    return 0
