"""The backend's answer to GET /v1/jobs/{id}/result -> what the document needs (worker thread).

Two shapes (docs: the API contract): JSON with base64 PNG (`color_layer`, `variants` for variants 2..N), or a
frames body (frames.py: blob "color_layer" as 8-bit BGRA, then one "variant" blob per extra variant), decoded
straight into the BGRA bytes setPixelData wants: no PNG decoding. Every image is checked against the size the
backend said and the area it was asked for (result_layer.prepare_result). Pure: QImage and bytes only.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass, field
from typing import Any, Optional

from . import api, frames, imaging
from .errors import UserError
from .geometry import Target
from .qt import QImage, Qt
from .result_layer import Prepared, prepare_png, prepare_result

THUMB_PX = 96  # the long side of a variant's thumbnail in the docker
MAX_VARIANT_BYTES = 512 * 1024 * 1024  # the variants kept for picking (zlib BGRA), all together


@dataclass
class Variant:
    """One of a run's variants, kept until the next run: its pixels (zlib level 1 of BGRA) and a thumbnail."""

    number: int  # 1 = the result the run put into the document
    bgra_z: bytes
    thumb: Any  # QImage (made in the worker; the docker makes a QPixmap of it)

    def bgra(self) -> bytes:
        return zlib.decompress(self.bgra_z)


@dataclass
class Decoded:
    prepared: Prepared  # variant 1, in the result layer's format, the selection mask applied
    width: int
    height: int
    model_version: str
    seconds: dict
    transport: str  # "frames" or "json"
    png: bytes = b""  # for the history: the PNG the backend sent (JSON), or
    bgra_z: Optional[bytes] = None  # zlib BGRA (frames)
    variants: list = field(default_factory=list)  # [Variant], empty when the result has one image
    notes: list = field(default_factory=list)


def thumbnail(bgra: bytes, width: int, height: int) -> QImage:
    img = imaging.wrap_bgra8(bgra, width, height)
    return img.scaled(THUMB_PX, THUMB_PX, Qt.KeepAspectRatio, Qt.SmoothTransformation).copy()


def _png_bgra(png: bytes, what: str, said: tuple) -> bytes:
    try:
        img = imaging.decode_png(png, what)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if (img.width(), img.height()) != said:
        raise UserError(f"The backend's {what} is {img.width()}x{img.height()} but it said {said[0]}x{said[1]}.")
    return imaging.bgra8_from_qimage(img)


class _Pixels:
    """A frames blob's whole BGRA image, and its zlib stream as it came when that is the whole image already
    (kept for the history and the variants as is: no compressing again)."""

    def __init__(self, frame: frames.Frame):
        self.frame = frame
        full = frame.full_box == (0, 0, frame.width, frame.height)
        self.packed = frame.packed if full and frame.packed else None

    def __call__(self) -> bytes:
        return frames.full_pixels(self.frame)


def _images(data: bytes) -> tuple:
    """-> (width, height, model_version, seconds, transport, png of variant 1 or b'', [callables giving BGRA])"""
    if bytes(data[:4]) == frames.MAGIC:
        try:
            fields, blobs = frames.decode(data)
        except frames.FrameError as exc:
            raise UserError(str(exc)) from None
        fields = fields if isinstance(fields, dict) else {}
        color = [b for b in blobs if b.name == "color_layer"]
        if not color or color[0].kind != "bgra8":
            raise UserError("the backend's result has no color_layer")
        w, h = int(fields.get("width") or color[0].width), int(fields.get("height") or color[0].height)
        images = color[:1] + [b for b in blobs if b.name == "variant" and b.kind == "bgra8"]
        for b in images:
            if (b.width, b.height) != (w, h):
                raise UserError(f"The backend's {b.name} is {b.width}x{b.height} but it said {w}x{h}.")
        seconds = fields.get("seconds") if isinstance(fields.get("seconds"), dict) else {}
        getters = [_Pixels(b) for b in images]
        return w, h, str(fields.get("model_version") or "unknown"), seconds, "frames", b"", getters
    try:
        value = api.parse_json(data)
        result = api.parse_result(value)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    said = (result.width, result.height)
    getters = [lambda: _png_bgra(result.color_png, "colour layer", said)]
    for i, text in enumerate(value.get("variants") or [] if isinstance(value.get("variants"), list) else []):
        try:
            png = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise UserError(f"the backend sent variant {i + 2} that is not valid base64") from None
        getters.append(lambda png=png, i=i: _png_bgra(png, f"variant {i + 2}", said))
    return result.width, result.height, result.model_version, result.seconds, "json", result.color_png, getters


def read_result(target: Target, data: bytes) -> Decoded:
    """The result's body -> Decoded. Raises UserError with a message for the user."""
    w, h, model_version, seconds, transport, png, getters = _images(data)
    first = getters[0]()
    prepared = prepare_result(target, first, w, h)
    out = Decoded(prepared, w, h, model_version, seconds, transport, png=png)
    if transport == "frames":
        out.bgra_z = getattr(getters[0], "packed", None) or frames.deflate(first)
    if len(getters) > 1:
        kept = 0
        for number, get in enumerate(getters, 1):
            bgra = first if number == 1 else get()
            z = getattr(get, "packed", None) or (out.bgra_z if number == 1 else None) or frames.deflate(bgra)
            if kept + len(z) > MAX_VARIANT_BYTES and number > 1:
                out.notes.append(f"only {number - 1} of {len(getters)} variants are kept: they fill the memory set aside for them")
                break
            kept += len(z)
            out.variants.append(Variant(number, z, thumbnail(bgra, w, h)))
    return out


def prepare_entry(target: Target, entry: Any) -> Prepared:
    """A history entry (history.Entry) back in the result layer's format (worker thread)."""
    if entry.bgra_z is not None:
        return prepare_result(target, zlib.decompress(entry.bgra_z), *entry.size)
    return prepare_png(target, entry.color_png)
