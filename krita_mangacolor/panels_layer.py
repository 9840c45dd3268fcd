"""The page's panels as a Krita vector layer named `Panels`: one closed path per panel, which the colorist
corrects with Krita's own shape tools (move points, draw a missing panel, delete a wrong one).

Writing: `write_panels` puts the backend's polygons (page pixels) into the layer with addShapesFromSvg, one
`<path id="Panel N" d="M ... L ... Z">` each. Krita's vector layers work in points (1/72 inch): SVG user
units are read as points, so a pixel coordinate is written as px * 72 / dpi (the document's resolution).
Reading: `read_panels` takes every shape of the layer, parses its `toSvg()` (the path's d, its transform
and any group transform; curves are followed through their end points, arcs too) and converts the points
back to pixels, so a polygon read back is the one written within a pixel (checked in Krita 5.1.5 and 5.2.9).
`panel_at` says which panel holds a point (the docker picks the panel a selection is in).

The SVG parsing is pure Python (no Qt), tested against Krita's real output in tests/plugin.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Optional

PANELS_LAYER_NAME = "Panels"
PANEL_NAME = "Panel {}"
STROKE = "#ff3030"
POINTS_PER_INCH = 72.0

Point = tuple[float, float]


@dataclass(frozen=True)
class Panel:
    name: str  # the shape's name ("Panel 1"...): the key of the panel's choice in the document
    polygon: tuple[tuple[int, int], ...]  # page pixels, >= 3 points, in drawing order

    @property
    def box(self) -> tuple[int, int, int, int]:
        xs = [p[0] for p in self.polygon]
        ys = [p[1] for p in self.polygon]
        return min(xs), min(ys), max(xs), max(ys)

    def contains(self, x: float, y: float) -> bool:
        return point_in_polygon(x, y, self.polygon)


def point_in_polygon(x: float, y: float, polygon: Iterable[Point]) -> bool:
    """Even-odd rule (a point on an edge may go either way)."""
    pts = list(polygon)
    inside = False
    j = len(pts) - 1
    for i in range(len(pts)):
        xi, yi = pts[i]
        xj, yj = pts[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / ((yj - yi) or 1e-12) + xi:
            inside = not inside
        j = i
    return inside


def panel_at(panels: list[Panel], x: float, y: float) -> Optional[Panel]:
    """The panel holding the point; when panels overlap, the smallest one."""
    hits = [p for p in panels if p.contains(x, y)]
    if not hits:
        return None
    return min(hits, key=lambda p: abs(polygon_area(p.polygon)))


def clip_to_box(polygon: Iterable[Point], width: float, height: float) -> list[Point]:
    """The polygon cut to the rectangle [0, width] x [0, height] (Sutherland-Hodgman; convex clip region),
    so a panel drawn past the canvas, or only partly inside a selection, stays on the page sent."""
    pts = list(polygon)
    for axis, limit, keep_below in ((0, 0.0, False), (0, float(width), True), (1, 0.0, False), (1, float(height), True)):
        if not pts:
            break
        inside = (lambda p: p[axis] <= limit) if keep_below else (lambda p: p[axis] >= limit)
        out: list[Point] = []
        for i, cur in enumerate(pts):
            prev = pts[i - 1]
            if inside(cur) != inside(prev):
                t = (limit - prev[axis]) / ((cur[axis] - prev[axis]) or 1e-12)
                cross = (prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1]))
                out.append((limit, cross[1]) if axis == 0 else (cross[0], limit))
            if inside(cur):
                out.append(cur)
        pts = out
    return pts


def polygon_area(polygon: Iterable[Point]) -> float:
    pts = list(polygon)
    return 0.5 * sum(pts[i - 1][0] * pts[i][1] - pts[i][0] * pts[i - 1][1] for i in range(len(pts)))


# --- pixels <-> SVG ------------------------------------------------------------------------------------


def _num(v: float) -> str:
    text = f"{v:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def panels_svg(polygons: list[list[Point]], width: int, height: int, dpi: float) -> str:
    """An SVG document (in points) with one closed path per polygon (page pixels), named 'Panel 1'..."""
    s = POINTS_PER_INCH / (dpi or POINTS_PER_INCH)
    w, h = width * s, height * s
    paths = []
    for i, poly in enumerate(polygons):
        d = "M " + " L ".join(f"{_num(x * s)} {_num(y * s)}" for x, y in poly) + " Z"
        paths.append(
            f'<path id="{PANEL_NAME.format(i + 1)}" d="{d}" fill="none" stroke="{STROKE}" '
            f'stroke-width="{_num(2 * s)}" stroke-linejoin="miter"/>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(w)}pt" height="{_num(h)}pt" '
        f'viewBox="0 0 {_num(w)} {_num(h)}">' + "".join(paths) + "</svg>"
    )


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TOKEN = re.compile(rf"([MmLlHhVvCcSsQqTtAaZz])|({_NUMBER})")
_TRANSFORM = re.compile(r"(matrix|translate|scale|rotate|skewX|skewY)\s*\(([^)]*)\)")
_ELEMENT = re.compile(r"<(path|g|/g)\b([^>]*?)(/?)>", re.S)
_ATTR = re.compile(r'([\w:-]+)\s*=\s*("([^"]*)"|\'([^\']*)\')', re.S)
_ARGS = {"M": 2, "L": 2, "H": 1, "V": 1, "C": 6, "S": 4, "Q": 4, "T": 2, "A": 7, "Z": 0}

Matrix = tuple[float, float, float, float, float, float]  # a b c d e f: x' = a x + c y + e, y' = b x + d y + f
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def multiply(m: Matrix, n: Matrix) -> Matrix:
    """m then... no: the SVG product m * n (n applied first, then m)."""
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (a * a2 + c * b2, b * a2 + d * b2, a * c2 + c * d2, b * c2 + d * d2, a * e2 + c * f2 + e, b * e2 + d * f2 + f)


def apply(m: Matrix, x: float, y: float) -> Point:
    a, b, c, d, e, f = m
    return a * x + c * y + e, b * x + d * y + f


def parse_transform(text: str) -> Matrix:
    """An SVG transform attribute -> one matrix (the list's transforms applied right to left)."""
    m = IDENTITY
    for kind, args in _TRANSFORM.findall(text or ""):
        v = [float(a) for a in re.findall(_NUMBER, args)]
        if kind == "matrix" and len(v) == 6:
            t = tuple(v)
        elif kind == "translate" and v:
            t = (1.0, 0.0, 0.0, 1.0, v[0], v[1] if len(v) > 1 else 0.0)
        elif kind == "scale" and v:
            t = (v[0], 0.0, 0.0, v[1] if len(v) > 1 else v[0], 0.0, 0.0)
        elif kind == "rotate" and v:
            r = math.radians(v[0])
            t = (math.cos(r), math.sin(r), -math.sin(r), math.cos(r), 0.0, 0.0)
            if len(v) == 3:
                t = multiply(multiply((1, 0, 0, 1, v[1], v[2]), t), (1, 0, 0, 1, -v[1], -v[2]))
        elif kind == "skewX" and v:
            t = (1.0, 0.0, math.tan(math.radians(v[0])), 1.0, 0.0, 0.0)
        elif kind == "skewY" and v:
            t = (1.0, math.tan(math.radians(v[0])), 0.0, 1.0, 0.0, 0.0)
        else:
            continue
        m = multiply(m, t)  # type: ignore[arg-type]
    return m


def parse_path(d: str) -> list[list[Point]]:
    """An SVG path's d -> its subpaths as point lists (end points of every segment; curves by their ends)."""
    subpaths: list[list[Point]] = []
    cur: list[Point] = []
    x = y = sx = sy = 0.0
    cmd = ""
    nums: list[float] = []

    def flush_segment(c: str, args: list[float]) -> None:
        nonlocal x, y, sx, sy, cur
        rel = c.islower()
        C = c.upper()
        if C == "M":
            if len(cur) > 1:
                subpaths.append(cur)
            x, y = (x + args[0], y + args[1]) if rel else (args[0], args[1])
            sx, sy = x, y
            cur = [(x, y)]
            return
        if C == "H":
            x = x + args[0] if rel else args[0]
        elif C == "V":
            y = y + args[0] if rel else args[0]
        else:
            ex, ey = args[-2], args[-1]
            x, y = (x + ex, y + ey) if rel else (ex, ey)
        if not cur:
            cur = [(sx, sy)]
        cur.append((x, y))

    for m in _TOKEN.finditer(d or ""):
        if m.group(1):
            c = m.group(1)
            if c in "Zz":
                if len(cur) > 1:
                    subpaths.append(cur)
                cur = []
                x, y = sx, sy
                cmd = ""
                continue
            cmd, nums = c, []
            continue
        if not cmd:
            continue
        nums.append(float(m.group(2)))
        n = _ARGS[cmd.upper()]
        if len(nums) == n:
            flush_segment(cmd, nums)
            nums = []
            if cmd in "Mm":  # further pairs after a moveto are linetos
                cmd = "l" if cmd == "m" else "L"
    if len(cur) > 1:
        subpaths.append(cur)
    return subpaths


def svg_polygons(svg: str) -> list[list[Point]]:
    """Every path's outline in an SVG fragment (Krita's Shape.toSvg()), with path and group transforms."""
    out: list[list[Point]] = []
    stack: list[Matrix] = [IDENTITY]
    for el in _ELEMENT.finditer(svg or ""):
        tag, attrs_text, closed = el.group(1), el.group(2), el.group(3)
        if tag == "/g":
            if len(stack) > 1:
                stack.pop()
            continue
        attrs = {k: (v1 if v1 is not None and v1 != "" or v2 is None else v2) for k, _, v1, v2 in _ATTR.findall(attrs_text)}
        m = multiply(stack[-1], parse_transform(attrs.get("transform", "")))
        if tag == "g":
            if not closed:
                stack.append(m)
            continue
        for sub in parse_path(attrs.get("d", "")):
            pts = [apply(m, px, py) for px, py in sub]
            if len(pts) > 1 and abs(pts[0][0] - pts[-1][0]) < 1e-6 and abs(pts[0][1] - pts[-1][1]) < 1e-6:
                pts = pts[:-1]
            if len(pts) >= 3:
                out.append(pts)
    return out


def points_to_pixels(points: list[Point], dpi: float) -> tuple[tuple[int, int], ...]:
    s = (dpi or POINTS_PER_INCH) / POINTS_PER_INCH
    return tuple((int(round(x * s)), int(round(y * s))) for x, y in points)


# --- the layer in a Krita document ---------------------------------------------------------------------


def document_dpi(doc: Any) -> float:
    for getter in ("xRes", "resolution"):
        try:
            v = float(getattr(doc, getter)())
            if v > 0:
                return v
        except Exception:
            continue
    return POINTS_PER_INCH


def find_panels_layer(doc: Any) -> Optional[Any]:
    """The top-most vector layer named 'Panels' (None: the document has no panel layer)."""
    from .layers import iter_nodes

    for node in iter_nodes(doc.rootNode()):
        if node.name() == PANELS_LAYER_NAME and node.type() == "vectorlayer":
            return node
    return None


def write_panels(doc: Any, polygons: list[list[Point]]) -> Any:
    """Replace the Panels layer (or create it on top) with one closed shape per polygon (page pixels)."""
    old = find_panels_layer(doc)
    layer = doc.createVectorLayer(PANELS_LAYER_NAME)
    root = doc.rootNode()
    if old is not None:
        parent = old.parentNode() or root
        parent.addChildNode(layer, old)
        old.remove()
    else:
        root.addChildNode(layer, None)
    if polygons:
        layer.addShapesFromSvg(panels_svg(polygons, int(doc.width()), int(doc.height()), document_dpi(doc)))
    return layer


def read_panels(doc: Any) -> list[Panel]:
    """The panels of the document's Panels layer, in the layer's order; [] without a layer. A shape that is
    not a closed outline of >= 3 points is left out; a shape with several outlines gives one panel each."""
    layer = find_panels_layer(doc) if doc is not None else None
    if layer is None or not hasattr(layer, "shapes"):
        return []
    dpi = document_dpi(doc)
    panels: list[Panel] = []
    used: set[str] = set()
    for i, shape in enumerate(layer.shapes()):
        try:
            polys = svg_polygons(shape.toSvg())
            name = str(shape.name() or "") or PANEL_NAME.format(i + 1)
        except Exception:
            continue
        for j, poly in enumerate(polys):
            key = name if j == 0 else f"{name} ({j + 1})"
            while key in used:
                key += "'"
            used.add(key)
            panels.append(Panel(key, points_to_pixels(poly, dpi)))
    return panels
