"""Decoding of user images into the arrays the pipeline works on, with clear errors.

Images come from users and from archives nobody checked, so decoding is careful about cost:
the size is read from the header and checked before a single pixel is decoded, conversions run
in bands of rows (no full-page float copies besides the result), and references, which only
contribute their colours, are reduced before they are converted.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 64_000_000  # 6000 x 8500 pages fit with room to spare
MAX_SIDE = 16_384
MIN_PAGE_PIXELS = 2  # a one-pixel page has no structure to analyse
REFERENCE_MAX_PIXELS = 4_000_000  # references give colours and their proportions: 2000x2000 is plenty
BAND_ROWS = 64  # rows converted at a time: bounds the float temporaries to a band, not a page

Image.MAX_IMAGE_PIXELS = MAX_PIXELS

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)
TO_RGBA_MODES = ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "La", "RGBa", "RGBX")
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


class ImageError(ValueError):
    """An input image that cannot be used; the message says why, for the user."""


def open_image(source: str | Path | bytes, what: str) -> Image.Image:
    """Open an image lazily (header only) and check its size; no pixel is decoded yet."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked just below
            img = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
    except FileNotFoundError:
        raise ImageError(f"{what}: file not found: {source}") from None
    except IsADirectoryError:
        raise ImageError(f"{what}: {source} is a folder, not an image") from None
    except UnidentifiedImageError:
        raise ImageError(f"{what}: not a readable image (unknown or corrupt format)") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{what}: image larger than {MAX_PIXELS} pixels") from None
    except MemoryError:
        raise
    except Exception as exc:  # any decoder's complaint about a hostile or broken header
        raise ImageError(f"{what}: not a readable image ({exc.__class__.__name__}: {exc})") from None
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError(f"{what}: image has zero size")
    if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS:
        raise ImageError(f"{what}: {w}x{h} is larger than the limit ({MAX_SIDE} px a side, {MAX_PIXELS} pixels)")
    return img


