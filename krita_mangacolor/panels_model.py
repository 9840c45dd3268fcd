"""Detect panels and Save palette (issue 12): the two backend calls of the Panels & palettes box, beside the
Colorize run of ui_model.py and sharing its connection (find or start the backend) and nothing else.

    Detect panels: the ink (whole page) is read on the GUI thread, made a gray PNG in a worker thread,
        POST /v1/panels {"page", "order"} -> polygons -> the `Panels` vector layer (panels_layer.write_panels).
    Save palette:  the pixels of a reference layer, of the hint layer, or of the selection on the coloured
        page (the MangaColor layer, else the visible image) -> RGBA PNG (worker) -> POST /v1/palettes
        {"name", "image", "source"} -> the palette JSON -> the document's library (palette_library.add).
Nothing blocks Krita: Qt networking and a worker thread, like a Colorize. One call at a time, and none while
a Colorize runs (a Colorize started meanwhile wins: the call is dropped and says so).
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any, Callable, Optional

from . import imaging, palette_library, panel_choices, pixels, roles
from .errors import UserError
from .geometry import Rect
from .layers import Layer, find_by_uid_text, find_layer, is_own_layer
from .page_reader import read_raw
from .panels_layer import write_panels
from .qt import QObject, pyqtSignal, qbytes
from .role_finder import resolve_roles
from .settings import RESULT_LAYER_NAME
from .worker import Worker

PANELS_PATH = "/v1/panels"
PALETTES_PATH = "/v1/palettes"
SOURCES = ("reference", "hints", "selection")


def _gray_png_b64(raw: Any) -> str:
    bgra = pixels.to_bgra8(qbytes(raw.data), raw.model, raw.depth, raw.rect.area)
    raw.data = b""
    img = imaging.wrap_bgra8(bgra, raw.rect.width, raw.rect.height)
    return imaging.encode_png_b64(imaging.ink_gray(img, opaque=False))


def _rgba_png_b64(bgra: bytes, width: int, height: int, mask: Optional[bytes]) -> str:
    if mask is not None:
        bgra = imaging.apply_mask(bgra, mask, width, height)
    if not pixels.has_content(bgra):
        raise UserError("There are no coloured pixels to make a palette of.")
    return imaging.encode_png_b64(imaging.wrap_bgra8(bgra, width, height))


def parse_panels(value: Any) -> list[list[tuple[float, float]]]:
    """The answer of POST /v1/panels -> polygons (page pixels). Raises UserError for anything else."""
    if not isinstance(value, dict) or not isinstance(value.get("panels"), list):
        raise UserError(f"The backend's panel answer is not understood: {str(value)[:200]}")
    out = []
    for p in value["panels"]:
        poly = p.get("polygon") if isinstance(p, dict) else None
        try:
            pts = [(float(x), float(y)) for x, y in poly or []]
        except (TypeError, ValueError):
            continue
        if len(pts) >= 3:
            out.append(pts)
    return out


class PanelsModel(QObject):
    changed = pyqtSignal()  # status / busy
    document_changed = pyqtSignal()  # the Panels layer, the library or the panel choices changed

    def __init__(self, colorize_model: Any, parent: Optional[QObject] = None):
        super().__init__(parent)
        self.model = colorize_model
        self.app = colorize_model.app
        self.worker = Worker(self)
        self.busy = False
        self.ok = True
        self.status = ""
        self._run = 0
        self.last_polygons: list = []  # the backend's last answer (page pixels), for the real-Krita test
        colorize_model.changed.connect(self._colorize_changed)

    # --- state ---

    def _set(self, busy: bool, status: str, ok: bool = True) -> None:
        self.busy, self.status, self.ok = busy, status, ok
        self.changed.emit()

    def _fail(self, run: int, message: str) -> None:
        if run == self._run:
            self._set(False, message, ok=False)

    def _colorize_changed(self) -> None:
        if self.busy and self.model.busy:
            self._run += 1
            self._set(False, "Interrupted by Colorize: try again when it is done.", ok=False)

    def _document(self, doc: Any) -> Any:
        doc = doc if doc is not None else self.app.activeDocument()
        if doc is None:
            raise UserError("No document is open.")
        return doc

    def _start(self, what: str, read: Callable[[], Any], encode: Callable[[Any], dict], path: str,
               answer: Callable[[Any], str]) -> None:
        """read (GUI) -> encode (worker) -> ensure the backend -> POST path -> answer(json) (GUI) -> status."""
        if self.busy or self.model.busy:
            return
        self._run += 1
        run = self._run
        self._set(True, f"{what}...")
        try:
            raw = read()
        except UserError as exc:
            self._fail(run, str(exc))
            return

        def guarded(fn: Callable[..., None]) -> Callable[..., None]:
            def call(*args: Any) -> None:
                if run != self._run:
                    return
                try:
                    fn(*args)
                except UserError as exc:
                    self._fail(run, str(exc))
                except Exception as exc:  # never leave the box busy
                    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
                    self._fail(run, f"Unexpected error in the MangaColor plugin: {exc.__class__.__name__}: {exc}")
            return call

        def encoded(body: Any, error: Optional[BaseException]) -> None:
            if error is not None:
                raise error
            data = json.dumps(body).encode("utf-8")
            conn = self.model.connection
            conn.ensure(
                ready=guarded(lambda: conn.client._send("POST", path, data, guarded(replied), None)),
                fail=guarded(lambda message: self._fail(run, message)),
                starting=guarded(lambda: self._set(True, "Starting the MangaColor backend...")),
            )

        def replied(r: Any) -> None:
            if not r.ok:
                if r.status == 404:
                    raise UserError(f"This backend cannot do that yet ({path} is missing): update the backend.")
                raise UserError(f"The backend could not {what.lower()}: {r.error}")
            self._set(False, answer(r.data))
            self.document_changed.emit()

        self.worker.submit(lambda: encode(raw), guarded(encoded))

    # --- Detect panels ---

    def detect_panels(self, doc: Any = None, order: str = "rtl") -> None:
        target: dict = {}

        def read() -> Any:
            d = self._document(doc)
            s = self.model.connection.reload_settings()
            ink = resolve_roles(d, roles.load(d), s.hint_layer, s.reference_layer).ink
            target.update(doc=d, size=(int(d.width()), int(d.height())))
            return read_raw(ink, Rect(0, 0, int(d.width()), int(d.height())), f"The ink layer '{ink.name}'")

        def answer(value: Any) -> str:
            d = target["doc"]
            if (int(d.width()), int(d.height())) != target["size"]:
                raise UserError("The canvas changed size while the panels were detected: detect them again.")
            polygons = parse_panels(value)
            if not _in_a_view(self.app, d):  # Krita 5.1 crashes adding shapes to a document no window shows
                raise UserError("Open the page in a window first: the panels are written as shapes of its view.")
            write_panels(d, polygons)
            self.last_polygons = polygons
            if not polygons:
                return "No panels found: draw them as closed shapes in the 'Panels' vector layer."
            return (f"{len(polygons)} panels in the 'Panels' layer: correct them with the shape tools if needed, "
                    "then choose a reference or palette per panel.")

        self._start("Detecting panels", read, lambda raw: {"page": _gray_png_b64(raw), "order": order}, PANELS_PATH, answer)

    # --- Save palette ---

    def save_palette(self, name: str, source: str, doc: Any = None, layer_uid: str = "") -> None:
        """source: "reference" (layer_uid, else the page's reference layer), "hints" or "selection"."""
        name = (name or "").strip()
        target: dict = {}

        def read() -> Any:
            if not name:
                raise UserError("Give the palette a name first.")
            if source not in SOURCES:
                raise UserError(f"Unknown palette source {source!r}.")
            d = self._document(doc)
            target["doc"] = d
            return self._read_source(d, source, layer_uid)

        def encode(raw: tuple) -> dict:
            bgra, w, h, mask = raw
            return {"name": name, "image": _rgba_png_b64(bgra, w, h, mask), "source": source}

        def answer(value: Any) -> str:
            palette = palette_library.check_palette(dict(value or {}, name=name), "the backend's palette")
            palette_library.add(target["doc"], palette)
            n = len(palette.get("swatches") or [])
            return f"Palette '{name}' saved in the document ({n} colours)."

        self._start(f"Saving the palette '{name}'", read, encode, PALETTES_PATH, answer)

    def _read_source(self, doc: Any, source: str, layer_uid: str) -> tuple:
        w, h = int(doc.width()), int(doc.height())
        page = Rect(0, 0, w, h)
        s = self.model.connection.reload_settings()
        if source == "selection":
            sel = doc.selection()
            if sel is None:
                raise UserError("Select the coloured area to take the palette from first.")
            box = Rect(int(sel.x()), int(sel.y()), int(sel.width()), int(sel.height())).intersected(page)
            if box.empty:
                raise UserError("The selection is empty.")
            mask = bytes(sel.pixelData(box.x, box.y, box.width, box.height))
            own = next((n for n in _all(doc) if is_own_layer(n.name(), n.type())), None)
            if own is not None:
                raw = read_raw(Layer(own), box, f"The '{RESULT_LAYER_NAME}' layer")
                bgra = pixels.to_bgra8(qbytes(raw.data), raw.model, raw.depth, box.area)
            else:
                data = qbytes(doc.pixelData(box.x, box.y, box.width, box.height))
                bgra = pixels.to_bgra8(data, doc.colorModel(), doc.colorDepth(), box.area)
            return bgra, box.width, box.height, mask
        if source == "hints":
            layer = resolve_roles(doc, roles.load(doc), s.hint_layer, s.reference_layer).hints
            if layer is None:
                raise UserError(f"No hint layer ('{s.hint_layer}') to take the palette from.")
        else:
            node = find_by_uid_text(doc, layer_uid) if layer_uid else None
            if node is None:
                ref = resolve_roles(doc, roles.load(doc), s.hint_layer, s.reference_layer).reference
                node = ref.node if ref is not None else find_layer(doc, s.reference_layer)
            if node is None:
                raise UserError("No reference layer to take the palette from: choose one.")
            layer = Layer(node)
        box = Rect.of(layer.node.bounds()).intersected(page)
        if box.empty:
            raise UserError(f"The layer '{layer.name}' is empty.")
        raw = read_raw(layer, box, f"The layer '{layer.name}'")
        return pixels.to_bgra8(qbytes(raw.data), raw.model, raw.depth, box.area), box.width, box.height, None

    # --- the library and the choices (quick, GUI thread) ---

    def remove_palette(self, doc: Any, name: str) -> None:
        if palette_library.remove(doc, name):
            panel_choices.forget_palette(doc, name)
            self._set(False, f"Palette '{name}' removed from the document.")
            self.document_changed.emit()

    def export_palettes(self, doc: Any, path: str, names: list[str]) -> None:
        chosen = [p for p in palette_library.load(doc) if p["name"] in names] if names else palette_library.load(doc)
        try:
            palette_library.export_file(path, chosen)
        except UserError as exc:
            self._set(False, str(exc), ok=False)
            return
        self._set(False, f"Exported {len(chosen)} palette{'s' if len(chosen) != 1 else ''} to {path}.")

    def import_palettes(self, doc: Any, path: str) -> None:
        try:
            palettes = palette_library.import_file(path)
        except UserError as exc:
            self._set(False, str(exc), ok=False)
            return
        for p in palettes:
            palette_library.add(doc, p)
        self._set(False, f"Imported {', '.join(repr(p['name']) for p in palettes)} into the document.")
        self.document_changed.emit()

    def set_panel_choice(self, doc: Any, panel_name: str, choice: panel_choices.PanelChoice) -> None:
        panel_choices.set_panel(doc, panel_name, choice)
        self._set(False, f"{panel_name}: {choice.describe()}.")
        self.document_changed.emit()

    def set_page_palettes(self, doc: Any, names: list[str]) -> None:
        panel_choices.set_page_palettes(doc, names)
        self._set(False, "Page palettes: " + (", ".join(names) if names else "none") + ".")
        self.document_changed.emit()


def _in_a_view(app: Any, doc: Any) -> bool:
    if not hasattr(app, "windows"):
        return True  # no way to ask (the tests' mock)
    try:
        return any(v.document() == doc for w in app.windows() for v in w.views())
    except Exception:  # pragma: no cover - defensive
        return True


def _all(doc: Any):
    from .layers import iter_nodes

    return iter_nodes(doc.rootNode())


_instances: dict[int, PanelsModel] = {}


def instance(colorize_model: Any) -> PanelsModel:
    """The one PanelsModel of a ColorizeModel (shared by every window's docker)."""
    pm = _instances.get(id(colorize_model))
    if pm is None or pm.model is not colorize_model:
        pm = PanelsModel(colorize_model, parent=colorize_model)
        _instances[id(colorize_model)] = pm
    return pm
