"""Frames <-> the colorize request and its result: the server's side of the lean localhost transport.

The server only routes: a frames body (`frames.CONTENT_TYPE`) becomes the same `ColorizeBody` a JSON
body makes, its images being `FrameImage`s (checked blobs, nothing inflated yet) instead of base64
strings, so both transports go through one `submit_request` (cheap checks, a queue place, then the
decoding). `imageio.decode_*` decode a `FrameImage` to exactly the arrays the PNG of the same pixels
gives: an 8-bit gray ink blob is the same float32 ink as a gray PNG, hint and draft blobs the same
RGBA, references go through the same reduction. A result goes back as frames (`result_frames`):
the colour layer as bgra8, zlib level 1, then one "variant" blob per extra variant.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import cv2
import numpy as np
from PIL import Image

from . import frames
from .frames import CONTENT_TYPE, BlobSpec, FrameError

__all__ = ["CONTENT_TYPE", "FrameError", "FrameImage", "body_from_frames", "is_frames", "wants_frames", "result_frames"]

IMAGE_FIELDS = ("ink", "hints", "references", "draft")  # carried as blobs, never as fields
ROWS = 256  # rows converted at a time: temporaries stay a band, not a page


def is_frames(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == CONTENT_TYPE


def wants_frames(accept: str | None) -> bool:
    return any(part.split(";")[0].strip().lower() == CONTENT_TYPE for part in (accept or "").split(","))


class FrameImage:
    """A checked blob of a frames body, opened but not decoded: it stands where the JSON body has a
    base64 image (`size` is known, the pixels are inflated by `decode`, under the server's
    admission). `imageio.decode_ink/decode_hints/decode_reference` accept it."""

    def __init__(self, body: bytes, spec: BlobSpec):
        self._body, self.spec = body, spec

    @property
    def size(self) -> tuple[int, int]:
        return self.spec.size

    def _blob(self) -> frames.Blob:
        from .imageio import ImageError

        try:
            return self.spec.read(self._body)
        except FrameError as exc:
            raise ImageError(str(exc)) from None

    def ink(self) -> np.ndarray:
        """float32 HxW, 1 = paper: a gray8 blob gives exactly what the same pixels as a gray PNG give."""
        if self.spec.kind != "gray8":
            from .imageio import ink_from_image

            return ink_from_image(self.image())
        gray = self._blob().full()
        ink = np.empty(gray.shape, np.float32)
        for y in range(0, gray.shape[0], ROWS):  # as imageio: uint8 -> float32, / float32(255)
            np.divide(gray[y : y + ROWS].astype(np.float32), np.float32(255.0), out=ink[y : y + ROWS])
        return ink

    def rgba(self) -> np.ndarray:
        """uint8 HxWx4 RGBA, transparent outside the blob's box."""
        blob = self._blob()
        if blob.kind == "gray8":
            return np.asarray(Image.fromarray(blob.full(), "L").convert("RGBA"))
        w, h = blob.width, blob.height
        x, y, bw, bh = blob.box
        out = np.zeros((h, w, 4), np.uint8)
        if bw and bh:  # OpenCV swaps the channels straight into the box (10x numpy's channel gather, no temporary)
            box = out[y : y + bh, x : x + bw]
            written = cv2.cvtColor(blob.pixels, cv2.COLOR_BGRA2RGBA, dst=box)
            if not np.shares_memory(written, out):
                box[...] = written
        return out

    def image(self) -> Image.Image:
        """The blob as a Pillow image (L or RGBA), for the decoders that work on images (references)."""
        blob = self._blob()
        if blob.kind == "gray8":
            return Image.fromarray(np.ascontiguousarray(blob.full()), "L")
        return Image.fromarray(self.rgba(), "RGBA")


