"""The fake backend's POST /v1/panels and POST /v1/palettes (wave-2 contract), and how its colour layer shows
the panels and palettes of a request: inside each panel with a palette, that palette's first swatch; the
page's palettes colour everything else. Lets the plugin's tests and the real-Krita test see that the right
palette reached the right panel."""

from __future__ import annotations

from typing import Any, Optional

from PIL import Image, ImageDraw

PALETTE_FORMAT = "mangacolor-palette"


def grid_panels(w: int, h: int) -> list[dict]:
    """Two panels side by side (right one first: manga order), a 4 % gutter and margin."""
    m, g = int(w * 0.04), int(w * 0.02)
    mid = w // 2
    boxes = [(mid + g, m, w - m, h - m), (m, m, mid - g, h - m)]
    return [{"polygon": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "box": [x0, y0, x1, y1]} for x0, y0, x1, y1 in boxes]


def palette_of(image: Image.Image, name: str, source: str) -> dict:
    rgba = image.convert("RGBA")
    colours: dict = {}
    data = rgba.tobytes()
    for i in range(0, len(data), 4):
        r, g, b, a = data[i : i + 4]
        if a > 0:
            key = (r // 8 * 8, g // 8 * 8, b // 8 * 8)
            colours[key] = colours.get(key, 0) + 1
    total = sum(colours.values()) or 1
    top = sorted(colours.items(), key=lambda kv: -kv[1])[:8]
    hist = [0.0] * 216
    for (r, g, b), n in colours.items():
        hist[(r * 6 // 256) * 36 + (g * 6 // 256) * 6 + (b * 6 // 256)] += n / total
    if not top:
        hist[0] = 1.0
    return {
        "format": PALETTE_FORMAT, "version": 1, "name": name, "source": source,
        "swatches": [{"rgb": "#%02x%02x%02x" % rgb, "share": round(n / total, 4)} for rgb, n in top],
        "histogram": hist,
    }


def route(method: str, path: str, body: Any, unb64png) -> Optional[tuple[int, Any]]:
    if method != "POST" or path not in ("/v1/panels", "/v1/palettes"):
        return None
    body = body or {}
    if path == "/v1/panels":
        page = unb64png(body["page"])
        if body.get("order") not in (None, "rtl", "ltr"):
            return 400, {"error": "order must be rtl or ltr"}
        panels = grid_panels(*page.size)
        return 200, {"panels": panels if body.get("order", "rtl") == "rtl" else panels[::-1]}
    if not body.get("name") or body.get("source") not in ("reference", "hints", "selection"):
        return 400, {"error": "a palette needs a name and a source (reference, hints, selection)"}
    return 200, palette_of(unb64png(body["image"]), body["name"], body["source"])


def _first_swatch(palettes: list) -> Optional[tuple]:
    for p in palettes or []:
        for s in p.get("swatches") or []:
            text = s.get("rgb", "")
            return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)
    return None


def paint(color: Image.Image, body: dict) -> None:
    """Page palettes colour the page; a panel's own palette colours its polygon."""
    page = _first_swatch(body.get("palettes"))
    if page is not None:
        color.paste(page + (255,), (0, 0) + color.size)
    panels = body.get("panels")
    if isinstance(panels, list):
        draw = ImageDraw.Draw(color)
        for p in panels:
            rgb = _first_swatch(p.get("palettes"))
            if rgb is not None:
                draw.polygon([tuple(pt) for pt in p["polygon"]], fill=rgb + (255,))
