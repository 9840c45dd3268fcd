"""Helpers around colorizing: a ready-to-paint hint layer, and hints exported to Krita 5.2's Colorize Mask.

new_hint_layer: creates the `Hints` layer directly above the ink (if there is none), makes it the active
layer, selects a small hard round brush (3 px) and a hint-friendly foreground colour.

export_to_colorize_mask: Krita 5.2+ has a scripting API for Colorize Masks (krita.ColorizeMask); this turns
the hint layer into a colorize mask on the ink, one key stroke per hint colour, so Krita's own lazy-brush
fill can be used on the same hints. Without that API (Krita 5.1) the button is disabled and says why.
Krita objects are passed in (app, the krita module), so the logic runs against the test's mock too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import pixels, roles
from .errors import UserError
from .geometry import Rect
from .layers import type_name
from .page_reader import read_bgra8
from .result_layer import RESULT_PROFILE
from .role_finder import resolve_roles
from .settings import DEFAULT_HINT_LAYER

# Small hard round presets of Krita 5's default bundle, best first (checked in Krita 5.1.5).
HINT_BRUSH_PRESETS = ("b) Basic-5 Size", "b) Basic-1", "c) Pencil-2", "c) Pencil-1 Hard", "d) Ink-1 Precision")
HINT_BRUSH_SIZE = 3.0
HINT_COLOR = (232, 183, 150)  # a skin tone: the most common first hint on a manga page
MIN_HINT_SATURATION = 0.2  # a foreground colour less saturated than this (black, grey, white) is replaced
BRUSH_TOOL = "KritaShape/KisToolBrush"

COLORIZE_MASK_NAME = "MangaColor hints"
MAX_MASK_COLORS = 32
ALPHA_THRESHOLD = 128


def krita_version(app: Any) -> tuple[int, ...]:
    try:
        text = str(app.version())
    except Exception:
        return (0,)
    parts = []
    for p in text.split("-")[0].split("."):
        digits = "".join(ch for ch in p if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or (0,)


def colorize_mask_support(krita_module: Any, app: Any) -> tuple[bool, str]:
    """(supported, why not). Krita's ColorizeMask scripting API exists from Krita 5.2."""
    version = krita_version(app)
    if not hasattr(krita_module, "ColorizeMask") or not hasattr(getattr(app, "activeDocument", None), "__call__"):
        shown = ".".join(map(str, version)) if version != (0,) else "this Krita"
        return False, f"Needs Krita 5.2 or newer (its Colorize Mask scripting API); this is Krita {shown}."
    if version != (0,) and version < (5, 2):
        return False, f"Needs Krita 5.2 or newer; this is Krita {'.'.join(map(str, version))}."
    return True, ""


def _saturation(rgb: tuple[int, int, int]) -> float:
    hi, lo = max(rgb), min(rgb)
    return 0.0 if hi == 0 else (hi - lo) / hi


@dataclass
class HintLayerResult:
    created: bool
    layer_name: str
    brush: str
    message: str


def new_hint_layer(app: Any, krita_module: Any = None, hint_name: str = DEFAULT_HINT_LAYER) -> HintLayerResult:
    """Create (or find) the hint layer above the ink, make it active, and set up a hint brush."""
    doc = app.activeDocument()
    if doc is None:
        raise UserError("No document is open.")
    choices = roles.load(doc)
    res = resolve_roles(doc, choices, hint_name, "")
    hints = res.hints.node if res.hints is not None else None
    created = False
    if hints is None:
        name = hint_name or DEFAULT_HINT_LAYER
        hints = doc.createNode(name, "paintlayer")
        if hints is None:
            raise UserError("Krita could not create the hint layer.")
        if hints.colorModel() != "RGBA":  # hints must carry colour, even in a grayscale document
            hints.setColorSpace("RGBA", doc.colorDepth(), RESULT_PROFILE)
        parent = res.ink.node.parentNode()
        parent.addChildNode(hints, res.ink.node)  # directly above the ink
        created = True
        if choices["hints"].kind == roles.LAYER:  # a chosen hint layer that was deleted: use the new one
            roles.set_choice(doc, "hints", roles.Choice.layer(hints))
    activate_later(doc, hints)

    brush = _select_hint_brush(app, krita_module)
    where = f"above '{res.ink.name}'" if created else "(it already existed)"
    message = f"Hint layer '{hints.name()}' {'created ' if created else ''}{where} and active"
    message += f"; brush '{brush}'" if brush else "; no brush preset found"
    return HintLayerResult(created, hints.name(), brush, message + ".")


