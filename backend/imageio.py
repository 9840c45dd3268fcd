"""Decoding of user images into the arrays the pipeline works on, with clear errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 64_000_000  # 6000 x 8500 pages fit with room to spare
MAX_SIDE = 16_384

Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ImageError(ValueError):
    """An input image that cannot be used; the message says why, for the user."""


def open_image(source: str | Path | bytes, what: str) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
        img.load()
    except FileNotFoundError:
        raise ImageError(f"{what}: file not found: {source}") from None
    except UnidentifiedImageError:
        raise ImageError(f"{what}: not a readable image (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{what}: not a readable image ({exc.__class__.__name__}: {exc})") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{what}: image larger than {MAX_PIXELS} pixels") from None
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError(f"{what}: image has zero size")
    if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS:
        raise ImageError(f"{what}: {w}x{h} is larger than the limit ({MAX_SIDE} px a side, {MAX_PIXELS} pixels)")
    return img


def _to_float_channels(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Image of any common mode -> (colour or gray float32 in [0, 1], alpha float32 or None)."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        scale = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        return np.clip(arr / scale, 0, 1).astype(np.float32), None
    if mode == "1":
        return np.asarray(img, dtype=np.float32), None
    if mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "La", "RGBa", "RGBX"):
        img = img.convert("RGBA")
        mode = "RGBA"
    arr = np.asarray(img)
    if arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535.0
    else:
        arr = arr.astype(np.float32) / 255.0
    if mode == "L":
        return arr, None
    if mode == "LA":
        return arr[..., 0], arr[..., 1]
    if mode == "RGB":
        return arr, None
    if mode == "RGBA":
        return arr[..., :3], arr[..., 3]
    raise ImageError(f"unsupported image mode {mode}")


def ink_from_image(img: Image.Image) -> np.ndarray:
    """The page as gray ink, float32 HxW in [0, 1], 1 = paper. Transparency counts as paper."""
    values, alpha = _to_float_channels(img)
    gray = values if values.ndim == 2 else values @ np.array([0.299, 0.587, 0.114], np.float32)
    if alpha is not None:
        gray = gray * alpha + (1.0 - alpha)
    return np.ascontiguousarray(gray, dtype=np.float32)


def rgba_from_image(img: Image.Image) -> np.ndarray:
    """Any image -> uint8 HxWx4 RGBA (opaque where the image has no alpha)."""
    values, alpha = _to_float_channels(img)
    if values.ndim == 2:
        values = np.repeat(values[..., None], 3, axis=-1)
    if alpha is None:
        alpha = np.ones(values.shape[:2], np.float32)
    rgba = np.concatenate([values, alpha[..., None]], -1)
    return np.clip(rgba * 255.0 + 0.5, 0, 255).astype(np.uint8)


def rgb_on_white(img: Image.Image) -> np.ndarray:
    """Any image -> uint8 HxWx3, transparent parts composited on white (for references)."""
    rgba = rgba_from_image(img).astype(np.float32) / 255.0
    rgb = rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def load_ink(source: str | Path | bytes) -> np.ndarray:
    return ink_from_image(open_image(source, "ink"))


def load_hints(source: str | Path | bytes) -> np.ndarray:
    return rgba_from_image(open_image(source, "hints"))


def load_reference(source: str | Path | bytes) -> np.ndarray:
    return rgb_on_white(open_image(source, "reference"))


def encode_png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
