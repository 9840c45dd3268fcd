"""Request building and response interpretation (pure)."""

import json

import pytest

from krita_mangacolor import api


def test_job_body_shape():
    body = api.job_body("INK", "HINTS", ["R1"], {"keep_white": True})
    assert body == {"ink": "INK", "hints": "HINTS", "references": ["R1"], "options": {"keep_white": True}}
    assert api.job_body("INK")["hints"] is None and api.job_body("INK", "")["hints"] is None
    assert json.loads(api.encode_body(body)) == body
    with pytest.raises(ValueError):
        api.job_body("")


def test_paths():
    assert api.HEALTH == "/v1/health" and api.JOBS == "/v1/jobs"
    assert api.job_path("ab") == "/v1/jobs/ab" and api.result_path("ab") == "/v1/jobs/ab/result"


def test_server_error_text_is_verbatim():
    msg = "hints are 10x10 but the ink is 20x20; they must be the same size"
    assert api.server_error_text(400, json.dumps({"error": msg}).encode()) == msg
    assert api.server_error_text(500, b"Internal Server Error") == "Internal Server Error"
    assert api.server_error_text(502, b"") == "HTTP 502"


def test_parse_and_describe_job():
    job = api.parse_job({"id": "j", "status": "running", "progress": 0.42, "stage": "restore_full", "position": 0, "error": None})
    assert not job.final and api.describe_job(job) == "Colorizing: restore full (42%)"
    q = api.parse_job({"id": "j", "status": "queued", "progress": 0, "stage": "queued", "position": 2})
    assert "position 2" in api.describe_job(q)
    f = api.parse_job({"id": "j", "status": "failed", "error": "out of memory"})
    assert f.final and "out of memory" in api.describe_job(f)
    with pytest.raises(ValueError):
        api.parse_job({"status": "done"})


def test_parse_result():
    r = api.parse_result({"color_layer": "AAA", "composite": "B", "width": 3, "height": 2, "model_version": "m", "seconds": {"a": 1}})
    assert (r.width, r.height, r.model_version) == (3, 2, "m")
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
