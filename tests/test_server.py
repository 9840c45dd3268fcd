"""The HTTP API: contract, errors as clear 4xx, token, Host and client checks, jobs and cancel."""

import base64
import io
import threading
import time

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from backend.jobs import JobRunner
from backend.pipeline import Cancelled, colorize
from backend.server import create_app

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def png_b64(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def decode(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def page(h: int = 120, w: int = 90) -> np.ndarray:
    ink = np.full((h, w), 255, np.uint8)
    ink[:, w // 2] = 0
    ink[h // 2, :] = 0
    return ink


def make_client(run=colorize, max_waiting: int = 4, host: str = "127.0.0.1", **kw) -> TestClient:
    app = create_app(TOKEN, JobRunner(run=run, max_waiting=max_waiting), **kw)
    return TestClient(app, base_url="http://127.0.0.1:8765", client=(host, 50000))


@pytest.fixture
def client() -> TestClient:
    return make_client()


def test_health_needs_no_token(client):
    r = client.get("/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["api_version"] == "v1" and "model_version" in body and "device" in body


def test_colorize_roundtrip(client):
    ink = page()
    hints = np.zeros(ink.shape + (4,), np.uint8)
    hints[10:13, 10:13] = (200, 30, 30, 255)
    r = client.post("/v1/colorize", json={"ink": png_b64(ink), "hints": png_b64(hints)}, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    layer, comp = decode(body["color_layer"]), decode(body["composite"])
    assert layer.shape == (120, 90, 4) and comp.shape == (120, 90, 3)
    assert (comp[ink == 0] == 0).all()
    assert body["width"] == 90 and body["height"] == 120


def test_openapi_and_options(client):
    assert client.get("/openapi.json", headers=AUTH).json()["paths"]["/v1/jobs"]
    opts = {o["name"]: o for o in client.get("/v1/options", headers=AUTH).json()["options"]}
    assert opts["reference_mode"]["choices"] == ["histogram", "palette"]
    assert opts["working_size"]["help"]


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({"ink": "%%%"}, 400, "base64"),
        ({"ink": base64.b64encode(b"not an image").decode()}, 400, "not a readable image"),
        ({"ink": png_b64(page()), "hints": png_b64(np.zeros((5, 5, 4), np.uint8))}, 400, "same size"),
        ({"ink": png_b64(page()), "options": {"bogus": 1}}, 400, "unknown option"),
        ({"ink": png_b64(page()), "options": {"working_size": "big"}}, 400, "working_size"),
        ({"ink": png_b64(page()), "colour": 1}, 422, "colour"),
        ({}, 422, "ink"),
    ],
)
def test_bad_input_is_a_clear_4xx(client, body, status, words):
    r = client.post("/v1/jobs", json=body, headers=AUTH)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


def test_invalid_json(client):
    r = client.post("/v1/jobs", content=b"{not json", headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 422 and "error" in r.json()


def test_token_required(client):
    body = {"ink": png_b64(page())}
    assert client.post("/v1/jobs", json=body).status_code == 401
    assert client.post("/v1/jobs", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/options").status_code == 401


def test_wrong_host_refused(client):
    r = client.get("/v1/health", headers={"Host": "evil.example:8765"})
    assert r.status_code == 403 and "Host" in r.json()["error"]


def test_remote_client_refused_when_local_only():
    remote = make_client(host="192.0.2.7")
    assert remote.get("/v1/health").status_code == 403


def test_job_lifecycle_and_cancel():
    started, release = threading.Event(), threading.Event()

    def slow(request, progress=None, cancelled=None):
        started.set()
        while not release.wait(0.01):
            if cancelled and cancelled():
                raise Cancelled()
        return colorize(request, progress=progress, cancelled=cancelled)

    c = make_client(run=slow, max_waiting=1)
    body = {"ink": png_b64(page())}
    first = c.post("/v1/jobs", json=body, headers=AUTH).json()
    assert started.wait(5)
    second = c.post("/v1/jobs", json=body, headers=AUTH).json()
    assert second["status"] == "queued" and second["position"] == 1
    busy = c.post("/v1/jobs", json=body, headers=AUTH)
    assert busy.status_code == 503 and "busy" in busy.json()["error"] and busy.json()["position"] == 2
    assert c.get(f"/v1/jobs/{first['id']}/result", headers=AUTH).status_code == 409
    assert c.delete(f"/v1/jobs/{second['id']}", headers=AUTH).json()["status"] == "cancelled"
    c.delete(f"/v1/jobs/{first['id']}", headers=AUTH)
    for _ in range(200):
        if c.get(f"/v1/jobs/{first['id']}", headers=AUTH).json()["status"] == "cancelled":
            break
        time.sleep(0.02)
    assert c.get(f"/v1/jobs/{first['id']}", headers=AUTH).json()["status"] == "cancelled"
    release.set()
    third = c.post("/v1/jobs", json=body, headers=AUTH).json()
    for _ in range(500):
        status = c.get(f"/v1/jobs/{third['id']}", headers=AUTH).json()
        if status["status"] == "done":
            break
        time.sleep(0.02)
    assert status["status"] == "done" and status["progress"] == 1.0
    assert c.get(f"/v1/jobs/{third['id']}/result", headers=AUTH).status_code == 200
    assert c.get("/v1/jobs/nope", headers=AUTH).status_code == 404


def test_failed_job_keeps_the_server_alive():
    def boom(request, progress=None, cancelled=None):
        raise RuntimeError("kaboom")

    c = make_client(run=boom)
    r = c.post("/v1/colorize", json={"ink": png_b64(page())}, headers=AUTH)
    assert r.status_code == 500 and "kaboom" in r.json()["error"]
    assert c.get("/v1/health").status_code == 200
