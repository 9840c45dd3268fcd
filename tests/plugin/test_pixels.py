"""Byte-level conversions between Krita's pixelData layouts and 8-bit BGRA."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krita_mangacolor import pixels


def test_rgba_u8_is_already_bgra():
    data = bytes([1, 2, 3, 4, 5, 6, 7, 8])
    assert pixels.to_bgra8(data, "RGBA", "U8", 2) == data


def test_rgba_u16_keeps_high_bytes():
    # B=0x1234 G=0xff00 R=0x00ff A=0xffff, little-endian
    data = struct.pack("<4H", 0x1234, 0xFF00, 0x00FF, 0xFFFF)
    assert pixels.to_bgra8(data, "RGBA", "U16", 1) == bytes([0x12, 0xFF, 0x00, 0xFF])


def test_graya_u8_expands_gray_to_bgr():
    data = bytes([10, 200, 250, 0])
    assert pixels.to_bgra8(data, "GRAYA", "U8", 2) == bytes([10, 10, 10, 200, 250, 250, 250, 0])


def test_graya_u16():
    data = struct.pack("<4H", 0x8000, 0xFFFF, 0x0100, 0x0000)
    assert pixels.to_bgra8(data, "GRAYA", "U16", 2) == bytes([0x80, 0x80, 0x80, 0xFF, 1, 1, 1, 0])


def test_wrong_length_is_an_error():
    with pytest.raises(ValueError):
        pixels.to_bgra8(bytes(7), "RGBA", "U8", 2)


@pytest.mark.parametrize("model,depth,words", [("RGBA", "F32", "32-bit float"), ("RGBA", "F16", "16-bit float"), ("CMYKA", "U8", "CMYK")])
def test_unsupported_formats_are_refused_clearly(model, depth, words):
    with pytest.raises(pixels.UnsupportedFormat) as err:
        pixels.to_bgra8(bytes(16), model, depth)
    msg = str(err.value)
    assert words in msg and "Convert Image Color Space" in msg


def test_from_bgra8_u16_is_v_times_257():
    out = pixels.from_bgra8(bytes([0, 1, 128, 255]), "RGBA", "U16")
    assert struct.unpack("<4H", out) == (0, 257, 128 * 257, 65535)


def test_from_bgra8_gray():
    assert pixels.from_bgra8(bytes([1, 2, 3, 4]), "GRAYA", "U8") == bytes([2, 4])


@given(st.binary(min_size=0, max_size=64).map(lambda b: b[: len(b) // 4 * 4]), st.sampled_from(["U8", "U16"]))
def test_rgba_roundtrip(bgra, depth):
    assert pixels.to_bgra8(pixels.from_bgra8(bgra, "RGBA", depth), "RGBA", depth) == bgra


def test_content_and_masks():
    assert not pixels.has_content(bytes([9, 9, 9, 0]) * 3)
    assert pixels.has_content(bytes([0, 0, 0, 0, 0, 0, 0, 1]))
    assert pixels.mask_is_full(b"\xff\xff") and not pixels.mask_is_full(b"\xff\x80")
    assert pixels.mask_is_empty(b"\x00\x00")
