"""QImage helpers: wrap 8-bit BGRA bytes, composite, mask, encode PNG (base64) and decode PNG.

Only Qt (qt.py: PyQt5 or PyQt6), no Krita: unit-testable with QT_QPA_PLATFORM=offscreen, and safe to call
from a worker thread (QImage is not a GUI object).
QImage.Format_ARGB32 is non-premultiplied 0xAARRGGBB, i.e. bytes B G R A in memory on little-endian
machines: exactly the 8-bit BGRA that pixels.py produces from Krita's pixelData.
"""

from __future__ import annotations

import base64
import sys

from .qt import QBuffer, QByteArray, QColor, QImage, QIODevice, QPainter, qbytes

if sys.byteorder != "little":  # pragma: no cover - Krita ships on little-endian machines only
    raise ImportError("MangaColor's pixel handling assumes a little-endian machine")

PNG_QUALITY = 80  # Qt maps this to zlib level 1: fast, pages are mostly flat anyway


def _plane(img: QImage, bytes_per_pixel: int) -> bytes:
    """The image's pixel bytes without row padding."""
    w, h = img.width(), img.height()
    stride = img.bytesPerLine()
    row = w * bytes_per_pixel
    raw = img.constBits().asstring(img.sizeInBytes())
    if stride == row:
        return bytes(raw[: row * h])
    return b"".join(raw[y * stride : y * stride + row] for y in range(h))


def bgra8_from_qimage(img: QImage) -> bytes:
    """Any QImage -> 8-bit BGRA bytes (non-premultiplied), no row padding."""
    if img.format() != QImage.Format_ARGB32:
        img = img.convertToFormat(QImage.Format_ARGB32)
    return _plane(img, 4)


def gray8_plane(img: QImage) -> bytes:
    """A Format_Grayscale8 image's bytes, one a pixel, no row padding (the frames transport's gray8)."""
    if img.format() != QImage.Format_Grayscale8:
        img = img.convertToFormat(QImage.Format_Grayscale8)
    return _plane(img, 1)


def wrap_gray8(gray: bytes, width: int, height: int) -> QImage:
    """8-bit gray bytes as a QImage WITHOUT copying: keep `gray` alive while the image is used."""
    if len(gray) != width * height:
        raise ValueError(f"expected {width * height} bytes for {width}x{height} gray, got {len(gray)}")
    return QImage(gray, width, height, width, QImage.Format_Grayscale8)


def wrap_bgra8(bgra: bytes, width: int, height: int) -> QImage:
    """8-bit BGRA bytes as a QImage WITHOUT copying: keep `bgra` alive while the image is used."""
    if len(bgra) != width * height * 4:
        raise ValueError(f"expected {width * height * 4} bytes for {width}x{height} BGRA, got {len(bgra)}")
    return QImage(bgra, width, height, width * 4, QImage.Format_ARGB32)


def alpha8(img: QImage) -> bytes:
    """The alpha plane, one byte a pixel (converted by Qt, in C++: no Python loop over the pixels)."""
    return _plane(img.convertToFormat(QImage.Format_Alpha8), 1)


def ink_gray(img: QImage, opaque: bool) -> QImage:
    """The ink as the backend wants it: 8-bit gray, transparent parts white paper."""
    if opaque:
        return img.convertToFormat(QImage.Format_Grayscale8)
    return on_white(img).convertToFormat(QImage.Format_Grayscale8)


def on_white(img: QImage) -> QImage:
    """Composite over white paper -> Format_RGB32 (transparent = paper)."""
    out = QImage(img.width(), img.height(), QImage.Format_RGB32)
    out.fill(QColor(255, 255, 255))
    painter = QPainter(out)
    painter.drawImage(0, 0, img)
    painter.end()
    return out


def apply_mask(bgra: bytes, mask: bytes, width: int, height: int) -> bytes:
    """Scale each pixel's alpha by an 8-bit selection mask (alpha * m / 255); colour is untouched.

    Selected pixels (m = 255) keep their alpha exactly, unselected ones (m = 0) become transparent."""
    if len(mask) != width * height or len(bgra) != width * height * 4:
        raise ValueError("mask and image sizes differ")
    if mask.count(255) == len(mask):
        return bytes(bgra)
    alpha_img = QImage(bytes(bgra[3::4]), width, height, width, QImage.Format_Alpha8).copy()
    mask_img = QImage(bytes(mask), width, height, width, QImage.Format_Alpha8).copy()
    painter = QPainter(alpha_img)
    painter.setCompositionMode(QPainter.CompositionMode_DestinationIn)
    painter.drawImage(0, 0, mask_img)
    painter.end()
    out = bytearray(bgra)
    out[3::4] = _plane(alpha_img, 1)
    return bytes(out)


def encode_png(img: QImage) -> bytes:
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.WriteOnly)
    ok = img.save(buf, "PNG", PNG_QUALITY)
    buf.close()
    if not ok:
        raise ValueError("could not encode the image as PNG")
    return qbytes(data)


def encode_png_b64(img: QImage) -> str:
    return base64.b64encode(encode_png(img)).decode("ascii")


def decode_png(data: bytes, what: str = "image") -> QImage:
    img = QImage.fromData(data, "PNG")
    if img.isNull():
        raise ValueError(f"the backend sent a {what} that is not a readable PNG")
    return img

