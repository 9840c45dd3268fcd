"""Where on a page: rectangles in document coordinates, the area a run colorizes, and the Target a result
belongs to. Pure: no Qt, no Krita."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from .errors import UserError


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    @property
    def empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    @property
    def area(self) -> int:
        return 0 if self.empty else self.width * self.height

    def intersected(self, other: "Rect") -> "Rect":
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1 = min(self.x + self.width, other.x + other.width)
        y1 = min(self.y + self.height, other.y + other.height)
        return Rect(x0, y0, max(0, x1 - x0), max(0, y1 - y0))

    @classmethod
    def of(cls, qrect: Any) -> "Rect":
        return cls(int(qrect.x()), int(qrect.y()), int(qrect.width()), int(qrect.height()))


def work_region(doc_w: int, doc_h: int, selection_box: Optional[Rect]) -> Rect:
    """The area to colorize: the selection's bounding box clipped to the canvas, or the whole canvas."""
    canvas = Rect(0, 0, doc_w, doc_h)
    if canvas.empty:
        raise UserError("The document is empty (zero size): nothing to colorize.")
    if selection_box is None:
        return canvas
    region = selection_box.intersected(canvas)
    if region.empty:
        raise UserError(
            "The selection is empty or lies outside the canvas. Select the area to colorize, "
            "or deselect all (Select > Deselect) to colorize the whole page."
        )
    return region


@dataclass
class Target:
    """Where a result belongs: enough to put it into the document later (also from the history)."""

    document: Any
    ink_id: Any
    ink_name: str
    region: Rect
    doc_size: tuple[int, int]
    doc_format: tuple[str, str]
    mask: Optional[bytes] = None  # 8-bit selection over region; None = all of region

    @property
    def full_page(self) -> bool:
        return self.mask is None and self.region.area == self.doc_size[0] * self.doc_size[1]

    @property
    def result_format(self) -> tuple[str, str]:
        """The result layer is RGB/Alpha at the document's depth (grayscale documents included)."""
        return "RGBA", self.doc_format[1]
