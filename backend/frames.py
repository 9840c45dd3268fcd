"""The lean wire format between the Krita plugin and the backend on the same machine ("frames").

The public API takes and gives base64 PNG inside JSON: portable, but on every click the plugin
would PNG-encode the page, the server decode it, and the same again for the result; on a 600-dpi
page that is seconds of work for bytes that only cross localhost. Frames carry the pixels as they
are (8-bit gray for the ink, BGRA for everything else, Krita's own order), optionally zlib-compressed
at level 1 (cheap, and hint layers are mostly empty), and a sub-rectangle (`box`) so a hint layer
only sends the part that holds paint.

Layout (content type `application/x-mangacolor-frames`)::

    b"MCF1" | header length (uint32, little-endian) | header (UTF-8 JSON) | blob 0 | blob 1 | ...

    header = {"fields": {...the JSON body's other fields: options, outputs, ...},
              "blobs": [{"name": "ink" | "hints" | "reference" | "draft" | "color_layer",
                         "kind": "gray8" | "bgra8", "width": W, "height": H,
                         "box": [x, y, w, h],          # the blob covers this part of the W x H image
                         "codec": "raw" | "zlib", "length": bytes in the body}]}

Outside its box an image is paper (gray8: 255) or transparent (bgra8: 0). The plugin's writer is
`krita_mangacolor/frames.py` (pure Python: Krita has no numpy); a test checks that what it writes is
what this module reads. Everything here is checked before any pixel is inflated: a hostile body
gets a `FrameError` naming what is wrong, and never inflates past its declared size.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .imageio import MAX_PIXELS, MAX_SIDE

MAGIC = b"MCF1"
CONTENT_TYPE = "application/x-mangacolor-frames"
CHANNELS = {"gray8": 1, "bgra8": 4}
FILL = {"gray8": 255, "bgra8": 0}  # outside the box: paper / transparent
CODECS = ("raw", "zlib")
MAX_HEADER_BYTES = 1 << 20
MAX_BLOBS = 32
ZLIB_LEVEL = 1


class FrameError(ValueError):
    """A frames body that cannot be read; the message says what is wrong."""


@dataclass
class Blob:
    name: str
    kind: str
    width: int
    height: int
    box: tuple[int, int, int, int]
    pixels: np.ndarray  # uint8, box h x w (x channels for bgra8)

    def full(self) -> np.ndarray:
        """The whole W x H image: the box's pixels, paper or transparent around them."""
        c = CHANNELS[self.kind]
        x, y, w, h = self.box
        if (x, y, w, h) == (0, 0, self.width, self.height):
            return self.pixels
        shape = (self.height, self.width) + ((c,) if c > 1 else ())
        out = np.full(shape, FILL[self.kind], np.uint8)
        out[y : y + h, x : x + w] = self.pixels
        return out


