"""Everything that touches a Krita document: find the layers, read pixels, write the result layer.

The user's layers are sacred. This module only ever
  * reads the ink, hint and reference layers and the selection,
  * adds the plugin's own result layer (named "MangaColor") next to the ink, or replaces the previous one,
  * sets the ink layer's blending mode to Multiply (its pixels are never written).

Where the result goes:
  * beneath the ink (the usual case), and the ink blends with Multiply;
  * when the ink is the lowest layer of its group (a scanned page opened as a single layer), Krita's scripting
    API cannot insert anything below it, so the result goes directly ABOVE the ink and blends with Multiply
    itself: the same picture (colour x ink), and the ink node is not touched at all.

Undo: Krita 5.1's scripting API records every structural call as its own undo step (there is no way to
group them), so the order is chosen to make every undo step land on a sane document, the LAST step being
"Add Layer" of the new result:
  first run:  [ink -> Multiply, if it is not already]  Add Layer
  re-run:     Remove Layer (the old result)             Add Layer
One Ctrl+Z therefore always removes the newest colour layer; a second brings back the previous result (or
the ink's previous blending mode). Applied.undo_steps says how many steps a run made. (Settings on the new,
not yet added layer -- its colour space in a grayscale document, Multiply for the above-the-ink case -- are
recorded by Krita too, as steps that change nothing visible, before those.)

The work is split so that Krita's GUI thread does only what needs Krita (read_inputs: pixelData; and
apply_result: createNode/setPixelData/addChildNode); conversions and PNG coding (encode_inputs,
prepare_result) are pure and run in a worker thread (worker.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from . import imaging, pixels, roles
from .qt import QByteArray, qbytes
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
MULTIPLY = "multiply"


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
    """Where the new result goes. Indices are in childNodes() order (bottom first).

    beneath:      add directly above siblings[anchor] (= directly beneath the ink); the ink blends Multiply.
    replace:      the old result is siblings[old], directly beneath the ink: remove it, then add the new one
                  directly above siblings[anchor]; when the old one is the lowest child (anchor None), add the
                  new one above the old one first, then remove the old one.
    above:        the ink is its group's lowest child: add directly above the ink, the result blends Multiply.
    replace_above: as `above`, with the old (Multiply) result directly above the ink removed first.
    """

    kind: str
    anchor: Optional[int] = None
    old: Optional[int] = None

    @property
    def result_multiplies(self) -> bool:
        return self.kind in ("above", "replace_above")

    @property
    def replaces(self) -> bool:
        return self.old is not None


def plan_placement(siblings: list[tuple], ink_index: int) -> Placement:
    """siblings: (name, type[, blending]) of the ink's parent's children, bottom first; ink_index: the ink's."""
    if not 0 <= ink_index < len(siblings):
        raise ValueError("the ink is not among its parent's children")
    if ink_index == 0:
        if len(siblings) > 1:
            above = siblings[1]
            blending = above[2] if len(above) > 2 else None
            if is_own_layer(above[0], above[1]) and blending == MULTIPLY:
                return Placement("replace_above", anchor=0, old=1)
        return Placement("above", anchor=0)
    below = siblings[ink_index - 1]
    if is_own_layer(below[0], below[1]):
        old = ink_index - 1
        return Placement("replace", anchor=old - 1 if old > 0 else None, old=old)
    return Placement("beneath", anchor=ink_index - 1)


# --- walking the layer tree -----------------------------------------------------------------------


def iter_nodes(root: Any) -> Iterator[Any]:
    """Every node below root, top-most first (the order of the Layers docker)."""
    for child in reversed(list(root.childNodes())):
        yield child
        yield from iter_nodes(child)


def iter_layers(root: Any, depth: int = 0) -> Iterator[tuple[int, Any]]:
    """(depth, node) of every layer (masks left out), top-most first: what the role pickers list."""
    for child in reversed(list(root.childNodes())):
        if child.type() in MASK_TYPES:
            continue
        yield depth, child
        yield from iter_layers(child, depth + 1)


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


def find_by_uid_text(doc: Any, uid: str) -> Optional[Any]:
    if not uid:
        return None
    for node in iter_nodes(doc.rootNode()):
        if roles.node_uid(node) == uid:
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


