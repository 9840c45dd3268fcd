"""Writing the result: the plugin's own "MangaColor" layer next to the ink (GUI thread), and the pure steps
before it (prepare_result, prepare_png: worker thread).

The user's layers are sacred. The plugin only ever
  * reads the ink, hint and reference layers and the selection (page_reader.py),
  * adds its own result layer (named "MangaColor") next to the ink, or replaces the previous one,
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
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional

from . import imaging, pixels
from .errors import UserError
from .layers import MULTIPLY, document_is_open, find_by_id, index_in_parent, is_own_layer
from .geometry import Target
from .qt import QByteArray
from .settings import DEFAULT_DRAFT_LAYER, RESULT_LAYER_NAME

RESULT_PROFILE = "sRGB-elle-V2-srgbtrc.icc"  # Krita's built-in sRGB, used when the result needs RGB


class Sibling(NamedTuple):
    """What placement needs to know of each child of the ink's parent."""

    name: str
    type: str
    blending: Optional[str] = None


@dataclass(frozen=True)
class Placement:
    """Where the new result goes. Indices are in childNodes() order (bottom first).

    beneath:      add directly above siblings[anchor] (= directly beneath the ink); the ink blends Multiply.
    replace:      the old result is siblings[old], directly beneath the ink (or beneath a "Draft" layer directly
                  beneath the ink, draft_layer.py): remove it, then add the new one
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


def plan_placement(siblings: list[Sibling], ink_index: int) -> Placement:
    """siblings: the ink's parent's children, bottom first; ink_index: the ink's."""
    if not 0 <= ink_index < len(siblings):
        raise ValueError("the ink is not among its parent's children")
    if ink_index == 0:
        if len(siblings) > 1:
            above = siblings[1]
            if is_own_layer(above.name, above.type) and above.blending == MULTIPLY:
                return Placement("replace_above", anchor=0, old=1)
        return Placement("above", anchor=0)
    below = siblings[ink_index - 1]
    old = None
    if is_own_layer(below.name, below.type):
        old = ink_index - 1
    elif below.name == DEFAULT_DRAFT_LAYER and ink_index >= 2 and is_own_layer(siblings[ink_index - 2].name, siblings[ink_index - 2].type):
        old = ink_index - 2  # "Keep as draft" put a Draft over the result: the new result goes under it again
    if old is not None:
        return Placement("replace", anchor=old - 1 if old > 0 else None, old=old)
    return Placement("beneath", anchor=ink_index - 1)


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


def prepare_png(target: Target, png: bytes, said: Optional[tuple[int, int]] = None) -> Prepared:
    """The backend's colour layer (PNG bytes; `said`: the size the backend gave) -> Prepared. Pure: worker thread."""
    try:
        img = imaging.decode_png(png, "colour layer")
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if said is not None and (img.width(), img.height()) != said:
        raise UserError(f"The backend's colour layer is {img.width()}x{img.height()} but it said {said[0]}x{said[1]}.")
    return prepare_result(target, imaging.bgra8_from_qimage(img), img.width(), img.height())


# --- writing the result (GUI thread) ------------------------------------------------------------------


@dataclass
class Applied:
    layer_name: str
    replaced: bool
    placement: str  # Placement.kind
    undo_steps: int  # Krita undo steps that change the document (see the module docstring)
    notes: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)  # seconds of each Krita call (GUI thread)

    @property
    def above(self) -> bool:  # the ink was the lowest layer: the result went above it and multiplies
        return self.placement in ("above", "replace_above")

    def describe(self, target: Target, tail: str, seconds: float) -> str:
        """The status line after a run (or a restore)."""
        verb = "replaced" if self.replaced else "added"
        area = "" if target.full_page else " (selected area)"
        if self.above:
            where = f"above '{target.ink_name}'{area}, blending with Multiply (the ink is the lowest layer)"
        else:
            where = f"beneath '{target.ink_name}'{area}; '{target.ink_name}' blends with Multiply"
        steps = "one undo step" if self.undo_steps == 1 else f"{self.undo_steps} undo steps"
        return f"Done in {seconds:.1f} s: {verb} layer '{self.layer_name}' {where} ({steps}). {tail}"


def apply_result(app: Any, target: Target, prepared: Prepared) -> Applied:
    """Put the colour layer into the document next to the ink. Raises UserError."""
    doc = target.document
    if not document_is_open(app, doc):
        raise UserError("The document was closed while colorizing: the result was not applied.")
    if (int(doc.width()), int(doc.height())) != target.doc_size:
        raise UserError("The canvas size changed while colorizing: the result was not applied. Press Colorize again.")
    timings: dict = {}
    clock = _Clock(timings)
    ink = find_by_id(doc, target.ink_id)
    if ink is None:
        raise UserError(f"The ink layer '{target.ink_name}' was deleted while colorizing: the result was not applied.")

    if hasattr(doc, "waitForDone"):
        doc.waitForDone()
    clock("wait")
    parent, siblings, ink_index = index_in_parent(ink)
    plan = plan_placement([Sibling(s.name(), s.type(), s.blendingMode()) for s in siblings], ink_index)

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
    return Applied(RESULT_LAYER_NAME, old is not None, plan.kind, steps, notes, timings)


class _Clock:
    """Seconds since the previous call, under a name: where the GUI thread's time goes (ModelState.stats)."""

    def __init__(self, out: dict):
        self._time = time.monotonic
        self._out = out
        self._last = self._time()

    def __call__(self, name: str) -> None:
        now = self._time()
        self._out[name] = round(now - self._last, 3)
        self._last = now