ACTIVATE_RETRIES_MS = (0, 60, 200, 500, 1000, 2000)


def activate_later(doc: Any, node: Any) -> None:
    """Make node the active layer. Krita's layer UI learns about a node added by a script only once the
    event loop has run, and until then setActiveNode() is ignored; so try now and again a few times."""
    uid = node.uniqueId()

    def is_active() -> bool:
        try:
            active = doc.activeNode()
            return active is not None and active.uniqueId() == uid
        except Exception:
            return True  # the document is gone: stop trying

    def attempt(rest: tuple) -> None:
        if is_active():
            return
        try:
            doc.setActiveNode(node)
        except Exception:
            return
        if rest and not is_active():
            _single_shot(rest[0], lambda: attempt(rest[1:]))

    doc.setActiveNode(node)
    if not is_active():
        _single_shot(ACTIVATE_RETRIES_MS[1], lambda: attempt(ACTIVATE_RETRIES_MS[2:]))


def _single_shot(ms: int, fn) -> None:
    from .qt import QTimer

    QTimer.singleShot(ms, fn)


def _select_hint_brush(app: Any, krita_module: Any) -> str:
    window = app.activeWindow() if hasattr(app, "activeWindow") else None
    view = window.activeView() if window is not None and hasattr(window, "activeView") else None
    if view is None:
        return ""
    try:
        action = app.action(BRUSH_TOOL)
        if action is not None:
            action.trigger()
    except Exception:
        pass
    chosen = ""
    try:
        presets = app.resources("preset")
    except Exception:
        presets = {}
    for name in HINT_BRUSH_PRESETS:
        if name in presets:
            chosen = name
            break
    else:
        basic = sorted(n for n in presets if "basic" in n.lower())
        chosen = basic[0] if basic else ""
    if chosen:
        try:
            view.setCurrentBrushPreset(presets[chosen])
        except Exception:
            chosen = ""
    for call in (
        lambda: view.setBrushSize(HINT_BRUSH_SIZE),
        lambda: view.setPaintingOpacity(1.0),
        lambda: view.setCurrentBlendingMode("normal"),
    ):
        try:
            call()
        except Exception:
            pass
    _set_hint_color(view, krita_module)
    return chosen


def _set_hint_color(view: Any, krita_module: Any) -> None:
    """Keep a colourful foreground colour; replace black/grey/white (useless as a hint) with a skin tone."""
    try:
        current = view.foregroundColor()
        qc = current.colorForCanvas(view.canvas()) if current is not None else None
        rgb = (qc.red(), qc.green(), qc.blue()) if qc is not None else (0, 0, 0)
    except Exception:
        rgb = (0, 0, 0)
    if _saturation(rgb) >= MIN_HINT_SATURATION:
        return
    try:
        from .qt import QColor

        managed = krita_module.ManagedColor.fromQColor(QColor(*HINT_COLOR), view.canvas())
        view.setForeGroundColor(managed)
    except Exception:
        pass


# --- hints -> colorize mask -------------------------------------------------------------------------------


_OPAQUE = bytes(255 if i >= ALPHA_THRESHOLD else 0 for i in range(256))


@dataclass
class Stroke:
    rgb: tuple
    x: int  # the colour's bounding box, in the coordinates of the data given to hint_strokes
    y: int
    width: int
    height: int
    alpha: bytes  # 8-bit, width*height: 255 where the hint has this colour
    pixels: int


