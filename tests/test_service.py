"""The real server process on loopback: token file, Host check, graceful shutdown, load, fuzzing."""

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from backend.request import ColorizeOptions
from api_images import png_b64

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp: Path, *extra: str):
        self.port = free_port()
        self.env = {**os.environ, "XDG_CONFIG_HOME": str(tmp / "config")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backend", "serve", "--port", str(self.port), *extra],
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/v1/health", timeout=1)
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stdout.read())
                time.sleep(0.2)
        self.token_file = tmp / "config" / "mangacolor" / "token"
        self.token = self.token_file.read_text().strip()

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def peak_memory_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return -1

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("srv"))
    yield srv
    if srv.proc.poll() is None:
        srv.stop()


def small_page(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ink = np.full((96, 64), 255, np.uint8)
    ink[:, rng.integers(10, 54)] = 0
    ink[rng.integers(10, 86), :] = 0
    return ink


def test_token_file_is_private_and_required(server):
    assert server.token_file.stat().st_mode & 0o077 == 0
    req = urllib.request.Request(server.url + "/v1/options")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 401


def test_dns_rebinding_host_refused(server):
    status, body = server.request("GET", "/v1/health", headers={"Host": f"attacker.example:{server.port}"})
    assert status == 403 and "Host" in body["error"]


def test_non_loopback_bind_needs_explicit_flag():
    out = subprocess.run(
        [sys.executable, "-m", "backend", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2 and "--allow-remote" in out.stderr


def test_load_20_clients_x_5_requests(server):
    """Every answer is a correct result or a clean busy; prints throughput and peak memory."""
    def client(i: int) -> list[str]:
        outcomes = []
        for j in range(5):
            ink = small_page(i * 5 + j)
            status, body = server.request("POST", "/v1/colorize", {"ink": png_b64(ink), "outputs": ["composite"]})
            if status == 503:
                assert "busy" in body["error"] and body["position"] >= 1
                outcomes.append("busy")
                continue
            assert status == 200, body
            comp = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["composite"]))))
            assert comp.shape == (96, 64, 3) and (comp[ink == 0] == 0).all()
            outcomes.append("ok")
        return outcomes

    t0 = time.time()
    with ThreadPoolExecutor(20) as pool:
        results = [o for r in pool.map(client, range(20)) for o in r]
    seconds = time.time() - t0
    ok = results.count("ok")
    print(f"\nload: {len(results)} requests, {ok} ok, {results.count('busy')} busy, "
          f"{ok / seconds:.1f} colorizations/s, server peak RSS {server.peak_memory_kb() / 1024:.0f} MB")
    assert len(results) == 100 and ok >= 5
    assert server.request("GET", "/v1/health")[0] == 200


FUZZ_CASES = {"n": 0}
FUZZ_STATUSES: dict[int, int] = {}
# MANGACOLOR_FUZZ_EXAMPLES=2000 for the long run the issue asks for; the suite runs a short one.
FUZZ_EXAMPLES = int(os.environ.get("MANGACOLOR_FUZZ_EXAMPLES", "80"))