def _decoded(img: Image.Image, what: str, convert) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Decode and convert; every decoder failure (Pillow raises OSError, ValueError, but also
    NotImplementedError, struct.error, IndexError... on hostile files) becomes an ImageError."""
    try:
        img.load()
        return convert(img)
    except (ImageError, MemoryError):
        raise
    except Exception as exc:
        raise ImageError(f"{what}: not a readable image ({exc.__class__.__name__}: {exc})") from None


def _bands(height: int):  # type: ignore[no-untyped-def]
    for y in range(0, height, BAND_ROWS):
        yield slice(y, min(y + BAND_ROWS, height))


def _array(img: Image.Image, convert: str | None = None) -> np.ndarray:
    """np.asarray(img.convert(convert)), built band by band: Pillow's own export (tobytes) and a
    whole-image convert each cost page-sized copies on top of the result."""
    w, h = img.size
    out: np.ndarray | None = None
    for rows in _bands(h):
        band = img.crop((0, rows.start, w, rows.stop))
        band_arr = np.asarray(band.convert(convert) if convert and band.mode != convert else band)
        if out is None:
            out = np.empty((h,) + band_arr.shape[1:], band_arr.dtype)
        out[rows] = band_arr
    assert out is not None
    return out


def _pixels(img: Image.Image) -> tuple[np.ndarray, str, float]:
    """(pixels in their own compact dtype, mode, value of full scale)."""
    mode = img.mode
    if mode in TO_RGBA_MODES:
        return _array(img, "RGBA"), "RGBA", 255.0
    if mode not in ("1", "L", "LA", "RGB", "RGBA") + WIDE_MODES:
        raise ImageError(f"unsupported image mode {mode}")
    arr = _array(img)
    if mode == "1":
        return arr, mode, 1.0
    if mode.startswith("I;16") or arr.dtype == np.uint16:
        return arr, mode, 65535.0
    if mode in ("I", "F"):
        return arr, mode, 65535.0 if arr.max(initial=0) > 255 else 255.0
    return arr, mode, 255.0


def _band_values(arr: np.ndarray, mode: str, scale: float, rows: slice) -> tuple[np.ndarray, np.ndarray | None]:
    """One band of rows -> (gray HxW or colour HxWx3 float32 in [0, 1], alpha float32 or None)."""
    if mode in WIDE_MODES:
        values = np.clip(arr[rows].astype(np.float64) / scale, 0, 1).astype(np.float32)
    else:
        values = arr[rows].astype(np.float32) / np.float32(scale)
    if mode in ("LA", "RGBA"):
        return values[..., :-1] if mode == "RGBA" else values[..., 0], values[..., -1]
    return values, None


def ink_from_image(img: Image.Image) -> np.ndarray:
    """The page as gray ink, float32 HxW in [0, 1], 1 = paper. Transparency counts as paper."""
    arr, mode, scale = _pixels(img)
    ink = np.empty(arr.shape[:2], np.float32)
    for rows in _bands(ink.shape[0]):
        values, alpha = _band_values(arr, mode, scale, rows)
        gray = values if values.ndim == 2 else values @ GRAY_WEIGHTS
        if alpha is not None:
            gray = gray * alpha + (1.0 - alpha)
        ink[rows] = gray
    return ink


def rgba_from_image(img: Image.Image) -> np.ndarray:
    """Any image -> uint8 HxWx4 RGBA (opaque where the image has no alpha)."""
    if img.mode in ("1", "L", "LA", "RGB", "RGBA") + TO_RGBA_MODES:
        return _array(img, "RGBA")  # 8-bit: Pillow's own conversion is exact
    arr, mode, scale = _pixels(img)
    rgba = np.empty(arr.shape[:2] + (4,), np.uint8)
    for rows in _bands(rgba.shape[0]):
        values, alpha = _band_values(arr, mode, scale, rows)
        band = rgba[rows]
        band[..., :3] = np.clip((values[..., None] if values.ndim == 2 else values) * 255.0 + 0.5, 0, 255)
        band[..., 3] = 255 if alpha is None else np.clip(alpha * 255.0 + 0.5, 0, 255)
    return rgba


def _reduction(size: tuple[int, int]) -> int:
    return max(1, math.ceil(math.sqrt(size[0] * size[1] / REFERENCE_MAX_PIXELS)))


def reduced_reference(img: Image.Image) -> Image.Image:
    """A reference over REFERENCE_MAX_PIXELS, box-reduced by a whole factor: its colour
    proportions, all a reference gives, stay."""
    if _reduction(img.size) == 1:
        return img
    if img.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        img = img.convert("RGBA")
    return img.reduce(_reduction(img.size))


def rgb_on_white(img: Image.Image) -> np.ndarray:
    """Any image -> uint8 HxWx3, transparent parts composited on white (for references)."""
    rgba = rgba_from_image(img)
    rgb = np.empty(rgba.shape[:2] + (3,), np.uint8)
    for rows in _bands(rgb.shape[0]):
        band = rgba[rows].astype(np.float32) / 255.0
        rgb[rows] = np.clip((band[..., :3] * band[..., 3:] + (1.0 - band[..., 3:])) * 255.0 + 0.5, 0, 255)
    return rgb


def check_page_size(width: int, height: int, what: str = "ink") -> None:
    if width * height < MIN_PAGE_PIXELS:
        raise ImageError(f"{what}: a {width}x{height} page is too small to colorize (at least {MIN_PAGE_PIXELS} pixels)")


# decode_*: an image opened (and size-checked) by open_image -> the array the pipeline takes. A frames
# blob (`transport.FrameImage`: raw pixels, already checked) decodes to exactly what the PNG of the same
# pixels gives.
def decode_ink(img: Image.Image, what: str = "ink") -> np.ndarray:
    check_page_size(*img.size, what=what)
    if not isinstance(img, Image.Image):
        return img.ink()
    return _decoded(img, what, ink_from_image)


def decode_hints(img: Image.Image, what: str = "hints") -> np.ndarray:
    if not isinstance(img, Image.Image):
        return img.rgba()
    return _decoded(img, what, rgba_from_image)


def decode_reference(img: Image.Image, what: str = "reference") -> np.ndarray:
    if not isinstance(img, Image.Image):
        img = img.image()
    factor = _reduction(img.size)
    if factor > 1 and img.format == "JPEG":
        with contextlib.suppress(Exception):  # a JPEG decoded at 1/2, 1/4 or 1/8 of its size costs that much less
            img.draft("RGB", (img.size[0] // factor, img.size[1] // factor))
    return _decoded(img, what, lambda im: rgb_on_white(reduced_reference(im)))


def load_ink(source: str | Path | bytes, what: str = "ink") -> np.ndarray:
    return decode_ink(open_image(source, what), what)


def load_hints(source: str | Path | bytes, what: str = "hints") -> np.ndarray:
    return decode_hints(open_image(source, what), what)


def load_reference(source: str | Path | bytes, what: str = "reference") -> np.ndarray:
    return decode_reference(open_image(source, what), what)


def encode_png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


# Formats Pillow can write, by file suffix: an output path is checked before any work is done.
def writable_suffixes() -> set[str]:
    Image.init()
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE}


def check_output_file(path: Path, what: str = "output", mode: str = "RGB") -> None:
    """A clear error now, rather than a traceback after the whole colorization ran. `mode`: what
    will be written (a colour layer is RGBA, which JPEG cannot hold)."""
    suffix = path.suffix.lower()
    if suffix not in writable_suffixes():
        raise ImageError(f"{what}: {path}: unknown image file extension {path.suffix or '(none)'!r}; use .png, .jpg, .tif, ...")
    try:
        Image.new(mode, (1, 1)).save(io.BytesIO(), format=Image.registered_extensions()[suffix])
    except Exception:
        raise ImageError(f"{what}: a {suffix} file cannot hold an {mode} image; use .png") from None
    if path.is_dir():
        raise ImageError(f"{what}: {path} is a folder; give a file name such as {path / 'page.png'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ImageError(f"{what}: {parent} is a file, so {path} cannot be created inside it")
            break
