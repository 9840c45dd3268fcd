"""What a Colorize sends besides the ink, hints and reference layer (issue 12), read with the page:

  * several references: the visible child layers of a group named `References`, each sent as a reference
    with its layer opacity as its weight (100 % = 1, 50 % = 0.5: the Layers docker's own slider, saved in
    the .kra, no new control; hidden or 0 % children are not sent). The reference layer picked in the docker
    (if any) comes first with its own opacity as weight;
  * the page's palettes (panel_choices.page_palettes, taken from the document's palette library);
  * the panels of the `Panels` vector layer (panels_layer.py), each with the reference layer or palette
    chosen for it in the docker (panel_choices.py).
A document without a Panels layer, palettes or a References group sends exactly what it sent before.

read_extras runs on the GUI thread (Krita calls only); encode_extras in the worker thread (Qt + bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from . import imaging, page_reader, palette_library, panel_choices, pixels
from .geometry import Rect
from .layers import MASK_TYPES, NO_PIXEL_TYPES, Layer, find_by_uid_text, find_named, same_node
from .panels_layer import Panel, clip_to_box, polygon_area, read_panels
from .qt import qbytes

REFERENCES_GROUP = "References"


@dataclass
class RawPanel:
    panel: Panel
    references: list[Any] = field(default_factory=list)  # page_reader.RawLayer
    palettes: list[dict] = field(default_factory=list)


@dataclass
class RawExtras:
    region: Rect
    reference_weight: float = 1.0  # of the single reference layer read by page_reader
    references: list[tuple[Any, float]] = field(default_factory=list)  # (RawLayer, weight) of the group
    palettes: list[dict] = field(default_factory=list)
    panels: list[RawPanel] = field(default_factory=list)
    has_panel_layer: bool = False

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r, _ in self.references) + sum(r.nbytes for p in self.panels for r in p.references)


def opacity_weight(node: Any) -> float:
    try:
        return max(0.0, min(1.0, float(node.opacity()) / 255.0))
    except Exception:
        return 1.0


def _read_reference(node: Any, doc: Any, what: str, notes: list[str]) -> Optional[Any]:
    bounds = Rect.of(node.bounds()).intersected(Rect(0, 0, int(doc.width()), int(doc.height())))
    if bounds.empty:
        notes.append(f"{what} '{node.name()}' is empty: ignored")
        return None
    return page_reader.read_raw(Layer(node), bounds, f"The {what} '{node.name()}'")


def group_references(doc: Any, exclude: Any = None) -> list[Any]:
    """The visible paint (or other pixel) layers directly inside the `References` group, top-most first."""
    group = find_named(doc, REFERENCES_GROUP)
    if group is None or group.type() != "grouplayer" or same_node(group, exclude):
        return []
    kids = [n for n in reversed(list(group.childNodes())) if n.type() not in MASK_TYPES + NO_PIXEL_TYPES + ("grouplayer",)]
    return [n for n in kids if n.visible() and opacity_weight(n) > 0]


def read_extras(doc: Any, reference: Any, region: Rect, notes: list[str]) -> Optional[RawExtras]:
    """reference: the Layer page_reader reads as the reference (or None). None when there is nothing extra."""
    extras = RawExtras(region)
    ref_node = reference.node if reference is not None else None
    if ref_node is not None:
        extras.reference_weight = opacity_weight(ref_node) or 1.0
    for node in group_references(doc, exclude=ref_node):
        if same_node(node, ref_node):
            continue
        raw = _read_reference(node, doc, "reference layer", notes)
        if raw is not None:
            extras.references.append((raw, opacity_weight(node)))

    choices = panel_choices.load(doc)
    library = {p["name"]: p for p in palette_library.load(doc)}
    for name in choices.page_palettes:
        if name in library:
            extras.palettes.append(library[name])
        else:
            notes.append(f"the palette '{name}' applied to the page is not in the document's library: not used")

    panels = read_panels(doc)
    extras.has_panel_layer = bool(panels)
    x0, y0, x1, y1 = region.x, region.y, region.x + region.width, region.y + region.height
    for panel in panels:
        bx0, by0, bx1, by1 = panel.box
        if bx1 <= x0 or by1 <= y0 or bx0 >= x1 or by0 >= y1:
            continue  # outside the selection: not part of this run
        rp = RawPanel(panel)
        choice = choices.of(panel.name)
        if choice.kind == panel_choices.REFERENCE:
            node = find_by_uid_text(doc, choice.uid) or find_named(doc, choice.name)
            if node is None:
                notes.append(f"the reference layer '{choice.name}' chosen for {panel.name} is gone: the page's colours are used")
            else:
                raw = _read_reference(node, doc, "reference layer", notes)
                if raw is not None:
                    rp.references.append(raw)
        elif choice.kind == panel_choices.PALETTE:
            if choice.name in library:
                rp.palettes.append(library[choice.name])
            else:
                notes.append(f"the palette '{choice.name}' chosen for {panel.name} is not in the library: the page's colours are used")
        extras.panels.append(rp)
    if not (extras.references or extras.palettes or extras.panels or extras.reference_weight != 1.0):
        return None
    return extras


def _reference_png(raw: Any) -> Optional[str]:
    data = qbytes(raw.data)
    raw.data = b""
    bgra = pixels.to_bgra8(data, raw.model, raw.depth, raw.rect.area)
    if not pixels.has_content(bgra):
        return None
    img = imaging.on_white(imaging.wrap_bgra8(bgra, raw.rect.width, raw.rect.height))
    return imaging.encode_png_b64(img)


def encode_extras(extras: Optional[RawExtras], request: Any, notes: list[str]) -> list[str]:
    """Put the extras into the request (worker thread). Returns the names of the references sent."""
    if extras is None:
        return []
    sent = []
    weights = [extras.reference_weight] * len(request.references)
    for raw, weight in extras.references:
        png = _reference_png(raw)
        if png is None:
            notes.append(f"the reference layer '{raw.name}' is empty: ignored")
            continue
        request.references.append(png)
        weights.append(weight)
        sent.append(raw.name)
    if request.references:
        request.reference_weights = weights
    request.palettes = list(extras.palettes)
    if extras.panels:
        ox, oy = extras.region.x, extras.region.y
        panels = []
        for rp in extras.panels:
            shifted = [(x - ox, y - oy) for x, y in rp.panel.polygon]
            clipped = clip_to_box(shifted, extras.region.width, extras.region.height)
            if len(clipped) < 3 or abs(polygon_area(clipped)) < 1.0:
                continue
            item: dict = {"polygon": [[round(x, 2), round(y, 2)] for x, y in clipped]}
            refs = [png for png in (_reference_png(r) for r in rp.references) if png]
            if refs:
                item["references"] = refs
            if rp.palettes:
                item["palettes"] = list(rp.palettes)
            panels.append(item)
        if panels:
            request.panels = panels
    return sent
