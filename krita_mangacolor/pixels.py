"""Pure byte-level pixel conversions between Krita's pixelData layouts and 8-bit BGRA.

No Qt, no Krita: only bytes slicing (done in C by CPython, fast even for large pages).

Krita's layouts (native byte order, i.e. little-endian on every platform Krita ships on):
  RGBA/U8   -> 4 bytes a pixel, B G R A  (Krita stores RGB integer formats as BGR)
  RGBA/U16  -> 8 bytes a pixel, B G R A, each a uint16
  GRAYA/U8  -> 2 bytes a pixel, gray alpha
  GRAYA/U16 -> 4 bytes a pixel, gray alpha, each a uint16
Float depths (F16/F32) and other models (CMYK, Lab, XYZ, YCbCr) are refused with a clear message:
converting them correctly needs colour management that Krita's Python API does not expose.

8-bit BGRA is also exactly QImage.Format_ARGB32's memory layout on little-endian machines, so the
Qt side (imaging.py) can wrap these bytes without another conversion.
"""

from __future__ import annotations

import sys

SUPPORTED_MODELS = ("RGBA", "GRAYA")
SUPPORTED_DEPTHS = ("U8", "U16")

_CHANNELS = {"RGBA": 4, "GRAYA": 2}
_DEPTH_BYTES = {"U8": 1, "U16": 2, "F16": 2, "F32": 4}
_MODEL_NAMES = {
    "RGBA": "RGB/Alpha",
    "GRAYA": "Grayscale/Alpha",
    "CMYKA": "CMYK/Alpha",
    "LABA": "L*a*b*/Alpha",
    "XYZA": "XYZ/Alpha",
    "YCbCrA": "YCbCr/Alpha",
}
_DEPTH_NAMES = {"U8": "8-bit integer", "U16": "16-bit integer", "F16": "16-bit float", "F32": "32-bit float"}

# Index of the most significant byte of a native uint16.
_HI = 1 if sys.byteorder == "little" else 0


class UnsupportedFormat(ValueError):
    """A layer or document in a colour model/depth the plugin cannot read or write."""


def describe_format(model: str, depth: str) -> str:
    return f"{_MODEL_NAMES.get(model, model)} {_DEPTH_NAMES.get(depth, depth)}"


def check_supported(model: str, depth: str, what: str) -> None:
    """Raise UnsupportedFormat with a message for the user unless (model, depth) is readable."""
    if model in SUPPORTED_MODELS and depth in SUPPORTED_DEPTHS:
        return
    advice = (
        "MangaColor works on 8- and 16-bit integer RGB/Alpha and Grayscale/Alpha. "
        "Convert with Image > Convert Image Color Space (or Layer > Convert > Convert Layer Color Space)"
    )
    if depth in ("F16", "F32"):
        advice += " to 16-bit integer (or 8-bit)"
    raise UnsupportedFormat(f"{what} is {describe_format(model, depth)}. {advice}.")


def bytes_per_pixel(model: str, depth: str) -> int:
    return _CHANNELS.get(model, 4) * _DEPTH_BYTES.get(depth, 1)


def _check_length(data: bytes, n_pixels: int, model: str, depth: str) -> None:
    expected = n_pixels * bytes_per_pixel(model, depth)
    if len(data) != expected:
        raise ValueError(f"{model}/{depth} pixel data: got {len(data)} bytes, expected {expected} for {n_pixels} pixels")


def to_bgra8(data: bytes, model: str, depth: str, n_pixels: int | None = None) -> bytes:
    """Krita pixelData bytes of (model, depth) -> 8-bit BGRA bytes (non-premultiplied)."""
    check_supported(model, depth, "the layer")
    data = bytes(data)
    if n_pixels is not None:
        _check_length(data, n_pixels, model, depth)
    if depth == "U16":
        # 16 -> 8 bit: keep the high byte (v >> 8). Exact for values written as v8 * 257.
        data = data[_HI::2]
    if model == "RGBA":
        return data
    # GRAYA: g a -> g g g a
    gray, alpha = data[0::2], data[1::2]
    out = bytearray(len(gray) * 4)
    out[0::4] = gray
    out[1::4] = gray
    out[2::4] = gray
    out[3::4] = alpha
    return bytes(out)


def from_bgra8(bgra: bytes, model: str, depth: str) -> bytes:
    """8-bit BGRA bytes -> Krita pixelData bytes of (model, depth).

    GRAYA keeps the green channel as gray (only used for gray copies; colour results are written to
    an RGBA layer, see result_layer.py)."""
    check_supported(model, depth, "the result layer")
    bgra = bytes(bgra)
    if len(bgra) % 4:
        raise ValueError("BGRA data length must be a multiple of 4")
    if model == "RGBA":
        data = bgra
    else:
        out = bytearray(len(bgra) // 2)
        out[0::2] = bgra[1::4]
        out[1::2] = bgra[3::4]
        data = bytes(out)
    if depth == "U16":
        wide = bytearray(len(data) * 2)
        wide[0::2] = data  # v8 * 257 == (v8 << 8) | v8: both bytes equal, byte order irrelevant
        wide[1::2] = data
        return bytes(wide)
    return data


def has_content(bgra: bytes) -> bool:
    """True if any pixel has alpha > 0."""
    alpha = bgra[3::4]
    return alpha.count(0) != len(alpha)


def mask_is_full(mask: bytes) -> bool:
    """True if an 8-bit selection mask selects every pixel completely."""
    return mask.count(255) == len(mask)


def mask_is_empty(mask: bytes) -> bool:
    return mask.count(0) == len(mask)
