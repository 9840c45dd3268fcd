"""Reading a page's inputs: pixels of the ink, hint and reference layers and the selection (read_inputs, GUI
thread: only what needs Krita), then converting them to the PNGs of the request (encode_inputs, worker thread:
QImage and bytes only, no krita calls). Nothing here writes to the document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from . import imaging, pixels, roles, wire
from .errors import UserError
from .geometry import Rect, Target, work_region
from .layers import Layer, type_name
from .page_extras import encode_extras, read_extras
from .qt import qbytes
from .request import ColorizeRequest
from .role_finder import UsedLayers, check_readable_layer, resolve_roles
from .settings import DEFAULT_HINT_LAYER, DEFAULT_REFERENCE_LAYER

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


def read_raw(layer: Layer, rect: Rect, what: str) -> RawLayer:
    """The layer's pixels in rect (document coordinates). Paint layers: their own pixels. Groups, vector,
    file, fill and clone layers: their rendering."""
    node = layer.node
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


def read_bgra8(layer: Layer, rect: Rect, what: str) -> bytes:
    """The layer's pixels in rect as 8-bit BGRA (GUI thread: for small reads, e.g. the hints of a Colorize Mask)."""
    raw = read_raw(layer, rect, what)
    return pixels.to_bgra8(qbytes(raw.data), raw.model, raw.depth, rect.area)


@dataclass
class RawInputs:
    target: Target
    ink: RawLayer
    hints: Optional[RawLayer] = None
    reference: Optional[RawLayer] = None
    draft: Optional[RawLayer] = None
    has_selection: bool = False
    notes: list[str] = field(default_factory=list)
    extras: Any = None  # page_extras.RawExtras: References group, palettes, panels (None: nothing extra)

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in (self.ink, self.hints, self.reference, self.draft) if r is not None)


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
    ink, ink_name = res.ink, res.ink.name
    notes = list(res.notes) + check_readable_layer(ink.node, "ink layer", ink_name)

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
    target = Target(doc, ink.node.uniqueId(), ink_name, region, (doc_w, doc_h), (doc.colorModel(), doc.colorDepth()), mask)
    raw = RawInputs(target, read_raw(ink, region, f"The ink layer '{ink_name}'"), has_selection=selection is not None, notes=notes)

    hint = res.hints
    if hint is None:
        if res.hint_missing_name:
            raw.notes.append(f"no hint layer named '{res.hint_missing_name}': colorizing without hints")
    else:
        hint_name_found = hint.name
        raw.notes += check_readable_layer(hint.node, "hint layer", hint_name_found)
        raw.hints = read_raw(hint, region, f"The hint layer '{hint_name_found}'")
        if hint.node.colorModel() == "GRAYA":
            raw.notes.append(
                f"the hint layer '{hint_name_found}' is grayscale, so its hints carry no colour "
                "(Layer > Convert > Convert Layer Color Space > RGB/Alpha)"
            )

    ref = res.reference
    if ref is not None:
        ref_name = ref.name
        raw.notes += check_readable_layer(ref.node, "reference layer", ref_name)
        bounds = Rect.of(ref.node.bounds()).intersected(Rect(0, 0, doc_w, doc_h))
        if bounds.empty:
            raw.notes.append(f"the reference layer '{ref_name}' is empty: ignored")
        else:
            raw.reference = read_raw(ref, bounds, f"The reference layer '{ref_name}'")

    if res.draft is not None:
        raw.notes += check_readable_layer(res.draft.node, "draft layer", res.draft.name)
        raw.draft = read_raw(res.draft, region, f"The draft layer '{res.draft.name}'")
    raw.extras = read_extras(doc, res.reference, region, raw.notes)
    return raw


@dataclass
class Inputs:
    """A page ready to send: the request's images (base64 PNG) and where its result belongs."""

    target: Target
    request: Optional[ColorizeRequest]  # its options are set when it is sent; None once sent
    hint_name: Optional[str] = None
    reference_name: Optional[str] = None
    draft_name: Optional[str] = None
    notes: list[str] = field(default_factory=list)

    @property
    def used(self) -> UsedLayers:
        return UsedLayers(self.target.ink_name, self.hint_name, self.reference_name)


def _take_bgra8(layer: RawLayer, n_pixels: int) -> bytes:
    data = qbytes(layer.data)
    layer.data = b""  # free the raw copy early: a 16-bit 6000x8500 page is 400 MB
    return pixels.to_bgra8(data, layer.model, layer.depth, n_pixels)


def encode_inputs(raw: RawInputs, lean: bool = False) -> Inputs:
    """RawInputs -> the PNGs the backend wants, or with lean=True its frames (raw pixels: wire.py). Pure (QImage +
    bytes): runs in a worker thread. The pixel work is done by Qt in C++ (alpha plane, gray conversion, PNG) or
    by bytes methods in C, so the GIL is mostly free meanwhile."""
    enc = wire.ImageEncoder(lean)
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
    inputs = Inputs(t, ColorizeRequest(enc.gray(gray, "ink")), notes=list(raw.notes))
    request = inputs.request
    del gray

    if raw.hints is not None:
        request.hints = enc.painted(_take_bgra8(raw.hints, region.area), w, h, "hints")
        if request.hints is not None:
            inputs.hint_name = raw.hints.name
        else:
            inputs.notes.append(f"the hint layer '{raw.hints.name}' is empty{where}: colorizing without hints")

    if raw.reference is not None:
        r = raw.reference
        ref_bgra = _take_bgra8(r, r.rect.area)
        if pixels.has_content(ref_bgra):
            ref_img = imaging.on_white(imaging.wrap_bgra8(ref_bgra, r.rect.width, r.rect.height))
            request.references.append(enc.picture(ref_img, "reference"))
            inputs.reference_name = r.name
        else:
            inputs.notes.append(f"the reference layer '{r.name}' is empty: ignored")

    if raw.draft is not None:
        request.draft = enc.painted(_take_bgra8(raw.draft, region.area), w, h, "draft")
        if request.draft is not None:
            inputs.draft_name = raw.draft.name
        else:
            inputs.notes.append(f"the draft layer '{raw.draft.name}' is empty{where}: colorizing without a draft")
    encode_extras(raw.extras, request, inputs.notes)
    return inputs
