"""The HTTP API: contract, errors as clear 4xx, token, Host and client checks, jobs and cancel."""

import base64
import threading
import time

import numpy as np
import pytest
from starlette.testclient import TestClient

from backend.jobs import JobRunner
from backend.pipeline import Cancelled, colorize
from backend.server import create_app
from api_images import png_b64, png_decode as decode

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


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
    both = ["color_layer", "composite"]
    r = client.post("/v1/colorize", json={"ink": png_b64(ink), "hints": png_b64(hints), "outputs": both}, headers=AUTH)
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


# --- issue 14: limits counted on what is received, memory bounded, admission before decoding,
# --- decoder errors and degenerate pages as 4xx, cancel that answers the new state, strict Host.


def test_chunked_upload_is_counted_against_the_body_limit():
    """A chunked body has no Content-Length: the limit used to be skipped (20 MiB passed a 1 MB limit)."""
    c = make_client(max_body_bytes=1024 * 1024)

    def chunks():
        yield b'{"ink": "'
        for _ in range(40):
            yield b"A" * 65536
        yield b'"}'

    r = c.post("/v1/jobs", content=chunks(), headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 413 and "larger than 1048576 bytes" in r.json()["error"]
    small = c.post("/v1/jobs", content=iter([b'{"ink": "', png_b64(page()).encode(), b'"}']),
                   headers={**AUTH, "content-type": "application/json"})
    assert small.status_code == 202, small.text


@pytest.mark.parametrize(
    "host, allowed",
    [("localhost:80@evil.example", False), ("localhost@evil.example", False), ("evil.example:80@localhost", False),
     ("localhost.evil.example", False), ("localhost:", False), ("localhost:http", False), ("::1", False),
     ("127.0.0.1 ", False), ("127.0.0.1:8765/x", False), ("", False),
     ("localhost", True), ("LOCALHOST:8765", True), ("127.0.0.1:8765", True), ("[::1]:8765", True), ("[::1]", True)],
)
def test_host_header_is_parsed_strictly(client, host, allowed):
    r = client.get("/v1/health", headers={"Host": host})
    assert (r.status_code == 200) == allowed, (host, r.status_code)


def wait_status(c: TestClient, job_id: str, want: str, seconds: float = 20) -> dict:
    deadline = time.time() + seconds
    while time.time() < deadline:
        status = c.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
        if status["status"] == want:
            return status
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} is {status}, not {want}")


def test_result_is_dropped_once_fetched_and_delete_forgets_a_finished_job():
    runner = JobRunner(run=colorize)
    c = TestClient(create_app(TOKEN, runner), base_url="http://127.0.0.1:8765", client=("127.0.0.1", 50000))
    first = c.post("/v1/jobs", json={"ink": png_b64(page())}, headers=AUTH).json()
    wait_status(c, first["id"], "done")
    assert runner.held_result_bytes() > 0
    assert c.get(f"/v1/jobs/{first['id']}/result", headers=AUTH).status_code == 200
    assert runner.held_result_bytes() == 0  # fetched: not kept
    again = c.get(f"/v1/jobs/{first['id']}/result", headers=AUTH)
    assert again.status_code == 410 and "already fetched" in again.json()["error"]

    second = c.post("/v1/jobs", json={"ink": png_b64(page())}, headers=AUTH).json()
    wait_status(c, second["id"], "done")
    deleted = c.delete(f"/v1/jobs/{second['id']}", headers=AUTH)
    assert deleted.status_code == 200 and deleted.json()["status"] == "done"
    assert c.get(f"/v1/jobs/{second['id']}", headers=AUTH).status_code == 404  # a finished job is dropped
    assert runner.held_result_bytes() == 0


def test_results_held_are_bounded_in_bytes():
    runner = JobRunner(run=colorize, max_result_bytes=1)  # room for no result but the newest
    c = TestClient(create_app(TOKEN, runner), base_url="http://127.0.0.1:8765", client=("127.0.0.1", 50000))
    ids = []
    for _ in range(3):
        ids.append(c.post("/v1/jobs", json={"ink": png_b64(page())}, headers=AUTH).json()["id"])
        wait_status(c, ids[-1], "done")
    dropped = c.get(f"/v1/jobs/{ids[0]}/result", headers=AUTH)
    assert dropped.status_code == 410 and "dropped" in dropped.json()["error"] and "colorize again" in dropped.json()["error"]
    assert c.get(f"/v1/jobs/{ids[-1]}/result", headers=AUTH).status_code == 200


