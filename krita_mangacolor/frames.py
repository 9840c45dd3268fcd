"""The plugin's side of the lean wire format ("frames"; the format is defined in backend/frames.py):
raw 8-bit gray or BGRA pixels, zlib level 1, with a box so a hint layer sends only its painted part.

Pure Python (struct, zlib, json): Krita has no numpy. No Qt either, so it runs in a worker thread.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Optional

MAGIC = b"MCF1"
CONTENT_TYPE = "application/x-mangacolor-frames"
CHANNELS = {"gray8": 1, "bgra8": 4}
ZLIB_LEVEL = 1


class FrameError(ValueError):
    pass


@dataclass
class Frame:
    """One image of a request or a result: `data` covers `box` (x, y, w, h) of a width x height image."""

    name: str
    kind: str
    width: int
    height: int
    data: bytes
    box: Optional[tuple] = None

    @property
    def full_box(self) -> tuple:
        return self.box if self.box is not None else (0, 0, self.width, self.height)


def crop(data: bytes, width: int, channels: int, box: tuple) -> bytes:
    """The rows of `box` out of a width-wide image's bytes."""
    x, y, w, h = box
    row, start = width * channels, x * channels
    if x == 0 and w == width:
        return bytes(data[y * row : (y + h) * row])
    return b"".join(data[(y + r) * row + start : (y + r) * row + start + w * channels] for r in range(h))


def encode(fields: dict, frames: list, compress: bool = True) -> bytes:
    specs, parts = [], []
    for f in frames:
        payload = zlib.compress(f.data, ZLIB_LEVEL) if compress else bytes(f.data)
        specs.append({
            "name": f.name, "kind": f.kind, "width": f.width, "height": f.height,
            "box": list(f.full_box), "codec": "zlib" if compress else "raw", "length": len(payload),
        })
        parts.append(payload)
    header = json.dumps({"fields": fields, "blobs": specs}, separators=(",", ":")).encode("utf-8")
    return b"".join([MAGIC, struct.pack("<I", len(header)), header] + parts)


def decode(body: bytes) -> tuple:
    """A frames body from the backend -> (fields, [Frame]); the pixels inflated, box kept."""
    if len(body) < 8 or bytes(body[:4]) != MAGIC:
        raise FrameError("the backend's answer is not in the frames format")
    (n,) = struct.unpack("<I", bytes(body[4:8]))
    try:
        header = json.loads(bytes(body[8 : 8 + n]).decode("utf-8"))
        fields: Any = header["fields"]
        specs = header["blobs"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise FrameError("the backend's answer has a broken frames header") from None
    offset, frames = 8 + n, []
    for s in specs:
        try:
            payload = bytes(body[offset : offset + int(s["length"])])
            offset += int(s["length"])
            data = zlib.decompress(payload) if s.get("codec") == "zlib" else payload
            x, y, w, h = (int(v) for v in s["box"])
            if len(data) != w * h * CHANNELS[s["kind"]]:
                raise FrameError(f"the backend's {s.get('name')} has the wrong size")
            frames.append(Frame(str(s["name"]), s["kind"], int(s["width"]), int(s["height"]), data, (x, y, w, h)))
        except (KeyError, TypeError, ValueError, zlib.error) as exc:
            raise FrameError(f"the backend's answer has a broken blob: {exc}") from None
    return fields, frames
