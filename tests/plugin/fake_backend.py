"""A tiny stand-in for the backend's HTTP API v1 (stdlib http.server + Pillow), for the plugin's tests.

It speaks the documented contract: bearer token on everything except /v1/health, JSON bodies,
{"error": ...} on failures, jobs that go queued -> running -> done over a few polls. The colour layer
it returns is the hint colour where a hint is, a fixed colour elsewhere, fully opaque.
GET /v1/options answers with OPTIONS (the real backend's shape) and jobs refuse unknown options, like it.
Run as a script (python fake_backend.py --port N [--job-seconds S]) to test the plugin starting a server, or
as a slow backend for the real-Krita test (cancel mid-run, a big page); GET /v1/_test/requests lists what
it received (method, path, options) for such a test.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

from PIL import Image

try:
    import fake_panels
except ImportError:  # run as a script from elsewhere
    import sys as _sys
    from pathlib import Path as _Path

    _sys.path.insert(0, str(_Path(__file__).resolve().parent))
    import fake_panels

import fake_frames  # noqa: E402  (the frames transport, variants, draft: issues 13 and 15)

FILL = (200, 170, 140)
OPTIONS = [
    {"name": "reference_mode", "type": "enum", "choices": ["histogram", "palette"], "default": "histogram",
     "help": "How references guide colour."},
    {"name": "working_size", "type": "int", "min": 64, "max": 4096, "default": 768,
     "help": "Long side in pixels at which the network runs."},
    {"name": "keep_white", "type": "bool", "default": True, "help": "Keep near-white paper pure white."},
    {"name": "flat_regions", "type": "float", "min": 0.0, "max": 1.0, "default": 0.6,
     "help": "How much each line-enclosed region is flattened to one colour."},
]


def b64png(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def unb64png(text: str) -> Image.Image:
    img = Image.open(io.BytesIO(base64.b64decode(text)))
    img.load()
    return img


class FakeBackend:
    def __init__(self, token: str = "secret-token", port: int = 0):
        self.token = token
        self.requests: list[tuple[str, str, Any]] = []  # (method, path, json body)
        self.jobs: dict[str, dict] = {}
        self.polls_until_done = 2
        self.fail_with: Optional[str] = None  # job ends "failed" with this error
        self.reject: Optional[tuple[int, str]] = None  # POST /v1/jobs answers this (status, error)
        self.health_status = 200
        self.post_delay = 0.0  # seconds POST /v1/jobs takes (to cancel during the upload)
        self.result_size: Optional[tuple[int, int]] = None  # lie about the result size
        self.options = [dict(o) for o in OPTIONS]  # what GET /v1/options offers (None: answer 404)
        self.job_seconds = 0.0  # > 0: a job is done this many seconds after it was made (not by polls)
        self.frames = False  # speaks the frames transport (health says so; frames jobs and Accept: frames answer frames)
        self.lock = threading.Lock()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if fake_frames.is_frames(self.headers.get("Content-Type")):
                    try:
                        body = fake_frames.request_body(raw)
                    except ValueError as exc:
                        return self._send(400, {"error": str(exc)})
                else:
                    body = json.loads(raw) if raw else None
                with backend.lock:
                    backend.requests.append((method, self.path, body))
                if self.path != "/v1/health" and self.headers.get("Authorization") != f"Bearer {backend.token}":
                    return self._send(401, {"error": "missing or wrong access token"})
                try:
                    status, answer = backend.route(method, self.path, body)
                except Exception as exc:  # pragma: no cover - shows up in the test's failure
                    status, answer = 500, {"error": f"fake backend crashed: {exc!r}"}
                if isinstance(answer, dict) and answer.pop("_frames", False) or (
                    status == 200 and isinstance(answer, dict) and "color_layer" in answer and fake_frames.wants_frames(self.headers.get("Accept")) and backend.frames
                ):
                    data = fake_frames.result_frames(answer)
                    self.send_response(status)
                    self.send_header("Content-Type", fake_frames.CONTENT_TYPE)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    return self.wfile.write(data)
                self._send(status, answer)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> "FakeBackend":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- the API ---

    def job_json(self, job: dict) -> dict:
        return {k: job[k] for k in ("id", "status", "progress", "stage", "position", "error")}

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/v1/health":
            if self.health_status != 200:
                return self.health_status, {"error": "health says no"}
            return 200, {"status": "ok", "version": "0.1.0", "api_version": "v1", "device": "cpu", "model_version": "fake-1",
                         **({"frames": True} if self.frames else {})}
        if method == "GET" and path == "/v1/options":
            if self.options is None:
                return 404, {"error": "Not Found"}
            return 200, {"options": self.options}
        if method == "GET" and path == "/v1/_test/requests":
            with self.lock:
                return 200, {"requests": [[m, p, (b or {}).get("options") if isinstance(b, dict) else None] for m, p, b in self.requests]}
        if method == "POST" and path == "/v1/_test/config":  # the real-Krita test makes jobs slow or quick
            for key in ("job_seconds", "polls_until_done", "frames"):
                if key in (body or {}):
                    setattr(self, key, body[key])
            if (body or {}).get("variants_options") and not any(o["name"] == "variants" for o in self.options or []):
                self.options = list(self.options or []) + [dict(o) for o in fake_frames.VARIANT_OPTIONS]
            return 200, {"job_seconds": self.job_seconds, "polls_until_done": self.polls_until_done}
        extra = fake_panels.route(method, path, body, unb64png)  # POST /v1/panels, /v1/palettes
        if extra is not None:
            return extra
        if method == "POST" and path == "/v1/jobs":
            unknown = sorted(set((body or {}).get("options") or {}) - {o["name"] for o in (self.options or [])})
            if unknown:
                return 400, {"error": f"unknown option(s): {', '.join(unknown)}"}
            if self.post_delay:
                time.sleep(self.post_delay)
            if self.reject:
                status, error = self.reject
                return status, {"error": error, **({"position": 5} if status == 503 else {})}
            ink = unb64png(body["ink"])
            hints = unb64png(body["hints"]) if body.get("hints") else None
            job = {
                "id": uuid.uuid4().hex,
                "status": "queued",
                "progress": 0.0,
                "stage": "queued",
                "position": 1,
                "error": None,
                "polls": 0,
                "ink": ink,
                "hints": hints,
                "body": body,
                "created": time.monotonic(),
            }
            self.jobs[job["id"]] = job
            return 202, self.job_json(job)
        if path.startswith("/v1/jobs/"):
            parts = path.split("/")
            job = self.jobs.get(parts[3])
            if job is None:
                return 404, {"error": f"no job {parts[3]}"}
            if method == "DELETE":
                if job["status"] in ("queued", "running"):
                    job["status"] = "cancelled"
                return 200, self.job_json(job)
            if len(parts) == 5 and parts[4] == "result":
                if job["status"] != "done":
                    return 409, {"error": f"job is {job['status']}"}
                return 200, self.result(job)
            if job["status"] in ("queued", "running"):
                job["polls"] += 1
                if self.job_seconds > 0:
                    elapsed = time.monotonic() - job["created"]
                    if elapsed < self.job_seconds:
                        job.update(status="running", progress=min(0.99, elapsed / self.job_seconds), stage="network", position=0)
                        return 200, self.job_json(job)
                if self.job_seconds > 0 or job["polls"] >= self.polls_until_done:
                    if self.fail_with:
                        job.update(status="failed", error=self.fail_with)
                    else:
                        job.update(status="done", progress=1.0, stage="done", position=0)
                else:
                    job.update(status="running", progress=0.5, stage="network", position=0)
            return 200, self.job_json(job)
        return 404, {"error": f"no route {method} {path}"}

    def result(self, job: dict) -> dict:
        ink: Image.Image = job["ink"]
        w, h = ink.size
        body = job["body"]
        color = fake_frames.paint((w, h), FILL, body, 1, job["hints"], unb64png)
        variants = [fake_frames.paint((w, h), FILL, body, n, job["hints"], unb64png) for n in range(2, fake_frames.variant_count(body) + 1)]
        fake_panels.paint(color, job["body"])
        if self.result_size:
            w, h = self.result_size
        return {
            "color_layer": b64png(color),
            "composite": b64png(color.convert("RGB")),
            "width": w,
            "height": h,
            "model_version": "fake-1",
            "seconds": {"total": 0.01},
            **({"variants": [b64png(v) for v in variants]} if variants else {}),
            "_frames": body.get("_transport") == "frames",
        }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", default="secret-token")
    p.add_argument("--exit-at-once", action="store_true", help="print something and exit 3 (a broken server)")
    p.add_argument("--job-seconds", type=float, default=0.0, help="a job takes this long (default: two polls)")
    p.add_argument("--frames", action="store_true", help="speak the frames transport")
    p.add_argument("--token-file", help="write the token here (as the real backend does), for the plugin to read")
    args = p.parse_args()
    if args.exit_at_once:
        print("fake backend: cannot load the model weights")
        raise SystemExit(3)
    if args.token_file:
        import os

        os.makedirs(os.path.dirname(args.token_file), exist_ok=True)
        with open(args.token_file, "w", encoding="utf-8") as f:
            f.write(args.token + "\n")
    backend = FakeBackend(args.token, args.port)
    backend.job_seconds = args.job_seconds
    backend.frames = args.frames
    print(f"fake backend on {backend.url}", flush=True)
    backend.httpd.serve_forever()


if __name__ == "__main__":
    main()
