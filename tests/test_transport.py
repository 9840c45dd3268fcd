"""The frames transport through the server: the same colour layer as the PNG/JSON path, bit for bit,
frames answers for frames jobs (and for `Accept: frames`), and hostile frames refused with a reason."""

import zlib

import numpy as np
import pytest
from starlette.testclient import TestClient

from backend import frames
from backend.jobs import JobRunner
from backend.pipeline import colorize
from backend.server import create_app
from api_images import png_b64, png_decode

TOKEN = "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FRAMES = {**AUTH, "Content-Type": frames.CONTENT_TYPE}


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = create_app(TOKEN, JobRunner(run=colorize))
    return TestClient(app, base_url="http://127.0.0.1:8765", client=("127.0.0.1", 50000))


def page_and_hints() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    ink = np.full((160, 120), 255, np.uint8)
    ink[20:22, 10:110] = 0
    ink[120:122, 10:110] = 0
    ink[20:122, 10:12] = 0
    ink[20:122, 108:110] = 0
    ink[60:100, 40:80] = rng.integers(0, 256, (40, 40))  # gray levels: every float32 value of /255
    hints = np.zeros((160, 120, 4), np.uint8)
    hints[40:44, 30:34] = (220, 40, 40, 255)
    hints[130:133, 50:53] = (30, 90, 200, 255)
    ref = rng.integers(0, 256, (40, 30, 4), np.uint8)
    return ink, hints, ref


def frames_request(ink, hints, ref, fields=None) -> bytes:
    ys, xs = np.nonzero(hints[..., 3])
    box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    x, y, w, h = box
    size = (ink.shape[1], ink.shape[0])
    return frames.encode(fields or {"options": {"flat_regions": 0.7}}, [
        ("ink", "gray8", ink, None, None),
        ("hints", "bgra8", frames.rgba_to_bgra(hints[y : y + h, x : x + w]), size, box),
        ("reference", "bgra8", frames.rgba_to_bgra(ref), None, None),
    ])


def test_health_says_frames(client):
    assert client.get("/v1/health").json()["frames"] is True


def test_frames_colour_layer_is_identical_to_the_png_path(client):
    ink, hints, ref = page_and_hints()
    r = client.post("/v1/colorize", json={"ink": png_b64(ink), "hints": png_b64(hints), "references": [png_b64(ref)],
                                          "options": {"flat_regions": 0.7}}, headers=AUTH)
    assert r.status_code == 200, r.text
    via_png = png_decode(r.json()["color_layer"])
    r = client.post("/v1/colorize", content=frames_request(ink, hints, ref), headers=FRAMES)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == frames.CONTENT_TYPE
    fields, blobs = frames.decode(r.content)
    assert (fields["width"], fields["height"]) == (120, 160) and "seconds" in fields and fields["model_version"]
    assert [b.name for b in blobs] == ["color_layer"] and blobs[0].kind == "bgra8"
    np.testing.assert_array_equal(frames.rgba_to_bgra(blobs[0].full()), via_png)


def test_frames_job_answers_frames_and_json_job_answers_frames_when_asked(client):
    ink, hints, ref = page_and_hints()
    r = client.post("/v1/jobs", content=frames_request(ink, hints, ref, {"outputs": ["color_layer", "composite"]}), headers=FRAMES)
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    for _ in range(400):
        if client.get(f"/v1/jobs/{job}", headers=AUTH).json()["status"] == "done":
            break
    r = client.get(f"/v1/jobs/{job}/result", headers=AUTH)
    assert r.headers["content-type"] == frames.CONTENT_TYPE
    _, blobs = frames.decode(r.content)
    assert [b.name for b in blobs] == ["color_layer", "composite"]
    composite = frames.rgba_to_bgra(blobs[1].full())
    assert (composite[..., :3][ink == 0] == 0).all() and (composite[..., 3] == 255).all()

    r = client.post("/v1/jobs", json={"ink": png_b64(ink)}, headers=AUTH)
    job = r.json()["id"]
    for _ in range(400):
        if client.get(f"/v1/jobs/{job}", headers=AUTH).json()["status"] == "done":
            break
    r = client.get(f"/v1/jobs/{job}/result", headers={**AUTH, "Accept": frames.CONTENT_TYPE})
    assert r.headers["content-type"] == frames.CONTENT_TYPE
    assert frames.decode(r.content)[1][0].full().shape == (160, 120, 4)


