"""HTTP API over the pipeline (FastAPI). Local-only by default, token-protected, one job at a time.

Paths are versioned under /v1; /openapi.json describes them. Images travel as base64 PNG in JSON,
which Krita's Qt networking can build without third-party packages.
"""

from __future__ import annotations

import base64
import contextlib
import binascii
import ipaddress
import secrets
from dataclasses import fields
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import API_VERSION, __version__
from .imageio import ImageError, encode_png, load_hints, load_ink, load_reference
from .jobs import Job, JobRunner, QueueFull
from .request import ColorizeOptions, ColorizeRequest, RequestError

MAX_BODY_BYTES = 400 * 1024 * 1024  # a 6000x8500 page with hints and references, base64, fits
MAX_REFERENCES = 8
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


class ColorizeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ink: str = Field(description="the B/W page, base64 PNG/JPEG (L, LA, RGB or RGBA; 1, 8 or 16 bit)")
    hints: str | None = Field(None, description="RGBA hint layer of the same size, base64 PNG; alpha > 0 = hint")
    references: list[str] = Field(default_factory=list, description="colour reference images, base64")
    options: dict[str, Any] = Field(default_factory=dict, description="see GET /v1/options")


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def _b64(data: str, what: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{what}: not valid base64") from None


def decode_request(body: ColorizeBody) -> ColorizeRequest:
    if len(body.references) > MAX_REFERENCES:
        raise ApiError(400, f"at most {MAX_REFERENCES} references")
    try:
        req = ColorizeRequest(
            ink=load_ink(_b64(body.ink, "ink")),
            hints=load_hints(_b64(body.hints, "hints")) if body.hints else None,
            references=[load_reference(_b64(r, f"reference {i + 1}")) for i, r in enumerate(body.references)],
            options=ColorizeOptions.from_dict(body.options),
        )
        req.validate()
    except (ImageError, RequestError, TypeError) as exc:
        raise ApiError(400, str(exc)) from None
    return req


def result_json(job: Job) -> dict[str, Any]:
    res = job.result
    assert res is not None
    h, w = res.composite.shape[:2]
    return {
        "color_layer": base64.b64encode(encode_png(res.color_layer)).decode("ascii"),
        "composite": base64.b64encode(encode_png(res.composite)).decode("ascii"),
        "width": w,
        "height": h,
        "model_version": res.model_version,
        "seconds": res.seconds,
    }


def job_json(runner: JobRunner, job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status,
        "progress": round(job.progress, 3),
        "stage": job.stage,
        "position": runner.position(job),
        "error": job.error,
    }


def options_schema() -> list[dict[str, Any]]:
    """Every option with its type, default, range and help, so clients can build controls from it."""
    import ast
    import inspect

    docs: dict[str, str] = {}
    tree = ast.parse(inspect.getsource(ColorizeOptions))
    body = tree.body[0].body  # type: ignore[attr-defined]
    for prev, node in zip(body, body[1:]):
        if isinstance(prev, ast.AnnAssign) and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            docs[prev.target.id] = " ".join(str(node.value.value).split())  # type: ignore[union-attr]
    out = []
    defaults = ColorizeOptions()
    for f in fields(ColorizeOptions):
        value = getattr(defaults, f.name)
        entry: dict[str, Any] = {"name": f.name, "default": value, "help": docs.get(f.name, "")}
        if f.name == "reference_mode":
            entry.update(type="enum", choices=["histogram", "palette"])
        elif isinstance(value, bool):
            entry.update(type="bool")
        elif isinstance(value, int):
            entry.update(type="int", min=64, max=4096)
        else:
            entry.update(type="float", min=0.0, max=1.0)
        out.append(entry)
    return out


def _host_name(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[: host_header.find("]") + 1]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def _is_loopback(addr: str | None) -> bool:
    try:
        return addr is not None and ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def create_app(
    token: str,
    runner: JobRunner | None = None,
    device_name: str = "cpu",
    model_version: str = "unknown",
    allow_remote: bool = False,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    runner = runner or JobRunner()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        yield
        runner.shutdown()  # graceful stop: cancel what runs and waits, let the worker finish

    app = FastAPI(title="MangaColor backend", version=__version__, lifespan=lifespan)
    app.state.runner = runner

    @app.middleware("http")
    async def guard(request: Request, call_next):  # type: ignore[no-untyped-def]
        # DNS rebinding: a browser page on evil.example resolving to 127.0.0.1 still sends its own Host.
        if not allow_remote:
            host = _host_name(request.headers.get("host", ""))
            if host not in LOOPBACK_NAMES:
                return JSONResponse({"error": "refused: Host must be a loopback name"}, status_code=403)
            client = request.client.host if request.client else None
            if client is not None and not _is_loopback(client):
                return JSONResponse({"error": "refused: only local clients are served"}, status_code=403)
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body_bytes):
            return JSONResponse({"error": f"request body larger than {max_body_bytes} bytes"}, status_code=413)
        if request.url.path != f"/{API_VERSION}/health":
            auth = request.headers.get("authorization", "")
            given = auth[7:] if auth.lower().startswith("bearer ") else ""
            if not secrets.compare_digest(given.encode(), token.encode()):
                return JSONResponse({"error": "missing or wrong access token"}, status_code=401)
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message, **exc.extra}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse({"error": "invalid request: " + "; ".join(parts)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.get(f"/{API_VERSION}/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "api_version": API_VERSION,
            "device": device_name,
            "model_version": model_version,
        }

    @app.get(f"/{API_VERSION}/options")
    def options() -> dict[str, Any]:
        return {"options": options_schema()}

    def submit(body: ColorizeBody) -> Job:
        req = decode_request(body)
        try:
            return runner.submit(req)
        except QueueFull as exc:
            raise ApiError(503, str(exc), position=exc.waiting + 1) from None

    @app.post(f"/{API_VERSION}/jobs", status_code=202)
    def create_job(body: ColorizeBody) -> dict[str, Any]:
        return job_json(runner, submit(body))

    def find(job_id: str) -> Job:
        job = runner.get(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id}")
        return job

    @app.get(f"/{API_VERSION}/jobs/{{job_id}}")
    def job_status(job_id: str) -> dict[str, Any]:
        return job_json(runner, find(job_id))

    @app.get(f"/{API_VERSION}/jobs/{{job_id}}/result")
    def job_result(job_id: str) -> dict[str, Any]:
        job = find(job_id)
        if job.status != "done":
            raise ApiError(409, f"job is {job.status}" + (f": {job.error}" if job.error else ""), job_status=job.status)
        return result_json(job)

    @app.delete(f"/{API_VERSION}/jobs/{{job_id}}")
    def cancel_job(job_id: str) -> dict[str, Any]:
        find(job_id)
        job = runner.cancel(job_id)
        assert job is not None
        return job_json(runner, job)

    @app.post(f"/{API_VERSION}/colorize")
    def colorize_now(body: ColorizeBody) -> dict[str, Any]:
        job = submit(body)
        job.done_event.wait()
        if job.status != "done":
            raise ApiError(500 if job.status == "failed" else 409, f"job {job.status}: {job.error or ''}".strip())
        return result_json(job)

    return app


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    device: str = "auto",
    allow_remote: bool = False,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_waiting: int = 4,
) -> None:
    import functools

    import uvicorn

    from .config import ensure_token, token_path
    from .pipeline import colorize, get_model

    model = get_model(device)  # load before listening: a healthy server can colorize
    token = ensure_token()
    runner = JobRunner(run=functools.partial(colorize, model=model), max_waiting=max_waiting)
    app = create_app(
        token, runner, device_name=str(model.device), model_version=model.version,
        allow_remote=allow_remote, max_body_bytes=max_body_bytes,
    )
    print(f"MangaColor backend {__version__} on http://{host}:{port} (device {model.device}, model {model.version})")
    print(f"access token in {token_path()}")
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
