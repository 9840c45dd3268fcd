"""Building small mock-Krita pages for the plugin tests."""

from __future__ import annotations

from krita_mangacolor import pixels

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
