"""Everything that touches a Krita document: find the layers, read pixels, write the result layer.

The user's layers are sacred. This module only ever
  * reads the ink, hint and reference layers and the selection,
  * adds the plugin's own result layer (named "MangaColor") directly beneath the ink, or replaces the
    previous one in place (the new layer is added first, then the old one removed: both undoable),
  * sets the ink layer's blending mode to Multiply (its pixels are never written).

Krita's scripting API cannot insert a layer below the lowest child of a group (addChildNode(x, None)
puts x on top). When the ink is that lowest layer (a scanned page opened as a single layer is the usual
case), the result is added above the ink and the very same ink node is then moved back above it
(removed and re-added: same node, pixels, name, properties and uniqueId).

Decisions that need no Krita (placement, regions, messages) are pure functions, tested in tests/plugin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from . import imaging, pixels
from .config import DEFAULT_HINT_LAYER, DEFAULT_REFERENCE_LAYER, RESULT_LAYER_NAME
from .errors import UserError

RESULT_PROFILE = "sRGB-elle-V2-srgbtrc.icc"  # Krita's built-in sRGB, used when the result needs RGB
MASK_TYPES = ("transparencymask", "filtermask", "transformmask", "selectionmask", "colorizemask")
NO_PIXEL_TYPES = ("filterlayer",)  # holds no pixels of its own: its projection is the filtered stack
TYPE_NAMES = {
    "paintlayer": "a paint layer",
    "grouplayer": "a group layer",
    "vectorlayer": "a vector layer",
    "filelayer": "a file layer",
    "filllayer": "a fill layer",
    "clonelayer": "a clone layer",
    "filterlayer": "a filter layer",
    "transparencymask": "a transparency mask",
    "filtermask": "a filter mask",
    "transformmask": "a transform mask",
    "selectionmask": "a selection mask",
    "colorizemask": "a colorize mask",
}


def type_name(node_type: str) -> str:
    return TYPE_NAMES.get(node_type, f"a node of type '{node_type or 'unknown'}'")


# --- pure geometry -------------------------------------------------------------------------------


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


# --- pure placement ------------------------------------------------------------------------------


def is_own_layer(name: str, node_type: str) -> bool:
    return name == RESULT_LAYER_NAME and node_type == "paintlayer"


@dataclass(frozen=True)
class Placement:
    """How to put the result directly beneath the ink. Indices are in childNodes() order (bottom first).

    replace: add the new layer directly above `index` (the old result, directly beneath the ink), then
             remove the old one.
    above:   add the new layer directly above `index` (the layer directly beneath the ink).
    restack: the ink is its group's lowest child: add the new layer above the ink, then move the ink
             node back on top of it.
    """

    kind: str
    index: Optional[int] = None


def plan_placement(siblings: list[tuple[str, str]], ink_index: int) -> Placement:
    """siblings: (name, type) of the ink's parent's children, bottom first; ink_index: the ink's index."""
    if not 0 <= ink_index < len(siblings):
        raise ValueError("the ink is not among its parent's children")
    if ink_index == 0:
        return Placement("restack")
    below_name, below_type = siblings[ink_index - 1]
    if is_own_layer(below_name, below_type):
        return Placement("replace", ink_index - 1)
    return Placement("above", ink_index - 1)


# --- walking the layer tree -----------------------------------------------------------------------


def iter_nodes(root: Any) -> Iterator[Any]:
    """Every node below root, top-most first (the order of the Layers docker)."""
    for child in reversed(list(root.childNodes())):
        yield child
        yield from iter_nodes(child)


