"""Building small mock-Krita pages for the plugin tests."""

from __future__ import annotations

from krita_mangacolor import pixels
from krita_mangacolor.page_reader import Inputs, encode_inputs, read_inputs
from krita_mangacolor.result_layer import Applied, apply_result, prepare_result

BLACK = (0, 0, 0, 255)  # B G R A
WHITE = (255, 255, 255, 255)
RED = (0, 0, 255, 255)  # BGRA of pure red
BLUE = (255, 0, 0, 255)


def fill(node, x: int, y: int, w: int, h: int, bgra=BLACK) -> None:
    data = pixels.from_bgra8(bytes(bgra) * (w * h), node.colorModel(), node.colorDepth())
    node.setPixelData(data, x, y, w, h)


def make_page(app, w: int = 40, h: int = 30, model: str = "RGBA", depth: str = "U8", hints: bool = True, ink_on_bottom: bool = False):
    """Background (white) / Hints (two dots) / Ink (black frame), the ink active. Returns (doc, ink, hints)."""
    doc = app.createDocument(w, h, "page", model, depth)
    bg = doc.rootNode().childNodes()[0]
    if ink_on_bottom:  # a scanned page: the only layer is the ink
        ink = bg
        ink.setName("Ink")
    else:
        ink = doc.add_layer("Ink")
    fill(ink, 2, 2, w - 4, 1)
    fill(ink, 2, h - 3, w - 4, 1)
    fill(ink, 2, 2, 1, h - 4)
    fill(ink, w - 3, 2, 1, h - 4)
    hint = None
    if hints:
        hint = doc.add_layer("Hints", model="RGBA" if model == "GRAYA" else None)
        fill(hint, 5, 5, 2, 2, RED)
        fill(hint, 20, 15, 2, 2, BLUE)
        # Hints below the ink, like the e2e page: move the ink to the top.
        root = doc.rootNode()
        for n in root.childNodes():
            if n.name() == "Ink":
                n.remove()
                root.addChildNode(n, None)
                ink = n
    doc.setActiveNode(ink)
    doc.log.clear()
    app.setActiveDocument(doc)
    return doc, ink, hint


def snapshot(doc) -> dict:
    """Everything about every node, by uniqueId: to prove what changed."""
    out = {}

    def walk(node, path):
        for i, child in enumerate(node.childNodes()):
            out[child.uniqueId()] = {
                "name": child.name(),
                "type": child.type(),
                "blending": child.blendingMode(),
                "pixels": bytes(child.pixelData(0, 0, doc.width(), doc.height())),
                "parent": node.uniqueId() if node.parentNode() is not None else None,
                "model": child.colorModel(),
                "depth": child.colorDepth(),
            }
            walk(child, path + [i])

    walk(doc.rootNode(), [])
    return out


def names(node) -> list[str]:
    """Child names, bottom first."""
    return [c.name() for c in node.childNodes()]


def collect_inputs(app, hint_name: str = "Hints", reference_name: str = "Reference", doc=None, choices=None) -> Inputs:
    """What a Colorize sends, in one call: read_inputs (GUI thread) + encode_inputs (worker thread)."""
    return encode_inputs(read_inputs(app, doc, choices, hint_name, reference_name))


def apply(app, inputs: Inputs, bgra: bytes, w: int, h: int) -> Applied:
    """Put an 8-bit BGRA result of w x h into the document as a run would (prepare in the worker, then apply)."""
    return apply_result(app, inputs.target, prepare_result(inputs.target, bgra, w, h))


def pick(widget, role: str, layer_name: str) -> bool:
    """Choose a role in the docker's picker as a user would: by the layer's name, or 'auto' / 'none'."""
    combo = widget.roles.combos[role]
    widget.roles.refresh(force=True)
    for i in range(combo.count()):
        data, text = combo.itemData(i), combo.itemText(i).strip()
        if data == layer_name if layer_name in ("auto", "none") else (data not in ("auto", "none") and text == layer_name):
            combo.setCurrentIndex(i)
            combo.activated.emit(i)
            return True
    return False
