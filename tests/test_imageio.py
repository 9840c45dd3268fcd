"""Decoding user images: every decoder failure is a clear ImageError, sizes are checked before any
pixel is decoded, and decoding costs little more memory than its result (issue 14)."""

import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from backend import imageio
from backend.imageio import ImageError, load_hints, load_ink, load_reference


def png_header_only(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")


def encoded(arr: np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def malformed_dds() -> bytes:
    header = struct.pack("<3I", 0, 8, 8) + bytes(12) + bytes(44) + struct.pack("<4I", 32, 0, 0, 0) + bytes(36)
    return b"DDS " + struct.pack("<I", 124) + header


def half_open_images() -> dict[str, bytes]:
    """Files Pillow opens (or half opens) and then fails on, each with a different exception."""
    page = np.random.default_rng(0).integers(0, 256, (64, 48), dtype=np.uint8)
    ico = encoded(np.stack([page] * 3, -1), "ICO")
    return {
        "dds without pixel format (NotImplementedError)": malformed_dds(),
        "dds cut in its header": malformed_dds()[:40],
        "truncated png": encoded(page)[:300],
        "truncated jpeg": encoded(page, "JPEG")[:200],
        "ico with a broken entry": ico[:6] + struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, 10**9, 22) + ico[22:],
        "truncated tiff": encoded(page, "TIFF")[:150],
        "gif header only": encoded(page, "GIF")[:20],
        "bmp with a lying header": encoded(page, "BMP")[:54],
        "png header only": png_header_only(40, 30),
    }


@pytest.mark.parametrize("name", list(half_open_images()))
@pytest.mark.parametrize("loader", [load_ink, load_hints, load_reference])
def test_every_decoder_failure_is_an_image_error(name, loader):
    with pytest.raises(ImageError, match="not a readable image"):
        loader(half_open_images()[name])


def test_size_is_checked_before_any_pixel_is_decoded(monkeypatch):
    """81 Mpx is under Pillow's own bomb limit (2 x MAX_PIXELS): it used to be decoded, then refused."""
    def no_decoding(self):  # type: ignore[no-untyped-def]
        raise AssertionError("pixels decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageError, match="9000x9000 is larger than the limit"):
        load_ink(png_header_only(9000, 9000))


def test_one_pixel_page_is_refused_with_a_message():
    with pytest.raises(ImageError, match="1x1 page is too small"):
        load_ink(encoded(np.zeros((1, 1), np.uint8)))
    assert load_ink(encoded(np.zeros((1, 2), np.uint8))).shape == (1, 2)


def peak_bytes(fn, *args) -> tuple[object, int]:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        out = fn(*args)
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_decoding_makes_no_page_sized_float_copies():
    """A hints layer used to go through float32 copies of the whole page (16x its RGBA bytes):
    one 249 KB PNG peaked at 4.1 GB in the server. Now the peak is the result plus a band."""
    h, w = 1500, 1200
    hints = np.zeros((h, w, 4), np.uint8)
    hints[100:110, 100:110] = (200, 30, 30, 255)
    out, peak = peak_bytes(load_hints, encoded(hints))
    assert out.shape == (h, w, 4) and out.dtype == np.uint8 and (out[105, 105] == (200, 30, 30, 255)).all()
    assert peak < out.nbytes + 4 * 1024 * 1024, peak  # the result and a band of rows
    rgba_page = np.full((h, w, 4), 255, np.uint8)
    ink, peak = peak_bytes(load_ink, encoded(rgba_page))
    assert ink.dtype == np.float32 and peak < ink.nbytes + rgba_page.nbytes + 4 * 1024 * 1024, peak  # + the pixels


def test_large_references_are_reduced_before_conversion():
    ref = np.zeros((3000, 2000, 3), np.uint8)
    ref[:, :1000] = (250, 10, 10)
    ref[:, 1000:] = (10, 10, 250)
    out, peak = peak_bytes(load_reference, encoded(ref, "JPEG", quality=95))
    assert out.shape[0] * out.shape[1] <= imageio.REFERENCE_MAX_PIXELS
    red = (out[..., 0] > 200).mean()
    assert 0.45 < red < 0.55  # the colour proportions stay
    assert peak < ref.nbytes, peak


@pytest.mark.parametrize("mode", ["1", "L", "LA", "RGB", "RGBA", "P", "I;16", "I", "F", "CMYK"])
def test_band_conversion_matches_whole_page_conversion(mode):
    rng = np.random.default_rng(3)
    base = Image.fromarray(rng.integers(0, 256, (imageio.BAND_ROWS * 2 + 7, 33, 4), dtype=np.uint8), "RGBA")
    img = Image.fromarray(rng.integers(0, 65536, base.size[::-1], dtype=np.uint16)) if mode == "I;16" else base.convert(mode)
    ink = imageio.ink_from_image(img)
    arr = np.asarray(img.convert("RGBA") if mode in ("P", "CMYK") else img)
    if mode in ("LA", "RGBA", "P", "CMYK"):
        values = arr.astype(np.float32) / 255.0
        alpha = values[..., -1]
        gray = values[..., 0] if mode == "LA" else values[..., :3] @ imageio.GRAY_WEIGHTS
        expected = gray * alpha + (1 - alpha)
    elif mode == "I;16":
        expected = arr / 65535.0
    elif mode in ("I", "F"):
        expected = np.clip(arr / (65535.0 if arr.max() > 255 else 255.0), 0, 1)
    elif mode == "RGB":
        expected = (arr.astype(np.float32) / 255.0) @ imageio.GRAY_WEIGHTS
    else:
        expected = arr.astype(np.float32) / (1.0 if mode == "1" else 255.0)
    assert np.abs(ink - expected).max() < 1e-6


@pytest.mark.parametrize(
    "name, words",
    [("out.xyz", "unknown image file extension"), ("noext", "unknown image file extension"),
     ("folder.png", "is a folder"), ("afile/out.png", "is a file")],
)
def test_bad_output_paths_are_refused_up_front(tmp_path, name, words):
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ImageError, match=words):
        imageio.check_output_file(tmp_path / name)
    imageio.check_output_file(tmp_path / "new" / "deeper" / "ok.png")