def _placeholders(fields: dict[str, Any], specs: list[BlobSpec], body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON body's fields with an empty string where each image goes (so the same model checks
    them), and the FrameImages to put there afterwards."""
    for name in IMAGE_FIELDS:
        if name in fields:
            raise FrameError(f"'{name}' travels as a blob in a frames body, not as a field")
    known = {"ink", "hints", "reference", "draft", "panel_reference"}
    for spec in specs:
        if spec.name not in known:
            raise FrameError(f"unknown blob '{spec.name}'; a request carries {', '.join(sorted(known))}")
    images: dict[str, Any] = {"references": []}
    for name in ("ink", "hints", "draft"):
        found = [s for s in specs if s.name == name]
        if len(found) > 1:
            raise FrameError(f"more than one '{name}' blob")
        if found:
            images[name] = FrameImage(body, found[0])
    if "ink" not in images:
        raise FrameError("a frames request needs an 'ink' blob")
    images["references"] = [FrameImage(body, s) for s in specs if s.name == "reference"]
    data = dict(fields)
    data.update({name: "" for name in ("ink", "hints", "draft") if name in images})
    data["references"] = [""] * len(images["references"])
    panels = data.get("panels")
    images["panels"] = {}
    if isinstance(panels, list):
        data["panels"] = panels = [dict(p) if isinstance(p, dict) else p for p in panels]
        for i, panel in enumerate(panels):
            if not isinstance(panel, dict) or "reference_blobs" not in panel:
                continue
            if "references" in panel:
                raise FrameError(f"panels[{i}]: references travel as blobs (reference_blobs)")
            indices = panel.pop("reference_blobs")
            if not isinstance(indices, list) or not all(isinstance(k, int) and not isinstance(k, bool) for k in indices):
                raise FrameError(f"panels[{i}].reference_blobs is a list of blob indices")
            refs = []
            for k in indices:
                if not 0 <= k < len(specs) or specs[k].name != "panel_reference":
                    raise FrameError(f"panels[{i}].reference_blobs: blob {k} is not a 'panel_reference' blob")
                refs.append(FrameImage(body, specs[k]))
            panel["references"] = [""] * len(refs)
            images["panels"][i] = refs
    return data, images


def body_from_frames(body: bytes, model: type) -> Any:
    """A frames body -> `model` (the server's ColorizeBody), its image fields holding FrameImages.
    Raises FrameError (what is wrong with the frames) or pydantic's ValidationError (the fields)."""
    fields, specs = frames.parse(body)
    data, images = _placeholders(fields, specs, body)
    parsed = model.model_validate(data)
    for name in ("ink", "hints", "draft"):
        if name in images:
            setattr(parsed, name, images[name])  # no validation on assignment: the blob stands for the image
    parsed.references = images["references"]
    for i, refs in images["panels"].items():
        panel = parsed.panels[i]
        if isinstance(panel, dict):
            panel["references"] = refs
        else:
            panel.references = refs
    return parsed


def _adler32_combine(adler1: int, adler2: int, len2: int) -> int:
    """zlib's adler32_combine: the Adler-32 of A + B from those of A and B and B's length."""
    base = 65521
    rem = len2 % base
    sum1 = adler1 & 0xFFFF
    sum2 = (rem * sum1) % base
    sum1 += (adler2 & 0xFFFF) + base - 1
    sum2 += (adler1 >> 16) + (adler2 >> 16) + base - rem
    sum1 = sum1 - base if sum1 >= base else sum1
    sum1 = sum1 - base if sum1 >= base else sum1
    sum2 = sum2 - 2 * base if sum2 >= 2 * base else sum2
    sum2 = sum2 - base if sum2 >= base else sum2
    return sum1 | (sum2 << 16)


def _deflate_rows(rgba: np.ndarray, last: bool) -> tuple[bytes, int, int]:
    """Raw deflate (level 1) of the rows' BGRA bytes, band by band: (data, Adler-32, length). Not the
    last part: ends with a sync flush (byte-aligned, not final), so parts can be concatenated."""
    packer = zlib.compressobj(frames.ZLIB_LEVEL, zlib.DEFLATED, -15)
    code = cv2.COLOR_RGBA2BGRA if rgba.shape[2] == 4 else cv2.COLOR_RGB2BGRA
    parts, adler, length = [], 1, 0
    for y in range(0, rgba.shape[0], ROWS):
        band = cv2.cvtColor(np.ascontiguousarray(rgba[y : y + ROWS]), code)
        adler = zlib.adler32(band, adler)
        length += band.nbytes
        parts.append(packer.compress(band))
    parts.append(packer.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH))
    return b"".join(parts), adler, length


PARALLEL_PIXELS = 4_000_000  # above this, the rows are deflated in two parts at once (two cores)


def rgba_bands_zlib(rgba: np.ndarray) -> bytes:
    """uint8 HxWx4 RGBA (or HxWx3, made opaque) -> one zlib stream (level 1) of its BGRA bytes,
    converted band by band (no page-sized BGRA copy). A large page is deflated as two parts on two
    threads (zlib and OpenCV let go of the GIL) joined into one stream, as pigz does: any zlib
    reader inflates it."""
    h = rgba.shape[0]
    if rgba.shape[0] * rgba.shape[1] < PARALLEL_PIXELS or h < 2 * ROWS:
        chunks = [_deflate_rows(rgba, True)]
    else:
        from concurrent.futures import ThreadPoolExecutor

        mid = (h // 2) // ROWS * ROWS
        with ThreadPoolExecutor(2) as pool:
            top = pool.submit(_deflate_rows, rgba[:mid], False)
            bottom = pool.submit(_deflate_rows, rgba[mid:], True)
            chunks = [top.result(), bottom.result()]
    adler = chunks[0][1]
    for _, part_adler, length in chunks[1:]:
        adler = _adler32_combine(adler, part_adler, length)
    return b"".join([b"\x78\x01", *(data for data, _, _ in chunks), struct.pack(">I", adler)])


def frames_body(fields: dict[str, Any], blobs: list[tuple[str, int, int, bytes]]) -> bytes:
    """fields + [(name, width, height, zlib bgra8 data)] -> a frames body."""
    import json

    specs = [{"name": name, "kind": "bgra8", "width": w, "height": h, "box": [0, 0, w, h], "codec": "zlib", "length": len(data)}
             for name, w, h, data in blobs]
    header = json.dumps({"fields": fields, "blobs": specs}, separators=(",", ":")).encode("utf-8")
    return b"".join([frames.MAGIC, struct.pack("<I", len(header)), header, *(data for *_, data in blobs)])


def result_frames(result: Any) -> bytes:
    """A stored result (jobs.StoredResult) as a frames body: blob "color_layer", "composite" when it
    was asked for, then one "variant" per extra variant. A result stored as PNG (a JSON job fetched
    with `Accept: application/x-mangacolor-frames`) is decoded and re-encoded."""
    from .imageio import load_hints

    def zlib_of(data: bytes) -> bytes:
        return data if result.encoding == "frames" else rgba_bands_zlib(load_hints(data))

    blobs = [(name, result.width, result.height, zlib_of(data)) for name, data in result.images.items()]
    blobs += [("variant", result.width, result.height, zlib_of(data)) for data in getattr(result, "variants", [])]
    fields = {"width": result.width, "height": result.height, "model_version": result.model_version, "seconds": result.seconds}
    return frames_body(fields, blobs)
