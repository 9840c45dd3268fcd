"""QImage helpers: exact round trips, channel order seen by Pillow (the backend), compositing, masks."""

import base64
import io

import pytest
from PIL import Image

from krita_mangacolor import imaging


def test_bgra_qimage_roundtrip_is_exact_with_partial_alpha(qapp):
    bgra = bytes([10, 20, 30, 40, 200, 100, 50, 255, 1, 2, 3, 0]) * 2  # 3x2
    img = imaging.wrap_bgra8(bgra, 3, 2)
    assert imaging.bgra8_from_qimage(img) == bgra


def test_png_b64_roundtrip_and_pillow_sees_rgba(qapp):
    red_bgra = bytes([0, 0, 255, 255])
    half_blue = bytes([255, 0, 0, 128])
    bgra = (red_bgra + half_blue) * 3  # 2x3
    text = imaging.encode_png_b64(imaging.wrap_bgra8(bgra, 2, 3))
    pil = Image.open(io.BytesIO(base64.b64decode(text)))
    assert pil.mode == "RGBA" and pil.size == (2, 3)
    assert pil.getpixel((0, 0)) == (255, 0, 0, 255)
    assert pil.getpixel((1, 0)) == (0, 0, 255, 128)
    back = imaging.bgra8_from_qimage(imaging.decode_png(base64.b64decode(text)))
    assert back == bgra


def test_odd_width_has_no_row_padding(qapp):
    w, h = 5, 3
    bgra = bytes(range(w * h * 4))
    assert imaging.bgra8_from_qimage(imaging.wrap_bgra8(bgra, w, h)) == bgra


def test_ink_image_is_gray_on_white(qapp):
    pixels_ = [
        (0, 0, 0, 255),  # black ink
        (0, 0, 0, 0),  # transparent -> paper
        (0, 0, 0, 128),  # half black -> mid gray
        (255, 255, 255, 255),
    ]
    bgra = b"".join(bytes(p) for p in pixels_)
    img = imaging.ink_gray(imaging.wrap_bgra8(bgra, 4, 1), opaque=False)
    text = imaging.encode_png_b64(img)
    pil = Image.open(io.BytesIO(base64.b64decode(text)))
    assert pil.mode == "L"
    values = [pil.getpixel((i, 0)) for i in range(4)]
    assert values[0] == 0 and values[1] == 255 and values[3] == 255
    assert 120 <= values[2] <= 135


def test_opaque_ink_keeps_exact_gray(qapp):
    bgra = bytes([77, 77, 77, 255, 200, 200, 200, 255])
    gray = imaging.ink_gray(imaging.wrap_bgra8(bgra, 2, 1), opaque=True)
    assert imaging.bgra8_from_qimage(gray) == bytes([77, 77, 77, 255, 200, 200, 200, 255])


def test_apply_mask_scales_alpha_only(qapp):
    bgra = bytes([10, 20, 30, 255]) * 3 + bytes([10, 20, 30, 100])
    mask = bytes([255, 0, 128, 255])
    out = imaging.apply_mask(bgra, mask, 4, 1)
    assert out[0:4] == bytes([10, 20, 30, 255])
    assert out[7] == 0 and out[4:7] == bytes([10, 20, 30])
    assert abs(out[11] - 128) <= 1
    assert out[12:16] == bytes([10, 20, 30, 100])


def test_apply_mask_full_is_identity(qapp):
    bgra = bytes(range(32))
    assert imaging.apply_mask(bgra, b"\xff" * 8, 4, 2) == bgra


def test_bad_png_is_a_clear_error(qapp):
    with pytest.raises(ValueError, match="colour layer that is not a readable PNG"):
        imaging.decode_png(b"hello", "colour layer")