def test_a_busy_server_answers_503_before_decoding(monkeypatch):
    """Images used to be decoded (with float32 copies) before the queue check: 27 s and 5 GB
    for a 0.7 MB body of compressible 8000x8000 PNGs, all for a 'busy'."""
    started, release = threading.Event(), threading.Event()

    def slow(request, progress=None, cancelled=None):
        started.set()
        release.wait(20)
        raise Cancelled()

    c = make_client(run=slow, max_waiting=0)
    assert c.post("/v1/jobs", json={"ink": png_b64(page())}, headers=AUTH).status_code == 202
    assert started.wait(5)
    from PIL import ImageFile

    def no_decoding(self):
        raise AssertionError("decoded a request that could not be admitted")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    try:
        busy = c.post("/v1/jobs", json={"ink": png_b64(page(3000, 3000))}, headers=AUTH)
        assert busy.status_code == 503 and "busy" in busy.json()["error"]
    finally:
        release.set()


def malformed_dds_b64() -> str:
    import struct

    header = struct.pack("<3I", 0, 8, 8) + bytes(12) + bytes(44) + struct.pack("<4I", 32, 0, 0, 0) + bytes(36)
    return base64.b64encode(b"DDS " + struct.pack("<I", 124) + header).decode()


@pytest.mark.parametrize("field", ["ink", "hints", "references"])
def test_decoder_errors_are_4xx_not_500(client, field):
    """A malformed DDS (NotImplementedError inside Pillow) used to be a 500."""
    body = {"ink": png_b64(page())}
    body[field] = [malformed_dds_b64()] if field == "references" else malformed_dds_b64()
    r = client.post("/v1/colorize", json=body, headers=AUTH)
    assert r.status_code == 400 and "not a readable image" in r.json()["error"], r.text


@pytest.mark.parametrize(
    "ink, status",
    [(np.zeros((1, 1), np.uint8), 400), (np.full((1, 1), 255, np.uint8), 400), (np.zeros((1, 2), np.uint8), 200),
     (np.zeros((64, 48), np.uint8), 200), (np.full((64, 48), 255, np.uint8), 200),
     (np.zeros((1, 10000), np.uint8), 200), (np.full((10000, 1), 255, np.uint8), 200)],
    ids=["1x1 black", "1x1 white", "1x2", "all black", "all white", "1x10000", "10000x1"],
)
def test_degenerate_pages_colorize_or_get_a_clear_4xx(client, ink, status):
    """A 1x1 black page used to be a 500 (log(1) = 0 in region_maps, then IndexError in snap_white)."""
    r = client.post("/v1/colorize", json={"ink": png_b64(ink), "outputs": ["composite"]}, headers=AUTH)
    assert r.status_code == status, r.text
    if status == 400:
        assert "too small to colorize" in r.json()["error"]
    else:
        assert decode(r.json()["composite"]).shape == ink.shape + (3,)


def test_delete_answers_the_new_state_of_a_running_job():
    started = threading.Event()

    def cancellable(request, progress=None, cancelled=None):
        started.set()
        for _ in range(2000):
            if cancelled():
                raise Cancelled()
            time.sleep(0.005)
        raise AssertionError("never cancelled")

    c = make_client(run=cancellable)
    job = c.post("/v1/jobs", json={"ink": png_b64(page())}, headers=AUTH).json()
    assert started.wait(5)
    t0 = time.perf_counter()
    answer = c.delete(f"/v1/jobs/{job['id']}", headers=AUTH).json()
    assert answer["status"] == "cancelled" and time.perf_counter() - t0 < 1.0


def test_delete_of_a_job_that_does_not_stop_at_once_says_cancelling():
    started, release = threading.Event(), threading.Event()

    def stubborn(request, progress=None, cancelled=None):
        started.set()
        release.wait(20)
        raise Cancelled()

    runner = JobRunner(run=stubborn)
    c = TestClient(create_app(TOKEN, runner), base_url="http://127.0.0.1:8765", client=("127.0.0.1", 50000))
    job = c.post("/v1/jobs", json={"ink": png_b64(page())}, headers=AUTH).json()
    assert started.wait(5)
    try:
        assert c.delete(f"/v1/jobs/{job['id']}", headers=AUTH).json()["status"] == "cancelling"
        assert c.get(f"/v1/jobs/{job['id']}", headers=AUTH).json()["status"] == "cancelling"
    finally:
        release.set()
    wait_status(c, job["id"], "cancelled")


def test_client_leaving_the_synchronous_colorize_cancels_its_job():
    import socket

    import uvicorn

    started, stopped = threading.Event(), threading.Event()

    def long_job(request, progress=None, cancelled=None):
        started.set()
        for _ in range(3000):
            if cancelled():
                stopped.set()
                raise Cancelled()
            time.sleep(0.005)
        raise AssertionError("still running 15 s after its client left")

    app = create_app(TOKEN, JobRunner(run=long_job))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.02)
        body = ('{"ink": "%s"}' % png_b64(page())).encode()
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(
            b"POST /v1/colorize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        )
        assert started.wait(10)
        sock.close()  # the client gives up
        assert stopped.wait(5), "the job went on for a client that left"
    finally:
        server.should_exit = True
        thread.join(10)