def find_named(doc: Any, name: str, exclude: tuple = ()) -> Optional[Any]:
    """find_layer, then the same name ignoring case and spaces ('hints', 'HINTS ')."""
    node = find_layer(doc, name, exclude)
    if node is not None or not name:
        return node
    wanted = roles.normalize_name(name)
    for node in iter_nodes(doc.rootNode()):
        if roles.normalize_name(node.name()) == wanted and not any(same_node(node, e) for e in exclude):
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


def document_title(doc: Any) -> str:
    try:
        path = str(doc.fileName() or "")
    except Exception:  # pragma: no cover - defensive
        path = ""
    if path:
        return path.replace("\\", "/").rsplit("/", 1)[-1]
    return str(doc.name() or "untitled")


# --- roles: which layer is the ink, the hints, the reference ---------------------------------------


def ink_of_own_layer(own: Any, other: tuple = ()) -> Optional[Any]:
    """The ink a result layer belongs to: the layer directly above it (result beneath the ink), or directly
    below it when the result itself multiplies (result above a lowest ink). None if that cannot be an ink."""
    try:
        _, siblings, i = index_in_parent(own)
    except UserError:
        return None
    j = i - 1 if own.blendingMode() == MULTIPLY and i > 0 else i + 1
    if not 0 <= j < len(siblings):
        return None
    cand = siblings[j]
    t = cand.type()
    if t in MASK_TYPES or t in NO_PIXEL_TYPES or is_own_layer(cand.name(), t) or any(same_node(cand, o) for o in other):
        return None
    return cand


# Kept for callers of the old name.
def ink_above_own_layer(own: Any, other_names: tuple) -> Optional[Any]:  # pragma: no cover - compatibility
    cand = ink_of_own_layer(own)
    return None if cand is None or cand.name() in other_names else cand


def _can_be_ink(node: Any) -> bool:
    t = node.type()
    return t not in MASK_TYPES and t not in NO_PIXEL_TYPES and t != "grouplayer" and not is_own_layer(node.name(), t)


def ink_by_name(doc: Any, exclude: tuple = ()) -> Optional[Any]:
    """The top-most layer named like a line-art layer ('Ink', 'Lineart', 'line art 2'...)."""
    for node in iter_nodes(doc.rootNode()):
        if roles.looks_like_ink(node.name()) and _can_be_ink(node) and not any(same_node(node, e) for e in exclude):
            return node
    return None


@dataclass
class Resolved:
    ink: Any
    hints: Optional[Any]
    reference: Optional[Any]
    ink_how: str  # "chosen", "by name", "active layer", "only layer"
    notes: list[str] = field(default_factory=list)
    hint_missing_name: str = ""  # for the note when no hint layer is found


def _chosen_node(doc: Any, choice: roles.Choice) -> Optional[Any]:
    return find_by_uid_text(doc, choice.uid) or (find_layer(doc, choice.name) if choice.name else None)


