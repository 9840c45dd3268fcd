"""Krita's vector layers for the mock krita module: VectorLayer.addShapesFromSvg / shapes() and Shape.toSvg().

Like Krita (checked in 5.1.5 and 5.2.9): SVG user units are points (1/72 inch) whatever the document's
resolution; each <path> becomes one shape named by its id; toSvg() writes the shape with its position as a
transform and its outline relative to it (so a reader must apply the transform). Only what the plugin uses.
"""

from __future__ import annotations

import re
from typing import Any

_PATH = re.compile(r"<path\b([^>]*)/?>", re.S)
_ATTR = re.compile(r'([\w:-]+)="([^"]*)"')
_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class Shape:
    def __init__(self, layer_data: Any, name: str, points: list[tuple[float, float]]):
        self._layer = layer_data
        self._name = name
        self.points = points  # absolute, in points

    def name(self) -> str:
        return self._name

    def setName(self, name: str) -> None:
        self._name = name

    def type(self) -> str:
        return "KoPathShape"

    def boundingBox(self):
        from krita_mangacolor.qt import QtCore

        xs, ys = [p[0] for p in self.points], [p[1] for p in self.points]
        return QtCore.QRectF(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))

    def toSvg(self, prepend_self: bool = True, strip: bool = False) -> str:
        x0 = min(p[0] for p in self.points)
        y0 = min(p[1] for p in self.points)
        d = "M" + "L".join(f"{x - x0:g} {y - y0:g}" for x, y in self.points) + "Z"
        return (
            f'<path id="{self._name}" transform="translate({x0:g}, {y0:g})" fill="none" stroke="#ff3030" '
            f'stroke-width="0.48" stroke-linecap="square" stroke-linejoin="miter" d="{d}"/>\n'
        )

    def remove(self) -> bool:
        self._layer.shapes.remove(self)
        return True


def add_shapes_from_svg(layer_data: Any, svg: str) -> list[Shape]:
    added = []
    for m in _PATH.finditer(svg):
        attrs = dict(_ATTR.findall(m.group(1)))
        nums = [float(v) for v in _NUM.findall(attrs.get("d", ""))]
        pts = list(zip(nums[0::2], nums[1::2]))
        shape = Shape(layer_data, attrs.get("id") or f"shape{len(layer_data.shapes)}", pts)
        layer_data.shapes.append(shape)
        added.append(shape)
    layer_data.doc.log.append(("addShapesFromSvg", layer_data.name))
    return added
