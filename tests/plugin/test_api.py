"""The request the plugin sends and what the backend's answers mean (pure), checked against the backend's API."""

import base64
import dataclasses
import json

import pytest

from krita_mangacolor import api
from krita_mangacolor.request import ColorizeRequest


def test_request_body_shape():
    req = ColorizeRequest("INK", "HINTS", ["R1"], options={"keep_white": True})
    body = {"ink": "INK", "hints": "HINTS", "references": ["R1"], "options": {"keep_white": True}}
    assert req.to_json() == body and json.loads(req.encode()) == body
    assert ColorizeRequest("INK").to_json()["hints"] is None and ColorizeRequest("INK", "").to_json()["hints"] is None
    # the reserved inputs travel only when set
    panels = [{"polygon": [[0, 0], [5, 0], [5, 5]], "palettes": [{"name": "p"}]}]
    extra = ColorizeRequest("INK", draft="D", panels=panels, reference_weights=[1.0, 0.5], palettes=[{"name": "q"}]).to_json()
    assert extra["panels"] == panels and extra["reference_weights"] == [1.0, 0.5] and extra["palettes"] == [{"name": "q"}]
    assert "reference_weights" not in ColorizeRequest("INK", references=["A", "B"], reference_weights=[1, 1]).to_json()
    assert ColorizeRequest("INK", panels="auto").to_json()["panels"] == "auto"
    with pytest.raises(ValueError):
        ColorizeRequest("")


def test_plugin_speaks_the_backends_api():
    """The paths and methods client.py uses exist in the backend's own OpenAPI description, the request's
    fields mirror backend/request.py's ColorizeRequest, and every key the plugin sends is in the body the
    backend accepts."""
    pytest.importorskip("fastapi")
    from backend import request as backend_request
    from backend.server import create_app

    spec = create_app("token").openapi()
    used = {
        (api.HEALTH, "get"), (api.OPTIONS, "get"), (api.JOBS, "post"), (api.job_path("{job_id}"), "get"),
        (api.job_path("{job_id}"), "delete"), (api.result_path("{job_id}"), "get"),
    }  # fmt: skip
    served = {(path, method) for path, methods in spec["paths"].items() for method in methods}
    assert used <= served, used - served
    mirror = [f.name for f in dataclasses.fields(ColorizeRequest)]
    assert mirror == [f.name for f in dataclasses.fields(backend_request.ColorizeRequest)]
    body = spec["paths"][api.JOBS]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    accepted = set(spec["components"]["schemas"][body]["properties"])
    assert set(ColorizeRequest("INK", "H", ["R"], options={"a": 1}).to_json()) <= accepted


def test_server_error_text_is_verbatim():
    msg = "hints are 10x10 but the ink is 20x20; they must be the same size"
    assert api.server_error_text(400, json.dumps({"error": msg}).encode()) == msg
    assert api.server_error_text(500, b"Internal Server Error") == "Internal Server Error"
    assert api.server_error_text(502, b"") == "HTTP 502"


def test_parse_and_describe_job():
    job = api.parse_job({"id": "j", "status": "running", "progress": 0.42, "stage": "restore_full", "position": 0, "error": None})
    assert api.describe_job(job) == "Colorizing: restore full (42%)"
    q = api.parse_job({"id": "j", "status": "queued", "progress": 0, "stage": "queued", "position": 2})
    assert "position 2" in api.describe_job(q)
    f = api.parse_job({"id": "j", "status": "failed", "error": "out of memory"})
    assert "out of memory" in api.describe_job(f)
    with pytest.raises(ValueError):
        api.parse_job({"status": "done"})


def test_parse_result():
    png = b"\x89PNG fake"
    r = api.parse_result({"color_layer": base64.b64encode(png).decode(), "composite": "B", "width": 3, "height": 2, "model_version": "m", "seconds": {"a": 1}})
    assert (r.color_png, r.width, r.height, r.model_version) == (png, 3, 2, "m")
    with pytest.raises(ValueError, match="not valid base64"):
        api.parse_result({"color_layer": "A!A", "width": 3, "height": 2})
    with pytest.raises(ValueError):
        api.parse_result({"composite": "B"})
    with pytest.raises(ValueError):
        api.parse_result({"color_layer": "A", "width": "x"})


def test_health():
    good = {"status": "ok", "version": "0.1.0", "api_version": "v1", "device": "cpu", "model_version": "m1"}
    assert api.health_is_compatible(good) == (True, "")
    assert api.describe_health(good) == "MangaColor backend 0.1.0 on cpu model m1"
    assert not api.health_is_compatible({"status": "ok", "api_version": "v2"})[0]
    assert not api.health_is_compatible("<html>")[0]