def resolve_roles(
    doc: Any,
    choices: Optional[dict] = None,
    hint_name: str = DEFAULT_HINT_LAYER,
    reference_name: str = DEFAULT_REFERENCE_LAYER,
    use_active: bool = True,
) -> Resolved:
    """Which nodes play which role. Raises UserError when there is no usable ink layer.

    Ink: the layer chosen in the docker; else (auto) the top-most layer named like ink/lineart; else the
    active layer (interactive) or the document's only layer (use_active=False, e.g. for all open documents).
    Hints / reference: the chosen layer, none, or (auto) the layer named hint_name / reference_name."""
    choices = choices or roles.default_choices()
    notes: list[str] = []
    ink = None
    how = ""
    c_ink, c_hints, c_ref = choices.get("ink", roles.Choice()), choices.get("hints", roles.Choice()), choices.get("reference", roles.Choice())

    if c_ink.kind == roles.LAYER:
        ink = _chosen_node(doc, c_ink)
        if ink is None:
            raise UserError(
                f"The ink layer '{c_ink.name}' chosen in the MangaColor docker is no longer in this document: "
                "choose the ink layer again in the docker (or 'Auto')."
            )
        how = "chosen"

    def pick(choice: roles.Choice, default_name: str, what: str, exclude: tuple) -> tuple[Optional[Any], str]:
        if choice.kind == roles.NONE:
            return None, ""
        if choice.kind == roles.LAYER:
            node = _chosen_node(doc, choice)
            if node is None:
                notes.append(f"the {what} '{choice.name}' chosen in the docker is no longer in the document: not used")
            return node, ""
        return find_named(doc, default_name, exclude=exclude), default_name

    hints, hint_default = pick(c_hints, hint_name, "hint layer", (ink,) if ink is not None else ())
    reference, _ = pick(c_ref, reference_name, "reference layer", tuple(n for n in (ink, hints) if n is not None))
    if reference is not None and same_node(reference, hints):
        reference = None

    if ink is None:
        ink = ink_by_name(doc, exclude=tuple(n for n in (hints, reference) if n is not None))
        how = "by name" if ink is not None else ""
    if ink is None and use_active:
        ink, active_notes = _active_ink(doc, hints, reference)
        notes += active_notes
        how = "active layer"
    if ink is None:
        candidates = [
            n for _, n in iter_layers(doc.rootNode())
            if _can_be_ink(n) and not same_node(n, hints) and not same_node(n, reference)
        ]
        if len(candidates) == 1:
            ink, how = candidates[0], "only layer"
        else:
            raise UserError(
                "No ink layer: name the line-art layer 'Ink' (or 'Lineart'), or choose it in the MangaColor docker."
            )

    ink_name = ink.name()
    if ink.type() in MASK_TYPES:
        raise UserError(f"The ink '{ink_name}' is {type_name(ink.type())}: choose the ink (line art) layer itself.")
    if is_own_layer(ink_name, ink.type()):
        raise UserError(f"The ink layer '{ink_name}' is MangaColor's own result layer: choose the ink (line art) layer.")
    if same_node(ink, hints):
        raise UserError(f"'{ink_name}' is chosen both as the ink and as the hint layer: choose another ink or hint layer.")
    if same_node(ink, reference):
        raise UserError(f"'{ink_name}' is chosen both as the ink and as the reference layer: choose another layer.")
    if ink.parentNode() is None:
        raise UserError("The ink is the document's root: choose the ink (line art) layer.")
    return Resolved(ink, hints, reference, how, notes, hint_missing_name=hint_default)


def _active_ink(doc: Any, hints: Optional[Any], reference: Optional[Any]) -> tuple[Any, list[str]]:
    ink = doc.activeNode()
    if ink is None:
        raise UserError("No active layer: select the ink (line art) layer in the Layers docker, or choose it in the MangaColor docker.")
    name = ink.name()
    notes: list[str] = []
    if ink.type() in MASK_TYPES:
        raise UserError(f"The active node '{name}' is {type_name(ink.type())}: select the ink (line art) layer itself.")
    if is_own_layer(name, ink.type()):
        other = ink_of_own_layer(ink, tuple(n for n in (hints, reference) if n is not None))
        if other is None:
            raise UserError(f"The active layer is MangaColor's own result layer '{name}': select the ink (line art) layer.")
        where = "below" if ink.blendingMode() == MULTIPLY else "above"
        notes.append(f"the active layer is MangaColor's result layer: colorizing the ink layer '{other.name()}' {where} it")
        return other, notes
    if same_node(ink, hints):
        raise UserError(f"The active layer is the hint layer '{name}': select the ink (line art) layer, or choose it in the MangaColor docker.")
    if same_node(ink, reference):
        raise UserError(f"The active layer is the reference layer '{name}': select the ink (line art) layer, or choose it in the MangaColor docker.")
    return ink, notes


def preview_roles(doc: Any, choices: Optional[dict], hint_name: str, reference_name: str) -> dict:
    """For the docker's pickers: role -> (node or None, text), never raising."""
    try:
        r = resolve_roles(doc, choices, hint_name, reference_name)
    except UserError as exc:
        text = str(exc).split(":")[0]
        return {"ink": (None, text), "hints": (None, ""), "reference": (None, "")}
    except Exception as exc:  # pragma: no cover - defensive: the docker must not break
        return {"ink": (None, f"{exc.__class__.__name__}"), "hints": (None, ""), "reference": (None, "")}
    return {
        "ink": (r.ink, r.ink.name()),
        "hints": (r.hints, r.hints.name() if r.hints is not None else "none"),
        "reference": (r.reference, r.reference.name() if r.reference is not None else "none"),
    }


# --- reading pixels (GUI thread) ----------------------------------------------------------------------


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