def body_with(specs: list[dict], payload: bytes, fields: dict | None = None) -> bytes:
    import json
    import struct

    header = json.dumps({"fields": fields or {}, "blobs": specs}).encode()
    return b"MCF1" + struct.pack("<I", len(header)) + header + payload


INK_SPEC = {"name": "ink", "kind": "gray8", "width": 4, "height": 4, "length": 16}
BOMB = zlib.compress(b"\0" * 10_000_000, 9)


@pytest.mark.parametrize(
    "body, status, words",
    [
        (b"PNG....", 400, "bad magic"),
        (body_with([INK_SPEC], b"x" * 15), 400, "length"),
        (body_with([{**INK_SPEC, "length": 15}], b"x" * 15), 400, "expected"),
        (body_with([], b""), 400, "needs an 'ink' blob"),
        (body_with([{**INK_SPEC, "name": "evil"}], b"x" * 16), 400, "unknown blob"),
        (body_with([INK_SPEC, INK_SPEC], b"x" * 32), 400, "more than one"),
        (body_with([INK_SPEC], b"x" * 16, {"ink": "abc"}), 400, "travels as a blob"),
        (body_with([{**INK_SPEC, "codec": "zlib", "length": len(BOMB)}], BOMB), 400, "declared"),
        (body_with([INK_SPEC], b"x" * 16, {"options": {"bogus": 1}}), 400, "unknown option"),
        (body_with([INK_SPEC], b"x" * 16, {"colour": 1}), 422, "colour"),
        (body_with([INK_SPEC, {**INK_SPEC, "name": "hints", "kind": "bgra8", "width": 5, "length": 80}], b"x" * 96), 400, "same size"),
    ],
)
def test_hostile_frames_are_a_clear_4xx(client, body, status, words):
    r = client.post("/v1/jobs", content=body, headers=FRAMES)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


def test_frames_need_the_token(client):
    ink, hints, ref = page_and_hints()
    r = client.post("/v1/colorize", content=frames_request(ink, hints, ref), headers={"Content-Type": frames.CONTENT_TYPE})
    assert r.status_code == 401


def test_result_deflate_in_two_parts_is_one_zlib_stream():
    from backend import transport

    rng = np.random.default_rng(5)
    rgba = np.repeat(rng.integers(0, 256, (1500, 1, 4), np.uint8), 2800, axis=1)  # 4.2 Mpx: two parts
    rgba[::7, ::3] = rng.integers(0, 256, (215, 934, 4), np.uint8)
    data = transport.rgba_bands_zlib(rgba)
    assert zlib.decompress(data) == frames.rgba_to_bgra(rgba).tobytes()
    small = rgba[:100, :100, :3]
    bgra = np.concatenate([small[..., ::-1], np.full((100, 100, 1), 255, np.uint8)], -1)
    assert zlib.decompress(transport.rgba_bands_zlib(small)) == bgra.tobytes()
    for a, b in ((b"abc", b"defgh"), (b"\xff" * 70000, b"\x01" * 123457)):
        assert transport._adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(a + b)


def test_frames_answer_carries_one_variant_blob_per_extra_variant(client):
    ink, hints, ref = page_and_hints()
    r = client.post("/v1/colorize", content=frames_request(ink, hints, ref, {"options": {"variants": 3}}), headers=FRAMES)
    assert r.status_code == 200, r.text
    fields, blobs = frames.decode(r.content)
    assert [b.name for b in blobs] == ["color_layer", "variant", "variant"]
    assert all(b.kind == "bgra8" and b.full().shape == (160, 120, 4) for b in blobs)
    assert set(fields) == {"width", "height", "model_version", "seconds"}
