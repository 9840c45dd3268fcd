"""The Draft layer (issue 13): rough colour washes the colorist paints, sent as the request's `draft`.

"Keep as draft" (result_actions.keep_as_draft) turns one of a run's variants into it, so the colorist can steer
it with a few brush strokes and run again:
  * no draft layer yet: a paint layer named "Draft" is made directly above the MangaColor layer (below the
    ink), with the variant's pixels. From then on it is the colorist's layer like any other;
  * a draft layer exists (the one the Draft picker finds): it is replaced by a layer of the same name, place,
    opacity, blending and visibility holding the variant (outside a selected area its old pixels stay). A
    replacement rather than setPixelData, so that the change is undoable (Add Layer, Remove Layer) and shows
    at once.
A draft lies over the result: result_layer.plan_placement finds the old result beneath a "Draft" layer
directly beneath the ink and puts the next result there again.
"""

from __future__ import annotations

from typing import Any, Optional

from . import roles
from .errors import UserError
from .geometry import Target
from .layers import MULTIPLY, document_is_open, find_by_id, find_by_uid_text, find_layer, find_named, index_in_parent, is_own_layer
from .result_layer import RESULT_PROFILE, Prepared
from .settings import DEFAULT_DRAFT_LAYER


def _own_result(ink: Any) -> Optional[Any]:
    """The MangaColor layer next to the ink: beneath it (maybe under a Draft), or above a lowest ink."""
    _, siblings, i = index_in_parent(ink)
    for j in (i - 1, i - 2, i + 1):
        if 0 <= j < len(siblings) and is_own_layer(siblings[j].name(), siblings[j].type()):
            if j == i - 2 and siblings[i - 1].name() != DEFAULT_DRAFT_LAYER:
                continue
            return siblings[j]
    return None


def _draft_node(doc: Any, choice: roles.Choice, ink: Any) -> Optional[Any]:
    """The layer the Draft picker stands for (None: there is none, or the picker says None)."""
    if choice.kind == roles.LAYER:
        node = find_by_uid_text(doc, choice.uid) or find_layer(doc, choice.name)
    elif choice.kind == roles.AUTO:
        node = find_named(doc, DEFAULT_DRAFT_LAYER, exclude=(ink,))
    else:
        node = None
    if node is not None and (node.type() != "paintlayer" or is_own_layer(node.name(), node.type())):
        raise UserError(f"The draft layer '{node.name()}' is not a paint layer: choose another one in the Draft picker.")
    return node


def _new_layer(doc: Any, name: str, target: Target) -> Any:
    layer = doc.createNode(name, "paintlayer")
    if layer is None:
        raise UserError("Krita could not create the draft layer.")
    model, depth = target.result_format
    if (layer.colorModel(), layer.colorDepth()) != (model, depth):
        if not layer.setColorSpace(model, depth, RESULT_PROFILE) or layer.colorModel() != model:
            raise UserError(f"Krita could not make an RGB/Alpha {depth} draft layer in this {doc.colorModel()} document.")
    return layer


def write_draft(app: Any, target: Target, prepared: Prepared) -> str:
    """Put the prepared variant into the document's Draft layer (GUI thread). Returns the status line's end."""
    doc = target.document
    if not document_is_open(app, doc):
        raise UserError("The document was closed: the draft was not written.")
    if (int(doc.width()), int(doc.height())) != target.doc_size:
        raise UserError("The canvas size changed since this run: the draft was not written. Press Colorize again.")
    ink = find_by_id(doc, target.ink_id)
    if ink is None:
        raise UserError(f"The ink layer '{target.ink_name}' is gone: the draft was not written.")
    if hasattr(doc, "waitForDone"):
        doc.waitForDone()
    choices = roles.load(doc)
    node = _draft_node(doc, choices["draft"], ink)
    region = target.region
    if node is not None:
        layer = _new_layer(doc, node.name(), target)
        full = region.area == target.doc_size[0] * target.doc_size[1] and target.mask is None
        if not full and (node.colorModel(), node.colorDepth()) == (layer.colorModel(), layer.colorDepth()):
            w, h = target.doc_size
            layer.setPixelData(node.pixelData(0, 0, w, h), 0, 0, w, h)
        layer.setPixelData(prepared.data, region.x, region.y, region.width, region.height)
        layer.setOpacity(node.opacity())
        layer.setBlendingMode(node.blendingMode())
        layer.setVisible(node.visible())
        node.parentNode().addChildNode(layer, node)
        node.remove()
        if choices["draft"].kind == roles.LAYER:
            roles.set_choice(doc, "draft", roles.Choice.layer(layer))
        return f"is now the draft layer '{layer.name()}' (it replaced the old one; Undo brings that back)."
    layer = _new_layer(doc, DEFAULT_DRAFT_LAYER, target)
    if choices["draft"].kind != roles.AUTO:  # the picker said None (or a lost layer): the new draft is the draft now
        roles.set_choice(doc, "draft", roles.Choice.layer(layer))
    layer.setPixelData(prepared.data, region.x, region.y, region.width, region.height)
    own = _own_result(ink)
    if own is not None:
        if own.blendingMode() == MULTIPLY:  # the result multiplies above a lowest ink: so does the draft
            layer.setBlendingMode(MULTIPLY)
        own.parentNode().addChildNode(layer, own)
    else:
        parent, siblings, i = index_in_parent(ink)
        if i == 0:
            layer.setBlendingMode(MULTIPLY)
            parent.addChildNode(layer, ink)
        else:
            parent.addChildNode(layer, siblings[i - 1])
    return f"is now the layer '{DEFAULT_DRAFT_LAYER}' above the result: paint on it and press Colorize to follow it."
