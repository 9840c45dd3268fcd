"""A small stand-in for Krita's `krita` Python module (libkis), faithful where the plugin relies on it.

Behaviour copied from Krita 5.1.5 (checked in the real application, see tests/krita_e2e):
  * Node.childNodes() lists children bottom first and returns NEW wrapper objects on every call
    (wrappers compare equal when they wrap the same node; uniqueId() is stable);
  * parent.addChildNode(child, above) puts child directly above `above`; with above=None, on TOP;
  * pixelData(x, y, w, h) reads any rectangle in document coordinates (outside = transparent zeros);
    for group/vector/other non-paint layers pixelData returns b"" and projectionPixelData the rendering;
  * RGBA integer pixels are stored B G R A; GRAYA as gray, alpha; U16 little-endian;
  * Document.selection() is None without a selection; Selection.pixelData is 1 byte a pixel;
  * a new document has one opaque white paint layer named "Background".
  * Document.setAnnotation/annotation/annotationTypes keep bytes per type (saved in the .kra by Krita);
  * every structural call (addChildNode, remove, setBlendingMode, setColorSpace) is ONE undo step, also
    on a node not yet in the document (Krita 5.1 records those too); setPixelData/setName/setVisible are
    not undoable. Document.undo() (test helper) undoes one step, like Edit > Undo;
  * ColorizeMask exists only after enable_colorize_mask() (Krita 5.2+); Krita.version() follows.
Every mutation is logged in Document.log so tests can prove that nothing else changed.
"""

from __future__ import annotations

import uuid
from typing import Any, Optional

from krita_mangacolor.qt import QAction, QByteArray, QDockWidget, QObject, QRect, pyqtSignal

VERSION = "5.1.5"

_BPP = {("RGBA", "U8"): 4, ("RGBA", "U16"): 8, ("GRAYA", "U8"): 2, ("GRAYA", "U16"): 4, ("RGBA", "F32"): 16, ("RGBA", "F16"): 8, ("CMYKA", "U8"): 5}
PROFILES = {"RGBA": "sRGB-elle-V2-srgbtrc.icc", "GRAYA": "Gray-D50-elle-V2-srgbtrc.icc", "CMYKA": "Chemical proof"}


class _NodeData:
    def __init__(self, doc: "Document", name: str, node_type: str, model: str, depth: str):
        self.doc = doc
        self.name = name
        self.type = node_type
        self.model = model
        self.depth = depth
        self.profile = PROFILES.get(model, "")
        self.uid = uuid.uuid4()
        self.parent: Optional[_NodeData] = None
        self.children: list[_NodeData] = []  # bottom first
        self.blending = "normal"
        self.visible = True
        self.opacity = 255
        self.locked = False
        bpp = _BPP[(model, depth)]
        self.bpp = bpp
        self.pixels = bytearray(doc._w * doc._h * bpp) if node_type == "paintlayer" else None
        self.rendering: Optional[bytearray] = None  # what projectionPixelData returns for non-paint layers
        if node_type != "paintlayer":
            self.rendering = bytearray(doc._w * doc._h * bpp)


def _wrap(d: "_NodeData") -> "Node":
    if d.type == "colorizemask":
        return _ColorizeMask(d, fresh=False)
    if d.type == "vectorlayer":
        return VectorLayer(d)
    return Node(d)


