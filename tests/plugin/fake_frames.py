"""The fake backend's side of the wave-2 contract for issues 13 and 15 (tests/plugin/fake_backend.py uses it):
the frames transport (a frames request turned into the JSON body it stands for; a result as frames), the
`variants` and `seed` options (variant i is FILL shifted by seed + i), and the draft (painted where its alpha is).
"""

from __future__ import annotations

import base64
import io
import sys
from pathlib import Path
from typing import Any

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from krita_mangacolor import frames  # noqa: E402  (pure Python: struct, zlib, json)

CONTENT_TYPE = frames.CONTENT_TYPE
VARIANT_OPTIONS = [
    {"name": "variants", "type": "int", "min": 1, "max": 8, "default": 1, "help": "How many colourings to make."},
    {"name": "seed", "type": "int", "min": 0, "max": 999999, "default": 0, "help": "Variant i uses seed + i."},
]


def _b64png(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _image(f: frames.Frame) -> Image.Image:
    data = frames.full_pixels(f)
    if f.kind == "gray8":
        return Image.frombytes("L", (f.width, f.height), data)
    b, g, r, a = Image.frombytes("RGBA", (f.width, f.height), data).split()
    return Image.merge("RGBA", (r, g, b, a))


def request_body(raw: bytes) -> dict:
    """A frames request -> the JSON body it stands for (images as base64 PNG), plus what travelled:
    `_transport` "frames" and `_blobs` [(name, kind, box)]. Raises frames.FrameError like the backend."""
    fields, blobs = frames.decode(raw)
    for key in ("ink", "hints", "references", "draft"):
        if key in fields:
            raise frames.FrameError(f"'{key}' travels as a blob in a frames body, not as a field")
    body = dict(fields, _transport="frames", _blobs=[(f.name, f.kind, list(f.full_box)) for f in blobs])
    body["references"] = [_b64png(_image(f)) for f in blobs if f.name == "reference"]
    for f in blobs:
        if f.name in ("ink", "hints", "draft"):
            body[f.name] = _b64png(_image(f))
    for p in body.get("panels") if isinstance(body.get("panels"), list) else []:
        if isinstance(p, dict) and "reference_blobs" in p:
            p["references"] = [_b64png(_image(blobs[i])) for i in p.pop("reference_blobs")]
    return body


def _bgra(img: Image.Image) -> bytes:
    r, g, b, a = img.convert("RGBA").split()
    return Image.merge("RGBA", (b, g, r, a)).tobytes()


def paint(size: tuple, fill: tuple, body: dict, number: int, hints: Any, unb64png: Any) -> Image.Image:
    """Variant `number` (1-based) of the fake colour layer: FILL (shifted by seed + number for variants > 1),
    the draft painted where its alpha is, the hints over it; opaque."""
    opts = body.get("options") or {}
    if number > 1:
        k = (int(opts.get("seed") or 0) + number - 1) * 37
        fill = ((fill[0] + k) % 256, (fill[1] + 2 * k) % 256, (fill[2] + 3 * k) % 256)
    out = Image.new("RGBA", size, tuple(fill) + (255,))
    for layer in ((unb64png(body["draft"]) if body.get("draft") else None), hints):
        if layer is not None:
            layer = layer.convert("RGBA")
            out.paste(layer, (0, 0), layer)
    out.putalpha(255)
    return out


def variant_count(body: dict) -> int:
    return max(1, int((body.get("options") or {}).get("variants") or 1))


def result_frames(answer: dict) -> bytes:
    """A JSON result (color_layer and variants as base64 PNG) as the frames answer."""
    def frame(name: str, text: str) -> frames.Frame:
        img = Image.open(io.BytesIO(base64.b64decode(text)))
        return frames.Frame(name, "bgra8", img.width, img.height, _bgra(img))

    blobs = [frame("color_layer", answer["color_layer"])] + [frame("variant", v) for v in answer.get("variants") or []]
    fields = {k: answer[k] for k in ("width", "height", "model_version", "seconds")}
    return frames.encode(fields, blobs)


def wants_frames(accept: str | None) -> bool:
    return any(p.split(";")[0].strip() == CONTENT_TYPE for p in (accept or "").split(","))


def is_frames(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip() == CONTENT_TYPE
