"""What a result carries: the colour layer always, the composite only when asked for (computed on
demand, byte-identical to the pipeline's); and a request is validated once, where it enters."""

from __future__ import annotations

import time

import numpy as np
import pytest
from starlette.testclient import TestClient

from backend.jobs import JobRunner
from backend.request import ColorizeOptions, ColorizeRequest, ColorizeResult, RequestError, multiply
from backend.server import create_app
from api_images import png_b64, png_decode as decode

AUTH = {"Authorization": "Bearer t"}


def fake_colorize(request, progress=None, cancelled=None) -> ColorizeResult:
    h, w = request.ink.shape
    layer = np.zeros((h, w, 4), np.uint8)
    layer[..., 0], layer[..., 1], layer[..., 2], layer[..., 3] = 200, np.arange(w)[None, :] % 256, 90, 255
    return ColorizeResult(color_layer=layer, model_version="test", seconds={}, ink=request.ink)


def client(run=fake_colorize) -> TestClient:
    return TestClient(create_app("t", JobRunner(run=run)), base_url="http://127.0.0.1:8765", client=("127.0.0.1", 5))


def whole_page_multiply(layer: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """The composite as the pipeline made it before it was computed on demand, in one piece."""
    mixed = layer[..., :3].astype(np.float32)
    mixed *= ink[..., None]
    mixed += 0.5
    np.clip(mixed, 0, 255, out=mixed)
    return mixed.astype(np.uint8)


def test_multiply_is_the_pipelines_composite_byte_for_byte():
    rng = np.random.default_rng(3)
    layer = rng.integers(0, 256, (1700, 2600, 4), dtype=np.uint8)  # two bands
    ink = rng.random((1700, 2600), dtype=np.float32)
    ink[::7] = 0.0
    ink[::5] = 1.0
    composite = whole_page_multiply(layer, ink)
    assert np.array_equal(multiply(layer, ink), composite)
    assert (composite[ink == 0] == 0).all() and np.array_equal(composite[ink == 1], layer[ink == 1][:, :3])
    assert np.array_equal(ColorizeResult(color_layer=layer, model_version="m", seconds={}, ink=ink).composite, composite)


def test_a_result_needs_its_composite_or_the_ink():
    with pytest.raises(ValueError):
        ColorizeResult(color_layer=np.zeros((2, 2, 4), np.uint8), model_version="m", seconds={})


@pytest.mark.parametrize("path", ["/v1/colorize", "/v1/jobs"])
def test_composite_only_when_asked_for(path):
    c = client()
    ink = np.full((30, 20), 255, np.uint8)
    ink[:, 5] = 0
    for outputs, expected in ((None, {"color_layer"}), (["composite"], {"composite"}), (["color_layer", "composite"], {"color_layer", "composite"})):
        body = {"ink": png_b64(ink)} | ({"outputs": outputs} if outputs else {})
        r = c.post(path, json=body, headers=AUTH)
        if path == "/v1/jobs":
            job = r.json()["id"]
            for _ in range(200):
                if c.get(f"/v1/jobs/{job}", headers=AUTH).json()["status"] == "done":
                    break
                time.sleep(0.01)
            r = c.get(f"/v1/jobs/{job}/result", headers=AUTH)
        assert r.status_code == 200, r.text
        got = r.json()
        assert {"color_layer", "composite"} & set(got) == expected and (got["width"], got["height"]) == (20, 30)
        if "composite" in expected:
            comp = decode(got["composite"])
            assert comp.shape == (30, 20, 3) and (comp[:, 5] == 0).all() and (comp[:, 6, 0] == 200).all()


@pytest.mark.parametrize("outputs", [[], ["everything"], "composite"])
def test_bad_outputs_are_a_4xx(outputs):
    r = client().post("/v1/jobs", json={"ink": png_b64(np.full((8, 8), 255, np.uint8)), "outputs": outputs}, headers=AUTH)
    assert r.status_code == 422 and "outputs" in r.json()["error"]


def test_a_request_is_validated_once_on_its_way_to_the_job(monkeypatch):
    calls = {"request": 0, "options": 0}
    check_request, check_options = ColorizeRequest.validate, ColorizeOptions.__post_init__

    def counted_request(self):
        calls["request"] += 1
        check_request(self)

    def counted_options(self):
        calls["options"] += 1
        check_options(self)

    monkeypatch.setattr(ColorizeRequest, "validate", counted_request)
    monkeypatch.setattr(ColorizeOptions, "__post_init__", counted_options)
    r = client().post("/v1/colorize", json={"ink": png_b64(np.full((8, 8), 255, np.uint8)), "options": {"working_size": 96}}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert calls == {"request": 1, "options": 1}


def test_requests_and_options_are_checked_when_made():
    with pytest.raises(RequestError, match="same size"):
        ColorizeRequest(ink=np.ones((4, 4), np.float32), hints=np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(RequestError, match="flat_regions must be a number between 0 and 1"):
        ColorizeOptions(flat_regions=2.0)
    options = ColorizeOptions()
    with pytest.raises(AttributeError):
        options.working_size = 5  # type: ignore[misc]  # checked options cannot turn invalid later