def _int(value: Any, what: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise FrameError(f"{what} must be a whole number between {low} and {high}")
    return value


def _inflate(data: bytes, size: int, name: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, size + 1)  # never more than declared (+1 to notice "more")
    except zlib.error as exc:
        raise FrameError(f"{name}: corrupt zlib data ({exc})") from None
    if len(out) != size or inflater.unconsumed_tail or not inflater.eof:
        raise FrameError(f"{name}: the compressed data does not hold exactly the declared {size} bytes")
    return out


@dataclass
class BlobSpec:
    """A blob's checked description: where its bytes are in the body, nothing inflated yet."""

    name: str
    kind: str
    width: int
    height: int
    box: tuple[int, int, int, int]
    codec: str
    offset: int
    length: int

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def read(self, body: bytes | memoryview) -> Blob:
        """Inflate (never past the declared size) and wrap the blob's pixels."""
        x, y, w, h = self.box
        data = memoryview(body)[self.offset : self.offset + self.length]  # no copy: raw pixels are read in place
        size = w * h * CHANNELS[self.kind]
        if self.codec == "zlib":
            data = _inflate(data, size, self.name)
        elif len(data) != size:
            raise FrameError(f"{self.name}: {self.length} bytes given, {size} expected for {w}x{h} {self.kind}")
        shape = (h, w) + ((4,) if self.kind == "bgra8" else ())
        pixels = np.frombuffer(data, np.uint8).reshape(shape)
        return Blob(self.name, self.kind, self.width, self.height, self.box, pixels)


def _spec(spec: Any, body_length: int, offset: int) -> BlobSpec:
    if not isinstance(spec, dict):
        raise FrameError("each blob is described by an object")
    name = spec.get("name")
    if not isinstance(name, str) or not name or len(name) > 40:
        raise FrameError("each blob needs a name")
    kind, codec = spec.get("kind"), spec.get("codec", "raw")
    if kind not in CHANNELS:
        raise FrameError(f"{name}: kind must be one of {', '.join(CHANNELS)}")
    if codec not in CODECS:
        raise FrameError(f"{name}: codec must be one of {', '.join(CODECS)}")
    width = _int(spec.get("width"), f"{name}: width", 1, MAX_SIDE)
    height = _int(spec.get("height"), f"{name}: height", 1, MAX_SIDE)
    if width * height > MAX_PIXELS:
        raise FrameError(f"{name}: {width}x{height} is larger than the limit ({MAX_PIXELS} pixels)")
    box = spec.get("box", [0, 0, width, height])
    if not isinstance(box, list) or len(box) != 4:
        raise FrameError(f"{name}: box is [x, y, width, height]")
    x = _int(box[0], f"{name}: box x", 0, width)
    y = _int(box[1], f"{name}: box y", 0, height)
    w = _int(box[2], f"{name}: box width", 0, width - x)
    h = _int(box[3], f"{name}: box height", 0, height - y)
    length = _int(spec.get("length"), f"{name}: length", 0, body_length - offset)
    if codec == "raw" and length != w * h * CHANNELS[kind]:
        raise FrameError(f"{name}: {length} bytes given, {w * h * CHANNELS[kind]} expected for {w}x{h} {kind}")
    return BlobSpec(name, kind, width, height, (x, y, w, h), codec, offset, length)


def parse(body: bytes) -> tuple[dict[str, Any], list[BlobSpec]]:
    """A frames body -> (fields, blob specs in order), every size and offset checked, nothing
    inflated: cheap, so a server can refuse a bad or untimely body before any pixel work."""
    view = memoryview(body)
    if len(view) < 8 or bytes(view[:4]) != MAGIC:
        raise FrameError("not a MangaColor frames body (bad magic)")
    (header_len,) = struct.unpack("<I", view[4:8])
    if header_len > min(MAX_HEADER_BYTES, len(view) - 8):
        raise FrameError("frames header length is out of range")
    try:
        header = json.loads(bytes(view[8 : 8 + header_len]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FrameError("frames header is not valid JSON") from None
    if not isinstance(header, dict):
        raise FrameError("frames header must be an object")
    fields = header.get("fields", {})
    raw_specs = header.get("blobs", [])
    if not isinstance(fields, dict) or not isinstance(raw_specs, list):
        raise FrameError('frames header is {"fields": {...}, "blobs": [...]}')
    if len(raw_specs) > MAX_BLOBS:
        raise FrameError(f"at most {MAX_BLOBS} blobs")
    offset = 8 + header_len
    specs = []
    for raw in raw_specs:
        spec = _spec(raw, len(view), offset)
        specs.append(spec)
        offset += spec.length
    if offset != len(view):
        raise FrameError(f"{len(view) - offset} bytes after the last blob")
    return fields, specs


def decode(body: bytes) -> tuple[dict[str, Any], list[Blob]]:
    """A frames body -> (fields, blobs in order)."""
    fields, specs = parse(body)
    return fields, [spec.read(body) for spec in specs]


def encode(fields: dict[str, Any], blobs: list[tuple[str, str, np.ndarray, tuple[int, int] | None, tuple[int, int, int, int] | None]],
           compress: bool = True) -> bytes:
    """fields + [(name, kind, pixels of the box, (W, H) of the image or None = the box is the image,
    box or None)] -> a frames body. Used for the result and by tests and tools."""
    specs, parts = [], []
    for name, kind, pixels, size, box in blobs:
        pixels = np.ascontiguousarray(pixels, np.uint8)
        h, w = pixels.shape[:2]
        width, height = size if size is not None else (w, h)
        raw = pixels.tobytes()
        data = zlib.compress(raw, ZLIB_LEVEL) if compress else raw
        specs.append({
            "name": name, "kind": kind, "width": width, "height": height,
            "box": list(box) if box is not None else [0, 0, w, h],
            "codec": "zlib" if compress else "raw", "length": len(data),
        })
        parts.append(data)
    header = json.dumps({"fields": fields, "blobs": specs}, separators=(",", ":")).encode("utf-8")
    return b"".join([MAGIC, struct.pack("<I", len(header)), header, *parts])


def rgba_to_bgra(rgba: np.ndarray) -> np.ndarray:
    """RGBA <-> BGRA (the swap is its own inverse)."""
    if rgba.dtype == np.uint8 and rgba.ndim == 3 and rgba.shape[2] == 4 and rgba.size:
        import cv2

        return cv2.cvtColor(np.ascontiguousarray(rgba), cv2.COLOR_RGBA2BGRA)  # 10x numpy's channel gather
    return rgba[..., [2, 1, 0, 3]]