def _encoded(arr: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def _png_header_only(w: int, h: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")


def _half_open_images() -> list[bytes]:
    """Images Pillow opens, or half opens, and then fails on in its own ways (issue 14): a DDS with
    no pixel format raises NotImplementedError, truncated files OSError, a lying ICO directory...
    plus degenerate pages and a header announcing more pixels than allowed."""
    import struct

    page = small_page(1)
    dds = b"DDS " + struct.pack("<I", 124) + struct.pack("<3I", 0, 8, 8) + bytes(56) + struct.pack("<4I", 32, 0, 0, 0) + bytes(36)
    ico = _encoded(np.stack([page] * 3, -1), "ICO")
    return [
        dds, dds[:40], dds.replace(struct.pack("<4I", 32, 0, 0, 0), struct.pack("<4I", 32, 4, 0x30303030, 0)),
        ico, ico[:6] + struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, 10**9, 22) + ico[22:], ico[:30],
        _encoded(page, "PNG")[:80], _encoded(page, "JPEG")[:150], _encoded(page, "TIFF")[:120],
        _encoded(page, "GIF")[:30], _encoded(page, "BMP")[:60], _encoded(page, "WEBP")[:40],
        _png_header_only(9000, 9000), _png_header_only(0, 5), _png_header_only(20000, 2),
        _encoded(np.zeros((1, 1), np.uint8), "PNG"), _encoded(np.zeros((1, 600), np.uint8), "PNG"),
        _encoded(np.zeros((40, 30), np.uint8), "PNG"), _encoded(np.full((40, 30), 255, np.uint8), "PNG"),
        _encoded(np.zeros((6, 6, 4), np.uint8), "PNG"),
    ]


HALF_OPEN = _half_open_images()
b64_image = st.one_of(
    st.sampled_from(HALF_OPEN),
    st.builds(lambda img, cut: img[:cut], st.sampled_from(HALF_OPEN), st.integers(0, 300)),
    st.builds(lambda img, junk: img + junk, st.sampled_from(HALF_OPEN), st.binary(max_size=40)),
).map(lambda b: base64.b64encode(b).decode())


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(
        st.dictionaries(st.sampled_from(["ink", "hints", "references", "options", "outputs", "x"]),
                        st.one_of(st.none(), st.integers(), st.text(max_size=30), st.lists(st.text(max_size=10), max_size=3),
                                  st.dictionaries(st.text(max_size=12), st.one_of(st.integers(), st.text(max_size=5), st.booleans()), max_size=3)),
                        max_size=5),
        st.builds(lambda b: {"ink": base64.b64encode(b).decode()}, st.binary(max_size=200)),
        st.builds(lambda opts: {"ink": png_b64(small_page(0)), "options": opts},
                  st.dictionaries(st.sampled_from([f.name for f in fields(ColorizeOptions)] + ["bogus"]),
                                  st.one_of(st.integers(-10, 10000), st.integers(), st.floats(allow_nan=True), st.text(max_size=8), st.booleans(), st.none()),
                                  max_size=3)),
        st.fixed_dictionaries({"ink": b64_image}),
        st.fixed_dictionaries({"ink": st.just(png_b64(small_page(2))), "hints": b64_image}),
        st.fixed_dictionaries({"ink": st.one_of(b64_image, st.just(png_b64(small_page(3)))),
                               "references": st.lists(b64_image, min_size=1, max_size=3)}),
    ),
    path=st.sampled_from(["/v1/jobs", "/v1/colorize"]),
)
@example(body={"ink": png_b64(small_page(0)), "options": {"working_size": 64}}, path="/v1/jobs")  # one that works
@example(body={"ink": png_b64(small_page(0)), "outputs": ["composite", "everything"]}, path="/v1/colorize")  # one refused
def test_fuzz_never_5xx(server, body, path):
    FUZZ_CASES["n"] += 1
    status, answer = server.request("POST", path, body)
    FUZZ_STATUSES[status] = FUZZ_STATUSES.get(status, 0) + 1
    assert status < 500, (body, answer)
    assert status in (200, 202) or "error" in answer
    if status == 202:  # do not let the fuzzer's jobs fill the queue for the next cases
        server.request("DELETE", f"/v1/jobs/{answer['id']}")


def test_fuzz_status_counts():
    """Runs after the fuzz test: prints what it saw, and checks that the fuzzer reached both sides
    (bodies colorized and bodies refused with a 4xx), so "never 5xx" was not said of refusals only."""
    if not FUZZ_CASES["n"]:
        pytest.skip("the fuzz test did not run")
    print(f"\nfuzz: {FUZZ_CASES['n']} cases, statuses {dict(sorted(FUZZ_STATUSES.items()))}")
    assert {200, 202} & set(FUZZ_STATUSES) and [s for s in FUZZ_STATUSES if 400 <= s < 500], FUZZ_STATUSES


def test_fuzz_job_paths_never_5xx(server):
    for job_id in ["", "x", "../../etc/passwd", "%00", "a" * 500]:
        for method in ("GET", "DELETE"):
            try:
                status, _ = server.request(method, f"/v1/jobs/{urllib.request.quote(job_id)}")
            except json.JSONDecodeError:
                status = 404  # the router's own 404/405 for an empty id
            assert status < 500


def test_graceful_shutdown(tmp_path):
    srv = Server(tmp_path)
    assert srv.request("GET", "/v1/health")[0] == 200
    assert srv.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after its graceful shutdown
    out = srv.proc.stdout.read()
    assert "Traceback" not in out