@dataclass
class RawLayer:
    """A layer's pixels as Krita gave them (its own model/depth), for the worker to convert. `data` is the
    QByteArray from pixelData, turned into bytes only in the worker (a 204 MB copy kept off the GUI thread)."""

    name: str
    data: Any
    model: str
    depth: str
    rect: "Rect"

    @property
    def nbytes(self) -> int:
        return len(self.data)


def read_raw(node: Any, rect: Rect, what: str) -> RawLayer:
    """The node's pixels in rect (document coordinates). Paint layers: their own pixels. Groups, vector,
    file, fill and clone layers: their rendering."""
    model, depth = node.colorModel(), node.colorDepth()
    try:
        pixels.check_supported(model, depth, what)
    except pixels.UnsupportedFormat as exc:
        raise UserError(str(exc)) from None
    if node.type() == "paintlayer":
        data = node.pixelData(rect.x, rect.y, rect.width, rect.height)
    else:
        data = node.projectionPixelData(rect.x, rect.y, rect.width, rect.height)
    if data is None or len(data) == 0:
        raise UserError(f"Could not read the pixels of {what} ({type_name(node.type())}).")
    return RawLayer(node.name(), data, model, depth, rect)


def read_bgra8(node: Any, rect: Rect, what: str) -> bytes:
    raw = read_raw(node, rect, what)
    return pixels.to_bgra8(qbytes(raw.data), raw.model, raw.depth, rect.area)


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


@dataclass
class RawInputs:
    target: Target
    ink: RawLayer
    hints: Optional[RawLayer] = None
    reference: Optional[RawLayer] = None
    has_selection: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in (self.ink, self.hints, self.reference) if r is not None)


def read_inputs(
    app: Any,
    doc: Any = None,
    choices: Optional[dict] = None,
    hint_name: str = DEFAULT_HINT_LAYER,
    reference_name: str = DEFAULT_REFERENCE_LAYER,
    use_active: bool = True,
) -> RawInputs:
    """Everything a colorization needs from a document, as raw bytes (GUI thread). Raises UserError."""
    doc = doc if doc is not None else app.activeDocument()
    if doc is None:
        raise UserError("No document is open: open a black-and-white manga page first.")
    try:
        pixels.check_supported(doc.colorModel(), doc.colorDepth(), "The document")
    except pixels.UnsupportedFormat as exc:
        raise UserError(str(exc)) from None
    if choices is None:
        choices = roles.load(doc)
    res = resolve_roles(doc, choices, hint_name, reference_name, use_active)
    ink, ink_name = res.ink, res.ink.name()
    notes = list(res.notes) + check_readable_layer(ink, "ink layer", ink_name)

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

    if hasattr(doc, "waitForDone"):
        doc.waitForDone()  # strokes still running would be half in the pixels
    target = Target(doc, ink.uniqueId(), ink_name, region, (doc_w, doc_h), (doc.colorModel(), doc.colorDepth()), mask)
    raw = RawInputs(target, read_raw(ink, region, f"The ink layer '{ink_name}'"), has_selection=selection is not None, notes=notes)

    hint = res.hints
    if hint is None:
        if res.hint_missing_name:
            raw.notes.append(f"no hint layer named '{res.hint_missing_name}': colorizing without hints")
    else:
        hint_name_found = hint.name()
        raw.notes += check_readable_layer(hint, "hint layer", hint_name_found)
        raw.hints = read_raw(hint, region, f"The hint layer '{hint_name_found}'")
        if hint.colorModel() == "GRAYA":
            raw.notes.append(
                f"the hint layer '{hint_name_found}' is grayscale, so its hints carry no colour "
                "(Layer > Convert > Convert Layer Color Space > RGB/Alpha)"
            )

    ref = res.reference
    if ref is not None:
        ref_name = ref.name()
        raw.notes += check_readable_layer(ref, "reference layer", ref_name)
        bounds = Rect.of(ref.bounds()).intersected(Rect(0, 0, doc_w, doc_h))
        if bounds.empty:
            raw.notes.append(f"the reference layer '{ref_name}' is empty: ignored")
        else:
            raw.reference = read_raw(ref, bounds, f"The reference layer '{ref_name}'")
    return raw


# --- converting and encoding (worker thread: no krita calls) -----------------------------------------


