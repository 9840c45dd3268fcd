"""How a request travels: the lean frames body (raw pixels, frames.py) when the backend says `"frames": true`
in GET /v1/health, else the public JSON body with base64 PNG (request.py).

page_reader.encode_inputs puts each image into the ColorizeRequest either as base64 PNG (str) or as a
frames.Frame (raw gray8/BGRA pixels, a hint layer cropped to its painted box). encode_body turns that request
into the bytes to POST, in the worker thread: a frames body for a backend that speaks frames, otherwise JSON,
converting any Frame to PNG first (the backend changed since the docker last asked, or an older backend).
Pure: QImage and bytes only.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from typing import Any

from . import frames, imaging
from .frames import Frame
from .request import ColorizeRequest

JSON = "application/json"
FRAMES = frames.CONTENT_TYPE
LOCAL_RAW_BYTES = 64 * 1024 * 1024  # on localhost, blobs up to this size go raw: moving them costs less than packing
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return host in LOOPBACK or host.startswith("127.")


@dataclass
class Body:
    data: bytes
    content_type: str

    @property
    def transport(self) -> str:
        return "frames" if self.content_type == FRAMES else "json"


class ImageEncoder:
    """The request's images in the form the transport wants (worker thread): base64 PNG, or with lean=True
    frames (raw pixels; painted layers cropped to the box of their painted pixels)."""

    def __init__(self, lean: bool):
        self.lean = lean

    def gray(self, img: Any, name: str) -> Any:
        """The ink (a Format_Grayscale8 QImage)."""
        if self.lean:
            return Frame(name, "gray8", img.width(), img.height(), imaging.gray8_plane(img))
        return imaging.encode_png_b64(img)

    def painted(self, bgra: bytes, width: int, height: int, name: str) -> Any:
        """A layer whose painted pixels count (hints, draft): None when nothing is painted."""
        box = frames.alpha_box(bgra, width, height)
        if box is None:
            return None
        if self.lean:
            return Frame(name, "bgra8", width, height, frames.crop(bgra, width, 4, box), box)
        return imaging.encode_png_b64(imaging.wrap_bgra8(bgra, width, height))

    def picture(self, img: Any, name: str) -> Any:
        """A whole picture (a reference, already on white)."""
        if self.lean:
            return Frame(name, "bgra8", img.width(), img.height(), imaging.bgra8_from_qimage(img))
        return imaging.encode_png_b64(img)


def has_frames(request: ColorizeRequest) -> bool:
    return isinstance(request.ink, Frame)


def frame_png_b64(frame: Frame) -> str:
    """A frame as the JSON API's base64 PNG (the whole image: paper or transparent outside its box)."""
    data = frames.full_pixels(frame)
    if frame.kind == "gray8":
        img = imaging.wrap_gray8(data, frame.width, frame.height)
    else:
        img = imaging.wrap_bgra8(data, frame.width, frame.height)
    png = imaging.encode_png(img)
    return base64.b64encode(png).decode("ascii")


def _png(value: Any) -> Any:
    return frame_png_b64(value) if isinstance(value, Frame) else value


def as_png(request: ColorizeRequest) -> ColorizeRequest:
    """The same request with every Frame turned into base64 PNG (for a backend without frames)."""
    panels = request.panels
    if isinstance(panels, list):
        panels = [dict(p, references=[_png(r) for r in p["references"]]) if isinstance(p, dict) and p.get("references") else p for p in panels]
    return replace(
        request, ink=_png(request.ink), hints=_png(request.hints), references=[_png(r) for r in request.references],
        draft=_png(request.draft), panels=panels,
    )


def _named(image: Any, name: str) -> Frame:
    """A request image as a blob: a Frame renamed, or a base64 PNG (from code that made one) decoded to BGRA."""
    if not isinstance(image, Frame):
        img = imaging.decode_png(base64.b64decode(image), name)
        return Frame(name, "bgra8", img.width(), img.height(), imaging.bgra8_from_qimage(img))
    return image if image.name == name else replace(image, name=name)


def frames_body(request: ColorizeRequest, raw_up_to: int = 0) -> bytes:
    """The request as a frames body: its images as blobs (ink, hints, reference..., draft, panel_reference...),
    everything else (options, weights, palettes, panels) in the header's fields; no image is a field there."""
    fields = request.to_json()
    blobs: list[Frame] = [_named(fields.pop("ink"), "ink")]
    for key in ("hints", "draft"):
        value = fields.pop(key, None)
        if value:
            blobs.append(_named(value, key))
    blobs += [_named(r, "reference") for r in fields.pop("references", None) or []]
    if isinstance(fields.get("panels"), list):
        panels = []
        for p in fields["panels"]:
            if isinstance(p, dict) and p.get("references"):
                p = dict(p)
                p["reference_blobs"] = list(range(len(blobs), len(blobs) + len(p["references"])))
                blobs += [_named(r, "panel_reference") for r in p.pop("references")]
            panels.append(p)
        fields["panels"] = panels
    return frames.encode(fields, blobs, raw_up_to=raw_up_to)


def encode_body(request: ColorizeRequest, speaks_frames: bool, url: str = "") -> Body:
    """The bytes to POST to the backend at `url` (worker thread)."""
    if speaks_frames and has_frames(request):
        return Body(frames_body(request, LOCAL_RAW_BYTES if is_loopback(url) else 0), FRAMES)
    if has_frames(request):
        request = as_png(request)
    return Body(request.encode(), JSON)