class Node:
    """A wrapper, like PyKrita's: a fresh one is made for every childNodes()/activeNode() call."""

    def __init__(self, data: _NodeData):
        self._d = data

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Node) and other._d is self._d

    def __hash__(self) -> int:
        return id(self._d)

    def __repr__(self) -> str:
        return f"<mock Node {self._d.name!r} {self._d.type}>"

    def _log(self, what: str) -> None:
        self._d.doc.log.append((what, self._d.name))

    # identity & tree
    def uniqueId(self) -> uuid.UUID:
        return self._d.uid

    def name(self) -> str:
        return self._d.name

    def setName(self, name: str) -> None:
        self._log("setName")
        self._d.name = name

    def type(self) -> str:
        return self._d.type

    def childNodes(self) -> list["Node"]:
        return [_wrap(c) for c in self._d.children]

    def parentNode(self) -> Optional["Node"]:
        return Node(self._d.parent) if self._d.parent is not None else None

    def addChildNode(self, child: "Node", above: Optional["Node"]) -> bool:
        if child._d.parent is not None:
            raise RuntimeError("mock krita: node already has a parent (Krita would refuse/assert)")
        kids = self._d.children
        if above is None:
            kids.append(child._d)  # Krita 5.1: None puts the child on top
        else:
            if above._d not in kids:
                raise RuntimeError("mock krita: 'above' is not a child of this node")
            kids.insert(kids.index(above._d) + 1, child._d)
        child._d.parent = self._d
        self._d.doc.log.append(("addChildNode", child._d.name))
        self._d.doc._push_undo("Add Layer", lambda c=child._d, p=self._d: (p.children.remove(c), setattr(c, "parent", None)))
        return True

    def remove(self) -> bool:
        parent = self._d.parent
        if parent is None:
            return False
        index = parent.children.index(self._d)
        parent.children.remove(self._d)
        self._d.parent = None
        self._log("remove")
        self._d.doc._push_undo("Remove Layer", lambda c=self._d, p=parent, i=index: (p.children.insert(i, c), setattr(c, "parent", p)))
        return True

    # properties
    def blendingMode(self) -> str:
        return self._d.blending

    def setBlendingMode(self, mode: str) -> None:
        self._log(f"setBlendingMode:{mode}")
        old = self._d.blending
        self._d.blending = mode
        self._d.doc._push_undo("Composition Mode Change", lambda d=self._d, old=old: setattr(d, "blending", old))

    def visible(self) -> bool:
        return self._d.visible

    def setVisible(self, v: bool) -> None:
        self._log("setVisible")
        self._d.visible = v

    def opacity(self) -> int:
        return self._d.opacity

    def setOpacity(self, value: int) -> None:
        self._log("setOpacity")
        self._d.opacity = value

    def locked(self) -> bool:
        return self._d.locked

    def colorModel(self) -> str:
        return self._d.model

    def colorDepth(self) -> str:
        return self._d.depth

    def colorProfile(self) -> str:
        return self._d.profile

    def setColorSpace(self, model: str, depth: str, profile: str) -> bool:
        d = self._d
        if (model, depth) not in _BPP:
            return False
        if d.pixels is not None and any(d.pixels):
            raise NotImplementedError("mock krita converts only empty layers")
        self._log(f"setColorSpace:{model}/{depth}")
        d.doc._push_undo("Convert Layer Color Space", lambda: None)  # only ever used on new, empty layers
        d.model, d.depth, d.profile = model, depth, profile
        d.bpp = _BPP[(model, depth)]
        if d.pixels is not None:
            d.pixels = bytearray(d.doc._w * d.doc._h * d.bpp)
        return True

    # pixels
    def _read(self, buf: Optional[bytearray], x: int, y: int, w: int, h: int) -> bytes:
        d = self._d
        if buf is None:
            return b""
        W, H, bpp = d.doc._w, d.doc._h, d.bpp
        out = bytearray(w * h * bpp)
        for row in range(h):
            yy = y + row
            if not 0 <= yy < H:
                continue
            x0, x1 = max(x, 0), min(x + w, W)
            if x0 >= x1:
                continue
            src = (yy * W + x0) * bpp
            dst = (row * w + (x0 - x)) * bpp
            out[dst : dst + (x1 - x0) * bpp] = buf[src : src + (x1 - x0) * bpp]
        return bytes(out)

    def pixelData(self, x: int, y: int, w: int, h: int) -> bytes:
        return self._read(self._d.pixels, x, y, w, h)

    def projectionPixelData(self, x: int, y: int, w: int, h: int) -> bytes:
        d = self._d
        return self._read(d.pixels if d.type == "paintlayer" else d.rendering, x, y, w, h)

    def setPixelData(self, data: bytes, x: int, y: int, w: int, h: int) -> None:
        d = self._d
        if d.pixels is None:
            return
        self._write(d.pixels, bytes(data), x, y, w, h)
        self._log("setPixelData")

    def _write(self, buf: bytearray, data: bytes, x: int, y: int, w: int, h: int) -> None:
        d = self._d
        W, H, bpp = d.doc._w, d.doc._h, d.bpp
        if len(data) != w * h * bpp:
            raise ValueError(f"mock krita: setPixelData got {len(data)} bytes, expected {w * h * bpp}")
        for row in range(h):
            yy = y + row
            if not 0 <= yy < H:
                continue
            x0, x1 = max(x, 0), min(x + w, W)
            if x0 >= x1:
                continue
            dst = (yy * W + x0) * bpp
            src = (row * w + (x0 - x)) * bpp
            buf[dst : dst + (x1 - x0) * bpp] = data[src : src + (x1 - x0) * bpp]

    def bounds(self) -> QRect:
        """Exact bounds of the non-transparent pixels (the alpha channel is last)."""
        d = self._d
        buf = d.pixels if d.pixels is not None else d.rendering
        W, H, bpp = d.doc._w, d.doc._h, d.bpp
        asize = bpp // (2 if d.model == "GRAYA" else 4) if d.model in ("RGBA", "GRAYA") else 1
        xs, ys = [], []
        for i in range(W * H):
            px = buf[i * bpp : (i + 1) * bpp]
            if any(px[bpp - asize :]):
                xs.append(i % W)
                ys.append(i // W)
        if not xs:
            return QRect()
        return QRect(min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1)


class Selection:
    def __init__(self, doc: Optional["Document"] = None):
        self._w = doc._w if doc else 0
        self._h = doc._h if doc else 0
        self._mask = bytearray(self._w * self._h)

    def select(self, x: int, y: int, w: int, h: int, value: int) -> None:
        for yy in range(max(0, y), min(self._h, y + h)):
            for xx in range(max(0, x), min(self._w, x + w)):
                self._mask[yy * self._w + xx] = value

    def _box(self) -> tuple[int, int, int, int]:
        xs = [i % self._w for i, v in enumerate(self._mask) if v]
        ys = [i // self._w for i, v in enumerate(self._mask) if v]
        if not xs:
            return 0, 0, 0, 0
        return min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1

    def x(self) -> int:
        return self._box()[0]

    def y(self) -> int:
        return self._box()[1]

    def width(self) -> int:
        return self._box()[2]

    def height(self) -> int:
        return self._box()[3]

    def pixelData(self, x: int, y: int, w: int, h: int) -> bytes:
        out = bytearray(w * h)
        for row in range(h):
            for col in range(w):
                xx, yy = x + col, y + row
                if 0 <= xx < self._w and 0 <= yy < self._h:
                    out[row * w + col] = self._mask[yy * self._w + xx]
        return bytes(out)


class Document:
    def __init__(self, w: int, h: int, model: str = "RGBA", depth: str = "U8", name: str = "page"):
        self._w, self._h = w, h
        self._model, self._depth = model, depth
        self._name = name
        self.log: list[tuple[str, str]] = []
        self._root = _NodeData(self, "root", "grouplayer", model, depth)
        self._active: Optional[_NodeData] = None
        self._selection: Optional[Selection] = None
        self.refreshes = 0
        self.closed = False
        self._annotations: dict[str, tuple[str, bytes]] = {}
        self._modified = False
        self._file_name = ""
        self.undo_stack: list[tuple[str, Any]] = []
        self._dpi = 300.0

    def __repr__(self) -> str:
        return f"<mock Document {self._name} {self._w}x{self._h} {self._model}/{self._depth}>"

    def name(self) -> str:
        return self._name

    def width(self) -> int:
        return self._w

    def height(self) -> int:
        return self._h

    def bounds(self) -> QRect:
        return QRect(0, 0, self._w, self._h)

    def colorModel(self) -> str:
        return self._model

    def colorDepth(self) -> str:
        return self._depth

    def colorProfile(self) -> str:
        return PROFILES.get(self._model, "")

    def rootNode(self) -> Node:
        return Node(self._root)

    def createNode(self, name: str, node_type: str) -> Node:
        return Node(_NodeData(self, name, node_type, self._model, self._depth))

    def activeNode(self) -> Optional[Node]:
        return _wrap(self._active) if self._active is not None else None

    def setActiveNode(self, node: Optional[Node]) -> None:
        self._active = node._d if node is not None else None

    def selection(self) -> Optional[Selection]:
        return self._selection

    def setSelection(self, sel: Optional[Selection]) -> None:
        self._selection = sel

    def refreshProjection(self) -> None:
        self.refreshes += 1

    def waitForDone(self) -> None:
        pass

    def nodeByName(self, name: str) -> Optional[Node]:
        def walk(d: _NodeData):
            for c in reversed(d.children):
                if c.name == name:
                    return c
                found = walk(c)
                if found:
                    return found
            return None

        found = walk(self._root)
        return Node(found) if found else None

    def fileName(self) -> str:
        return self._file_name

    def setFileName(self, name: str) -> None:
        self._file_name = name

    def modified(self) -> bool:
        return self._modified

    def setModified(self, value: bool) -> None:
        self._modified = bool(value)

    def annotationTypes(self) -> list[str]:
        return list(self._annotations)

    def annotation(self, type_: str) -> QByteArray:
        return QByteArray(self._annotations.get(type_, ("", b""))[1])

    def annotationDescription(self, type_: str) -> str:
        return self._annotations.get(type_, ("", b""))[0]

    def setAnnotation(self, type_: str, description: str, data: Any) -> None:
        raw = bytes(data.data()) if hasattr(data, "data") else bytes(data)
        self._annotations[type_] = (description, raw)

    def removeAnnotation(self, type_: str) -> None:
        self._annotations.pop(type_, None)

    def xRes(self) -> float:
        return self._dpi

    def resolution(self) -> int:
        return int(self._dpi)

    def setResolution(self, dpi: int) -> None:
        self._dpi = float(dpi)

    def createVectorLayer(self, name: str) -> "VectorLayer":
        data = _NodeData(self, name, "vectorlayer", self._model, self._depth)
        data.shapes = []
        return VectorLayer(data)

    def createColorizeMask(self, name: str) -> "_ColorizeMask":
        if not _COLORIZE_MASK["enabled"]:
            raise AttributeError("createColorizeMask needs Krita 5.2")
        return _ColorizeMask(_NodeData(self, name, "colorizemask", "GRAYA", "U8"))

    # test helpers (not libkis)
    def _push_undo(self, text: str, inverse: Any) -> None:
        self.undo_stack.append((text, inverse))

    def undo(self) -> str:
        """Edit > Undo: one step. Returns the step's text."""
        text, inverse = self.undo_stack.pop()
        inverse()
        return text

    def add_layer(self, name: str, node_type: str = "paintlayer", model: Optional[str] = None, depth: Optional[str] = None, parent: Optional[Node] = None) -> Node:
        node = Node(_NodeData(self, name, node_type, model or self._model, depth or self._depth))
        (parent or self.rootNode()).addChildNode(node, None)
        return node


class VectorLayer(Node):
    """A vector layer: shapes from SVG in points (mock_vector.py)."""

    def shapes(self) -> list:
        return list(self._d.shapes)

    def addShapesFromSvg(self, svg: str) -> list:
        from mock_vector import add_shapes_from_svg

        return add_shapes_from_svg(self._d, svg)


class ManagedColor:
    def __init__(self, model: str = "RGBA", depth: str = "U8", profile: str = ""):
        self.rgb = (0, 0, 0)

    @staticmethod
    def fromQColor(qcolor: Any, canvas: Any = None) -> "ManagedColor":
        c = ManagedColor()
        c.rgb = (qcolor.red(), qcolor.green(), qcolor.blue())
        return c

    def colorForCanvas(self, canvas: Any) -> Any:
        from krita_mangacolor.qt import QColor

        return QColor(*self.rgb)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, ManagedColor) and other.rgb == self.rgb

    def __hash__(self) -> int:
        return hash(self.rgb)


class _ColorizeMask(Node):
    """Krita 5.2's colorize mask: key strokes are (colour, 8-bit alpha device) pairs."""

    def __init__(self, data: "_NodeData", fresh: bool = True):
        super().__init__(data)
        if not fresh:
            return
        data.keystrokes = []  # [(ManagedColor, bytearray over the document)]
        data.edit_key_strokes = False
        data.show_output = False

    def initializeKeyStrokeColors(self, colors: list, transparent_index: int = -1) -> None:
        if self._d.keystrokes:
            raise RuntimeError("mock krita: key stroke colours are initialized once")
        if self._d.parent is None:
            raise RuntimeError("mock krita: the mask must be added to a layer first")
        W, H = self._d.doc._w, self._d.doc._h
        self._d.keystrokes = [(c, bytearray(W * H)) for c in colors]

    def keyStrokesColors(self) -> list:
        return [c for c, _ in self._d.keystrokes]

    def setKeyStrokePixelData(self, value: Any, color: Any, x: int, y: int, w: int, h: int) -> bool:
        raw = bytes(value.data()) if hasattr(value, "data") else bytes(value)
        if len(raw) < w * h:
            return False
        W = self._d.doc._w
        for c, dev in self._d.keystrokes:
            if c == color:
                for row in range(h):
                    dev[(y + row) * W + x : (y + row) * W + x + w] = raw[row * w : (row + 1) * w]
                return True
        return False

    def keyStrokePixelData(self, color: Any, x: int, y: int, w: int, h: int) -> bytes:
        W = self._d.doc._w
        for c, dev in self._d.keystrokes:
            if c == color:
                return b"".join(bytes(dev[(y + r) * W + x : (y + r) * W + x + w]) for r in range(h))
        return b""

    def setEditKeyStrokes(self, on: bool) -> None:
        self._d.edit_key_strokes = on

    def setShowOutput(self, on: bool) -> None:
        self._d.show_output = on


_COLORIZE_MASK = {"enabled": False}


def enable_colorize_mask(on: bool = True) -> None:
    """Pretend to be Krita 5.2 (ColorizeMask in the module) or 5.1 (no ColorizeMask)."""
    global VERSION
    import sys

    module = sys.modules[__name__]
    _COLORIZE_MASK["enabled"] = on
    VERSION = "5.2.2" if on else "5.1.5"
    if on:
        module.ColorizeMask = _ColorizeMask
    elif "ColorizeMask" in module.__dict__:
        del module.__dict__["ColorizeMask"]


class Resource:
    def __init__(self, name: str):
        self._name = name

    def name(self) -> str:
        return self._name


class Canvas:
    pass


class View:
    def __init__(self, window: "Window"):
        self.window = window
        self.preset: Optional[str] = None
        self.brush_size = 10.0
        self.fg = ManagedColor()
        self.opacity = 0.5
        self.blending = "overlay"
        self._canvas = Canvas()

    def canvas(self) -> Canvas:
        return self._canvas

    def setCurrentBrushPreset(self, resource: Resource) -> None:
        self.preset = resource.name()

    def setBrushSize(self, size: float) -> None:
        self.brush_size = size

    def foregroundColor(self) -> ManagedColor:
        return self.fg

    def setForeGroundColor(self, color: ManagedColor) -> None:
        self.fg = color

    def setPaintingOpacity(self, opacity: float) -> None:
        self.opacity = opacity

    def setCurrentBlendingMode(self, mode: str) -> None:
        self.blending = mode


class Notifier(QObject):
    windowCreated = pyqtSignal()
    applicationClosing = pyqtSignal()
    imageCreated = pyqtSignal(object)


class Window(QObject):
    def __init__(self):
        super().__init__()
        self.created_actions: dict[str, QAction] = {}
        self.view = View(self)

    def activeView(self) -> View:
        return self.view

    def createAction(self, name: str, text: str, menu: str = "tools/scripts") -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        self.created_actions[name] = action
        return action


class Krita(QObject):
    _instance: Optional["Krita"] = None

    def __init__(self):
        super().__init__()
        self._documents: list[Document] = []
        self._active: Optional[Document] = None
        self._settings: dict[tuple[str, str], str] = {}
        self.extensions: list[Any] = []
        self.docker_factories: list[Any] = []
        self._notifier = Notifier()
        self._window = Window()
        self._presets = {n: Resource(n) for n in ("a) Eraser Circle", "b) Basic-1", "b) Basic-5 Size", "c) Pencil-2")}
        self._app_actions: dict[str, QAction] = {}

    @classmethod
    def instance(cls) -> "Krita":
        if cls._instance is None:
            cls._instance = Krita()
        return cls._instance

    @classmethod
    def reset(cls) -> "Krita":
        cls._instance = Krita()
        return cls._instance

    def activeDocument(self) -> Optional[Document]:
        return self._active

    def setActiveDocument(self, doc: Optional[Document]) -> None:
        self._active = doc

    def documents(self) -> list[Document]:
        return list(self._documents)

    def createDocument(self, w: int, h: int, name: str, model: str, depth: str, profile: str = "", res: float = 300.0) -> Document:
        doc = Document(w, h, model, depth, name)
        doc._dpi = float(res)
        bg = doc.add_layer("Background")
        white = bytes([255]) * _BPP[(model, depth)]
        bg.setPixelData(white * (w * h), 0, 0, w, h)
        doc.log.clear()
        doc.setActiveNode(bg)
        self._documents.append(doc)
        return doc

    def closeDocument(self, doc: Document) -> None:
        self._documents.remove(doc)
        if self._active is doc:
            self._active = None

    def readSetting(self, group: str, name: str, default: str) -> str:
        return self._settings.get((group, name), default)

    def writeSetting(self, group: str, name: str, value: str) -> None:
        self._settings[(group, name)] = value

    def addExtension(self, ext: Any) -> None:
        self.extensions.append(ext)
        ext.setup()

    def addDockWidgetFactory(self, factory: Any) -> None:
        self.docker_factories.append(factory)

    def notifier(self) -> Notifier:
        return self._notifier

    def activeWindow(self) -> Window:
        return self._window

    def actions(self) -> list[QAction]:
        return list(self._window.created_actions.values()) + list(self._app_actions.values())

    def action(self, name: str) -> QAction:
        if name in self._window.created_actions:
            return self._window.created_actions[name]
        if name not in self._app_actions:
            a = QAction(name, self._window)
            a.setObjectName(name)
            self._app_actions[name] = a
        return self._app_actions[name]

    def version(self) -> str:
        return VERSION

    def resources(self, kind: str) -> dict:
        return dict(self._presets) if kind == "preset" else {}


class Extension(QObject):
    def __init__(self, parent: Any = None):
        super().__init__(parent if isinstance(parent, QObject) else None)


class DockWidget(QDockWidget):
    def canvasChanged(self, canvas: Any) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class DockWidgetFactoryBase:
    DockRight = 1
    DockLeft = 2


class DockWidgetFactory:
    def __init__(self, id_: str, area: int, cls: type):
        self.id, self.area, self.cls = id_, area, cls

    def create(self) -> DockWidget:
        dock = self.cls()
        dock.setObjectName(self.id)
        return dock