@dataclass
class Inputs:
    target: Target
    ink_b64: str
    hints_b64: Optional[str] = None
    references_b64: list[str] = field(default_factory=list)
    hint_name: Optional[str] = None
    reference_name: Optional[str] = None
    notes: list[str] = field(default_factory=list)

    # the old flat attributes, read by tests and messages
    @property
    def document(self) -> Any:
        return self.target.document

    @property
    def ink_id(self) -> Any:
        return self.target.ink_id

    @property
    def ink_name(self) -> str:
        return self.target.ink_name

    @property
    def region(self) -> Rect:
        return self.target.region

    @property
    def doc_size(self) -> tuple[int, int]:
        return self.target.doc_size

    @property
    def mask(self) -> Optional[bytes]:
        return self.target.mask


def _take_bgra8(layer: RawLayer, n_pixels: int) -> bytes:
    data = qbytes(layer.data)
    layer.data = b""  # free the raw copy early: a 16-bit 6000x8500 page is 400 MB
    return pixels.to_bgra8(data, layer.model, layer.depth, n_pixels)


def encode_inputs(raw: RawInputs) -> Inputs:
    """RawInputs -> the PNGs the backend wants. Pure (QImage + bytes): runs in a worker thread. The pixel
    work is done by Qt in C++ (alpha plane, gray conversion, PNG), so the GIL is mostly free meanwhile."""
    t = raw.target
    region = t.region
    w, h = region.width, region.height
    where = " in the selected area" if raw.has_selection else ""
    ink_bgra = _take_bgra8(raw.ink, region.area)
    img = imaging.wrap_bgra8(ink_bgra, w, h)
    alpha = imaging.alpha8(img)
    if alpha.count(0) == len(alpha):
        raise UserError(f"The ink layer '{t.ink_name}' is empty{where}: select the layer with the line art.")
    gray = imaging.ink_gray(img, opaque=alpha.count(255) == len(alpha))
    del img, alpha, ink_bgra
    inputs = Inputs(t, imaging.encode_png_b64(gray), notes=list(raw.notes))
    del gray

    if raw.hints is not None:
        hint_bgra = _take_bgra8(raw.hints, region.area)
        img = imaging.wrap_bgra8(hint_bgra, w, h)
        alpha = imaging.alpha8(img)
        if alpha.count(0) != len(alpha):
            inputs.hints_b64 = imaging.encode_png_b64(img)
            inputs.hint_name = raw.hints.name
        else:
            inputs.notes.append(f"the hint layer '{raw.hints.name}' is empty{where}: colorizing without hints")
        del img, alpha, hint_bgra

    if raw.reference is not None:
        r = raw.reference
        ref_bgra = _take_bgra8(r, r.rect.area)
        if pixels.has_content(ref_bgra):
            ref_img = imaging.on_white(imaging.wrap_bgra8(ref_bgra, r.rect.width, r.rect.height))
            inputs.references_b64.append(imaging.encode_png_b64(ref_img))
            inputs.reference_name = r.name
        else:
            inputs.notes.append(f"the reference layer '{r.name}' is empty: ignored")
    return inputs


def collect_inputs(
    app: Any,
    hint_name: str = DEFAULT_HINT_LAYER,
    reference_name: str = DEFAULT_REFERENCE_LAYER,
    doc: Any = None,
    choices: Optional[dict] = None,
) -> Inputs:
    """read_inputs + encode_inputs in one call (tests, scripts)."""
    inputs = encode_inputs(read_inputs(app, doc, choices, hint_name, reference_name))
    inputs.ink = find_by_id(inputs.target.document, inputs.target.ink_id)  # type: ignore[attr-defined]
    return inputs


@dataclass
class Prepared:
    """A result ready for setPixelData: the result layer's format, mask applied (a QByteArray)."""

    data: Any
    width: int
    height: int


def prepare_result(target: Target, color_bgra: bytes, width: int, height: int) -> Prepared:
    """Check the size, apply the selection mask, convert to the layer's format. Pure: worker thread."""
    region = target.region
    if (width, height) != (region.width, region.height):
        raise UserError(
            f"The backend returned a {width}x{height} result for a {region.width}x{region.height} area: not applied."
        )
    if target.mask is not None:
        color_bgra = imaging.apply_mask(color_bgra, target.mask, width, height)
    model, depth = target.result_format
    # a QByteArray made here (worker thread) is handed to setPixelData as is: no 204 MB copy on the GUI thread
    return Prepared(QByteArray(pixels.from_bgra8(color_bgra, model, depth)), width, height)


