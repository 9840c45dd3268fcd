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
    packed: bytes = b""  # decode(): the zlib payload as it came (kept as is, e.g. for the history)

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


def deflate(data: bytes) -> bytes:
    """zlib level 1 (the run-length strategy packs a page's ink faster, but inflates colour layers at half the
    speed: the default strategy, like the backend's)."""
    return zlib.compress(data, ZLIB_LEVEL)


def encode(fields: dict, frames: list, compress: bool = True, raw_up_to: int = 0) -> bytes:
    """fields + frames -> a frames body. Blobs of more than raw_up_to bytes are compressed (when compress):
    on localhost moving a few raw MB costs less than compressing them (wire.py)."""
    specs, parts = [], []
    for f in frames:
        packed = compress and len(f.data) > raw_up_to
        payload = deflate(f.data) if packed else bytes(f.data)
        specs.append({
            "name": f.name, "kind": f.kind, "width": f.width, "height": f.height,
            "box": list(f.full_box), "codec": "zlib" if packed else "raw", "length": len(payload),
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
            packed = payload if s.get("codec") == "zlib" else b""
            frames.append(Frame(str(s["name"]), s["kind"], int(s["width"]), int(s["height"]), data, (x, y, w, h), packed))
        except (KeyError, TypeError, ValueError, zlib.error) as exc:
            raise FrameError(f"the backend's answer has a broken blob: {exc}") from None
    return fields, frames


def alpha_box(bgra: bytes, width: int, height: int) -> Optional[tuple]:
    """The box (x, y, w, h) of the pixels with alpha > 0 of a width x height BGRA image; None when there are none.
    Byte strips in C (bytes.strip), one per row of the painted band: milliseconds for a page of dots."""
    alpha = bytes(bgra[3::4])
    head = len(alpha) - len(alpha.lstrip(b"\0"))
    if head == len(alpha):
        return None
    tail = len(alpha.rstrip(b"\0")) - 1
    y0, y1 = head // width, tail // width
    x0, x1 = width, -1
    for y in range(y0, y1 + 1):
        row = alpha[y * width : (y + 1) * width]
        left = len(row) - len(row.lstrip(b"\0"))
        if left == width:
            continue
        x0 = min(x0, left)
        x1 = max(x1, len(row.rstrip(b"\0")) - 1)
    return (x0, y0, x1 - x0 + 1, y1 - y0 + 1)


def full_pixels(frame: Frame) -> bytes:
    """The whole width x height image of a frame: its box's pixels, paper (gray8 255) or transparent around them."""
    c = CHANNELS[frame.kind]
    x, y, w, h = frame.full_box
    if (x, y, w, h) == (0, 0, frame.width, frame.height):
        return bytes(frame.data)
    row = frame.width * c
    out = bytearray((b"\xff" if c == 1 else b"\0") * (row * frame.height))
    for r in range(h):
        start = (y + r) * row + x * c
        out[start : start + w * c] = frame.data[r * w * c : (r + 1) * w * c]
    return bytes(out)