def hint_strokes(bgra: bytes, width: int, height: int, max_colors: int = MAX_MASK_COLORS) -> tuple[list, int]:
    """Group hint pixels by colour: [Stroke], most pixels first, and how many colours were left out (beyond
    max_colors). A pixel is a hint where its alpha >= ALPHA_THRESHOLD. Hints are sparse (dots and strokes),
    so only their pixels are visited: runs are found with a regex over the alpha plane."""
    n = width * height
    if len(bgra) != n * 4:
        raise ValueError("hint data size does not match")
    import re

    opaque = bytes(bgra[3::4]).translate(_OPAQUE)
    where: dict[int, list[int]] = {}
    for run in re.finditer(rb"\xff+", opaque):
        for i in range(run.start(), run.end()):
            key = (bgra[i * 4 + 2] << 16) | (bgra[i * 4 + 1] << 8) | bgra[i * 4]
            where.setdefault(key, []).append(i)
    ordered = sorted(where, key=lambda k: (-len(where[k]), k))
    strokes = []
    for key in ordered[:max_colors]:
        idx = where[key]
        xs = [i % width for i in idx]
        ys = [i // width for i in idx]
        x0, y0 = min(xs), min(ys)
        w, h = max(xs) - x0 + 1, max(ys) - y0 + 1
        alpha = bytearray(w * h)
        for x, y in zip(xs, ys):
            alpha[(y - y0) * w + (x - x0)] = 255
        strokes.append(Stroke(((key >> 16) & 255, (key >> 8) & 255, key & 255), x0, y0, w, h, bytes(alpha), len(idx)))
    return strokes, max(0, len(ordered) - max_colors)


@dataclass
class MaskResult:
    colors: int
    left_out: int
    message: str


def export_to_colorize_mask(app: Any, krita_module: Any, hint_name: str = DEFAULT_HINT_LAYER) -> MaskResult:
    """Create a Colorize Mask on the ink whose key strokes are the hint layer's colours (Krita 5.2+)."""
    ok, why = colorize_mask_support(krita_module, app)
    if not ok:
        raise UserError(why)
    doc = app.activeDocument()
    if doc is None:
        raise UserError("No document is open.")
    res = resolve_roles(doc, roles.load(doc), hint_name, "")
    hints, ink = res.hints, res.ink
    if hints is None:
        raise UserError(f"No hint layer ('{hint_name}'): paint colour hints first (MangaColor: New hint layer).")
    if ink.kind != "paintlayer":
        raise UserError(f"The ink '{ink.name}' is {type_name(ink.kind)}: a colorize mask needs a paint layer.")
    w, h = int(doc.width()), int(doc.height())
    bounds = Rect.of(hints.node.bounds()).intersected(Rect(0, 0, w, h))
    if bounds.empty:
        raise UserError(f"The hint layer '{hints.name}' is empty.")
    bgra = read_bgra8(hints, bounds, f"The hint layer '{hints.name}'")
    if not pixels.has_content(bgra):
        raise UserError(f"The hint layer '{hints.name}' is empty.")
    strokes, left_out = hint_strokes(bgra, bounds.width, bounds.height)
    if not strokes:
        raise UserError(f"The hint layer '{hints.name}' has no opaque hint pixels.")

    from .qt import QByteArray, QColor

    mask = doc.createColorizeMask(COLORIZE_MASK_NAME)
    ink.node.addChildNode(mask, None)
    colors = [krita_module.ManagedColor.fromQColor(QColor(*st.rgb)) for st in strokes]
    mask.initializeKeyStrokeColors(colors, -1)
    for color, st in zip(colors, strokes):
        mask.setKeyStrokePixelData(QByteArray(st.alpha), color, bounds.x + st.x, bounds.y + st.y, st.width, st.height)
    for call in (lambda: mask.setEditKeyStrokes(True), lambda: mask.setShowOutput(True)):
        try:
            call()
        except Exception:
            pass
    activate_later(doc, mask)
    msg = (
        f"Colorize mask '{COLORIZE_MASK_NAME}' added to '{ink.name}' with {len(strokes)} hint colour"
        f"{'s' if len(strokes) != 1 else ''}; press Update in the Colorize Mask tool to fill."
    )
    if left_out:
        msg += f" {left_out} rarer colours were left out (at most {MAX_MASK_COLORS})."
    return MaskResult(len(strokes), left_out, msg)