def prepare_png(target: Target, png: bytes) -> Prepared:
    """The backend's colour layer (PNG bytes) -> Prepared. Pure: worker thread."""
    try:
        img = imaging.decode_png(png, "colour layer")
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return prepare_result(target, imaging.bgra8_from_qimage(img), img.width(), img.height())


# --- writing the result (GUI thread) ------------------------------------------------------------------


@dataclass
class Applied:
    layer_name: str
    replaced: bool
    placement: str  # Placement.kind
    undo_steps: int  # Krita undo steps that change the document (see the module docstring)
    notes: list[str] = field(default_factory=list)
    layer_id: Any = None
    timings: dict = field(default_factory=dict)  # seconds of each Krita call (GUI thread)

    @property
    def restacked(self) -> bool:  # the ink was the lowest layer: the result went above it
        return self.placement in ("above", "replace_above")

    @property
    def above(self) -> bool:
        return self.restacked


def apply_result(app: Any, target: Any, color: Any, width: int, height: int) -> Applied:
    """Put the colour layer into the document next to the ink. Raises UserError.

    target: a Target (or Inputs); color: 8-bit BGRA bytes of the region, or a Prepared."""
    if isinstance(target, Inputs):
        target = target.target
    doc = target.document
    if not document_is_open(app, doc):
        raise UserError("The document was closed while colorizing: the result was not applied.")
    if (int(doc.width()), int(doc.height())) != target.doc_size:
        raise UserError("The canvas size changed while colorizing: the result was not applied. Press Colorize again.")
    prepared = color if isinstance(color, Prepared) else prepare_result(target, color, width, height)
    timings: dict = {}
    clock = _Clock(timings)
    ink = find_by_id(doc, target.ink_id)
    if ink is None:
        raise UserError(f"The ink layer '{target.ink_name}' was deleted while colorizing: the result was not applied.")

    if hasattr(doc, "waitForDone"):
        doc.waitForDone()
    clock("wait")
    parent, siblings, ink_index = index_in_parent(ink)
    plan = plan_placement([(s.name(), s.type(), s.blendingMode()) for s in siblings], ink_index)

    layer = doc.createNode(RESULT_LAYER_NAME, "paintlayer")
    if layer is None:
        raise UserError("Krita could not create the result layer.")
    notes: list[str] = []
    model, depth = target.result_format
    if (layer.colorModel(), layer.colorDepth()) != (model, depth):
        # A grayscale document cannot hold colour: keep the colour in an RGB layer of the same depth.
        if not layer.setColorSpace(model, depth, RESULT_PROFILE) or layer.colorModel() != model:
            raise UserError(f"Krita could not make an RGB/Alpha {depth} layer in this {doc.colorModel()} document.")
        notes.append(
            "the document is grayscale: the MangaColor layer keeps its colours, but Krita shows them only "
            "after Image > Convert Image Color Space > RGB/Alpha"
        )
    clock("create")
    region = target.region
    layer.setPixelData(prepared.data, region.x, region.y, region.width, region.height)
    clock("set_pixels")
    if plan.result_multiplies:
        layer.setBlendingMode(MULTIPLY)  # on the detached layer: the ink itself stays untouched

    steps = 0
    if not plan.result_multiplies and ink.blendingMode() != MULTIPLY:
        ink.setBlendingMode(MULTIPLY)
        steps += 1
    clock("blending")
    old = siblings[plan.old] if plan.old is not None else None
    if plan.kind == "replace" and plan.anchor is None:
        # the old result is the lowest child: nothing to anchor on once it is gone, so add first
        parent.addChildNode(layer, old)
        old.remove()
    else:
        if old is not None:
            old.remove()
        parent.addChildNode(layer, siblings[plan.anchor])
    steps += 2 if old is not None else 1
    clock("add_remove")
    # No Document.refreshProjection(): in Krita 5.1 it re-renders the whole image synchronously on the GUI
    # thread (seconds for a 6000x8500 page); adding the layer already schedules the update of its area.
    return Applied(RESULT_LAYER_NAME, old is not None, plan.kind, steps, notes, layer.uniqueId(), timings)


class _Clock:
    def __init__(self, out: dict):
        import time

        self._time = time.monotonic
        self._out = out
        self._last = self._time()

    def __call__(self, name: str) -> None:
        now = self._time()
        self._out[name] = round(now - self._last, 3)
        self._last = now