def same_node(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    try:
        return a.uniqueId() == b.uniqueId()
    except Exception:  # pragma: no cover - defensive
        return a == b


def find_by_id(doc: Any, uid: Any) -> Optional[Any]:
    for node in iter_nodes(doc.rootNode()):
        if node.uniqueId() == uid:
            return node
    return None


def find_layer(doc: Any, name: str, exclude: tuple = ()) -> Optional[Any]:
    """The top-most node with exactly this name (case-sensitive), skipping `exclude` nodes."""
    if not name:
        return None
    for node in iter_nodes(doc.rootNode()):
        if node.name() == name and not any(same_node(node, e) for e in exclude):
            return node
    return None


def index_in_parent(node: Any) -> tuple[Any, list[Any], int]:
    parent = node.parentNode()
    if parent is None:
        raise UserError(f"The layer '{node.name()}' has no parent (is it still in the document?).")
    siblings = list(parent.childNodes())
    for i, sib in enumerate(siblings):
        if same_node(sib, node):
            return parent, siblings, i
    raise UserError(f"The layer '{node.name()}' is no longer in the document.")


def same_document(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    try:
        if a == b:
            return True
    except Exception:  # pragma: no cover - defensive
        pass
    return a is b


def document_is_open(app: Any, doc: Any) -> bool:
    return any(same_document(d, doc) for d in app.documents())


# --- reading pixels -------------------------------------------------------------------------------


def read_bgra8(node: Any, rect: Rect, what: str) -> bytes:
    """The node's pixels in rect (document coordinates) as 8-bit BGRA.

    Paint layers: their own pixels. Groups, vector, file, fill and clone layers: their rendering."""
    pixels.check_supported(node.colorModel(), node.colorDepth(), what)
    if node.type() == "paintlayer":
        data = node.pixelData(rect.x, rect.y, rect.width, rect.height)
    else:
        data = node.projectionPixelData(rect.x, rect.y, rect.width, rect.height)
    data = bytes(data)
    if not data:
        raise UserError(f"Could not read the pixels of {what} ({type_name(node.type())}).")
    return pixels.to_bgra8(data, node.colorModel(), node.colorDepth(), rect.area)


def check_readable_layer(node: Any, role: str, name: str) -> list[str]:
    """Refuse masks and pixel-less layers as ink/hints/reference; note other non-paint layers."""
    t = node.type()
    if t in MASK_TYPES:
        raise UserError(
            f"The {role} '{name}' is {type_name(t)}, not a layer. "
            f"Use a paint layer{' named ' + repr(name) if role != 'ink layer' else ''}."
        )
    if t in NO_PIXEL_TYPES:
        raise UserError(f"The {role} '{name}' is {type_name(t)}, which holds no pixels of its own. Use a paint layer.")
    if t != "paintlayer":
        return [f"the {role} '{name}' is {type_name(t)}: using its rendered pixels"]
    return []


def ink_above_own_layer(own: Any, other_names: tuple) -> Optional[Any]:
    """The layer directly above a result layer, if it can be that result's ink (else None)."""
    try:
        _, siblings, i = index_in_parent(own)
    except UserError:
        return None
    if i + 1 >= len(siblings):
        return None
    above = siblings[i + 1]
    t = above.type()
    if t in MASK_TYPES or t in NO_PIXEL_TYPES or is_own_layer(above.name(), t) or above.name() in other_names:
        return None
    return above


# --- collecting the inputs of one colorization ------------------------------------------------------


@dataclass
class Inputs:
    document: Any
    ink: Any
    ink_id: Any
    ink_name: str
    region: Rect
    doc_size: tuple[int, int]
    doc_format: tuple[str, str]
    mask: Optional[bytes]  # 8-bit selection over region; None = all of region
    ink_b64: str
    hints_b64: Optional[str] = None
    references_b64: list[str] = field(default_factory=list)
    hint_name: Optional[str] = None
    reference_name: Optional[str] = None
    notes: list[str] = field(default_factory=list)


def collect_inputs(app: Any, hint_name: str = DEFAULT_HINT_LAYER, reference_name: str = DEFAULT_REFERENCE_LAYER) -> Inputs:
    """Read everything a colorization needs from the active document. Raises UserError."""
    doc = app.activeDocument()
    if doc is None:
        raise UserError("No document is open: open a black-and-white manga page first.")
    try:
        pixels.check_supported(doc.colorModel(), doc.colorDepth(), "The document")
    except pixels.UnsupportedFormat as exc:
        raise UserError(str(exc)) from None

    ink = doc.activeNode()
    if ink is None:
        raise UserError("No active layer: select the ink (line art) layer in the Layers docker.")
    ink_name = ink.name()
    notes: list[str] = []
    if ink.type() in MASK_TYPES:
        raise UserError(f"The active node '{ink_name}' is {type_name(ink.type())}: select the ink (line art) layer itself.")
    if is_own_layer(ink_name, ink.type()):
        above = ink_above_own_layer(ink, (hint_name, reference_name))
        if above is None:
            raise UserError(f"The active layer is MangaColor's own result layer '{ink_name}': select the ink (line art) layer.")
        notes.append(f"the active layer is MangaColor's result layer: colorizing the ink layer '{above.name()}' above it")
        ink, ink_name = above, above.name()
    if hint_name and ink_name == hint_name:
        raise UserError(f"The active layer is the hint layer '{hint_name}': select the ink (line art) layer.")
    if reference_name and ink_name == reference_name:
        raise UserError(f"The active layer is the reference layer '{reference_name}': select the ink (line art) layer.")
    notes += check_readable_layer(ink, "ink layer", ink_name)
    if ink.parentNode() is None:
        raise UserError("The active node is the document's root: select the ink (line art) layer.")

    doc_w, doc_h = int(doc.width()), int(doc.height())
    selection = doc.selection()
    sel_box = None
    if selection is not None:
        sel_box = Rect(int(selection.x()), int(selection.y()), int(selection.width()), int(selection.height()))
    region = work_region(doc_w, doc_h, sel_box)
    mask = None
    if selection is not None:
        mask = bytes(selection.pixelData(region.x, region.y, region.width, region.height))
        if len(mask) != region.area or pixels.mask_is_empty(mask):
            raise UserError(
                "The selection is empty: select the area to colorize, or deselect all (Select > Deselect) "
                "to colorize the whole page."
            )
        if pixels.mask_is_full(mask):
            mask = None

    try:
        ink_bgra = read_bgra8(ink, region, f"The ink layer '{ink_name}'")
    except pixels.UnsupportedFormat as exc:
        raise UserError(str(exc)) from None
    if not pixels.has_content(ink_bgra):
        where = "in the selected area" if selection is not None else ""
        raise UserError(f"The ink layer '{ink_name}' is empty {where}: select the layer with the line art.".replace("  ", " "))
    ink_b64 = imaging.encode_png_b64(imaging.ink_image(ink_bgra, region.width, region.height))

    inputs = Inputs(
        document=doc,
        ink=ink,
        ink_id=ink.uniqueId(),
        ink_name=ink_name,
        region=region,
        doc_size=(doc_w, doc_h),
        doc_format=(doc.colorModel(), doc.colorDepth()),
        mask=mask,
        ink_b64=ink_b64,
        notes=notes,
    )

    hint = find_layer(doc, hint_name, exclude=(ink,)) if hint_name else None
    if hint is None:
        inputs.notes.append(f"no hint layer named '{hint_name}': colorizing without hints")
    else:
        inputs.notes += check_readable_layer(hint, "hint layer", hint_name)
        try:
            hint_bgra = read_bgra8(hint, region, f"The hint layer '{hint_name}'")
        except pixels.UnsupportedFormat as exc:
            raise UserError(str(exc)) from None
        if hint.colorModel() == "GRAYA":
            inputs.notes.append(
                f"the hint layer '{hint_name}' is grayscale, so its hints carry no colour "
                "(Layer > Convert > Convert Layer Color Space > RGB/Alpha)"
            )
        if pixels.has_content(hint_bgra):
            inputs.hints_b64 = imaging.encode_png_b64(imaging.qimage_from_bgra8(hint_bgra, region.width, region.height))
            inputs.hint_name = hint_name
        else:
            where = "in the selected area" if selection is not None else ""
            inputs.notes.append(f"the hint layer '{hint_name}' is empty {where}: colorizing without hints".replace("  ", " "))

    ref = find_layer(doc, reference_name, exclude=(ink, hint)) if reference_name and reference_name != hint_name else None
    if ref is not None:
        inputs.notes += check_readable_layer(ref, "reference layer", reference_name)
        bounds = Rect.of(ref.bounds()).intersected(Rect(0, 0, doc_w, doc_h))
        if bounds.empty:
            inputs.notes.append(f"the reference layer '{reference_name}' is empty: ignored")
        else:
            try:
                ref_bgra = read_bgra8(ref, bounds, f"The reference layer '{reference_name}'")
            except pixels.UnsupportedFormat as exc:
                raise UserError(str(exc)) from None
            if pixels.has_content(ref_bgra):
                ref_img = imaging.on_white(imaging.qimage_from_bgra8(ref_bgra, bounds.width, bounds.height))
                inputs.references_b64.append(imaging.encode_png_b64(ref_img))
                inputs.reference_name = reference_name
            else:
                inputs.notes.append(f"the reference layer '{reference_name}' is empty: ignored")
    return inputs


# --- writing the result -----------------------------------------------------------------------------


@dataclass
class Applied:
    layer_name: str
    replaced: bool
    restacked: bool
    notes: list[str] = field(default_factory=list)


def apply_result(app: Any, inputs: Inputs, color_bgra: bytes, width: int, height: int) -> Applied:
    """Put the colour layer (8-bit BGRA of the region) directly beneath the ink. Raises UserError."""
    doc = inputs.document
    if not document_is_open(app, doc):
        raise UserError("The document was closed while colorizing: the result was not applied.")
    if (int(doc.width()), int(doc.height())) != inputs.doc_size:
        raise UserError("The canvas size changed while colorizing: the result was not applied. Press Colorize again.")
    region = inputs.region
    if (width, height) != (region.width, region.height):
        raise UserError(
            f"The backend returned a {width}x{height} result for a {region.width}x{region.height} area: not applied."
        )
    ink = find_by_id(doc, inputs.ink_id)
    if ink is None:
        raise UserError(f"The ink layer '{inputs.ink_name}' was deleted while colorizing: the result was not applied.")

    if inputs.mask is not None:
        color_bgra = imaging.apply_mask(color_bgra, inputs.mask, width, height)

    doc.waitForDone()
    layer = doc.createNode(RESULT_LAYER_NAME, "paintlayer")
    if layer is None:
        raise UserError("Krita could not create the result layer.")
    notes: list[str] = []
    model, depth = doc.colorModel(), doc.colorDepth()
    if model != "RGBA":
        # A grayscale document cannot hold colour: keep the colour in an RGB layer of the same depth.
        if not layer.setColorSpace("RGBA", depth, RESULT_PROFILE):
            raise UserError(f"Krita could not make an RGB/Alpha {depth} layer in this {model} document.")
        notes.append(
            "the document is grayscale: the MangaColor layer keeps its colours, but Krita shows them only "
            "after Image > Convert Image Color Space > RGB/Alpha"
        )
    data = pixels.from_bgra8(color_bgra, layer.colorModel(), layer.colorDepth())
    layer.setPixelData(data, region.x, region.y, region.width, region.height)

    parent, siblings, ink_index = index_in_parent(ink)
    plan = plan_placement([(s.name(), s.type()) for s in siblings], ink_index)
    if plan.kind == "replace":
        old = siblings[plan.index]
        parent.addChildNode(layer, old)  # new directly above the old one, i.e. beneath the ink...
        old.remove()  # ...then the old one goes: both steps are undoable
    elif plan.kind == "above":
        parent.addChildNode(layer, siblings[plan.index])
    else:  # restack: the ink is the lowest child
        parent.addChildNode(layer, ink)
        ink.remove()
        parent.addChildNode(ink, layer)
        ink = find_by_id(doc, inputs.ink_id) or ink
    ink.setBlendingMode("multiply")
    doc.refreshProjection()
    return Applied(RESULT_LAYER_NAME, plan.kind == "replace", plan.kind == "restack", notes)
