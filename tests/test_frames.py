"""The lean wire format: what the plugin writes, the backend reads (and back), and hostile bodies are
refused with a reason before anything is inflated past its declared size."""

import json
import struct
import zlib

import numpy as np
import pytest

from backend import frames as server_frames
from backend.frames import FrameError
from krita_mangacolor import frames as plugin_frames


def test_plugin_frames_decode_exactly_in_the_backend():
    rng = np.random.default_rng(1)
    ink = rng.integers(0, 256, (37, 53), np.uint8)
    hints = np.zeros((37, 53, 4), np.uint8)
    hints[10:14, 20:31] = rng.integers(1, 256, (4, 11, 4))
    box = (20, 10, 11, 4)
    body = plugin_frames.encode(
        {"options": {"flat_regions": 0.5}},
        [
            plugin_frames.Frame("ink", "gray8", 53, 37, ink.tobytes()),
            plugin_frames.Frame("hints", "bgra8", 53, 37, plugin_frames.crop(hints.tobytes(), 53, 4, box), box),
        ],
    )
    fields, blobs = server_frames.decode(body)
    assert fields == {"options": {"flat_regions": 0.5}}
    assert [b.name for b in blobs] == ["ink", "hints"]
    np.testing.assert_array_equal(blobs[0].full(), ink)
    np.testing.assert_array_equal(blobs[1].full(), hints)  # transparent outside the box


def test_backend_result_decodes_in_the_plugin():
    layer = np.random.default_rng(2).integers(0, 256, (9, 7, 4), np.uint8)
    body = server_frames.encode({"model_version": "m"}, [("color_layer", "bgra8", layer, None, None)])
    fields, got = plugin_frames.decode(body)
    assert fields == {"model_version": "m"}
    assert got[0].name == "color_layer" and (got[0].width, got[0].height) == (7, 9)
    assert got[0].data == layer.tobytes()


def body_with(spec: dict, payload: bytes) -> bytes:
    header = json.dumps({"fields": {}, "blobs": [spec]}).encode()
    return b"MCF1" + struct.pack("<I", len(header)) + header + payload


BOMB = zlib.compress(b"\0" * 10_000_000, 9)


@pytest.mark.parametrize(
    "body, message",
    [
        (b"PNG....", "bad magic"),
        (b"MCF1" + struct.pack("<I", 99999), "out of range"),
        (b"MCF1" + struct.pack("<I", 3) + b"{x}", "not valid JSON"),
        (body_with({"name": "ink", "kind": "float", "width": 2, "height": 2, "length": 4}, b"1234"), "kind"),
        (body_with({"name": "ink", "kind": "gray8", "width": 2, "height": 2, "length": 3}, b"123"), "expected"),
        (body_with({"name": "ink", "kind": "gray8", "width": 100000, "height": 2, "length": 0}, b""), "between"),
        (body_with({"name": "ink", "kind": "gray8", "width": 16000, "height": 16000, "length": 0}, b""), "limit"),
        (body_with({"name": "ink", "kind": "gray8", "width": 4, "height": 4, "box": [3, 3, 2, 2], "length": 4}, b"1234"), "box width"),
        (body_with({"name": "ink", "kind": "gray8", "width": 2, "height": 2, "length": 50}, b"12"), "length"),
        # A zlib bomb: 10 MB of zeros declared as a 2x2 image is refused without inflating it all.
        (body_with({"name": "ink", "kind": "gray8", "width": 2, "height": 2, "codec": "zlib", "length": len(BOMB)}, BOMB), "exactly"),
        (body_with({"name": "ink", "kind": "gray8", "width": 2, "height": 2, "codec": "zlib", "length": 4}, b"abcd"), "corrupt"),
        (body_with({"name": "ink", "kind": "gray8", "width": 2, "height": 2, "length": 4}, b"1234extra"), "after the last blob"),
    ],
)
def test_hostile_frames_are_refused_with_a_reason(body, message):
    with pytest.raises(FrameError, match=message):
        server_frames.decode(body)
