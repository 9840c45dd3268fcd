"""HTTP API over the pipeline (FastAPI). Local-only by default, token-protected, one job at a time.

Paths are versioned under /v1; /openapi.json describes them. Images travel as base64 PNG in JSON,
which Krita's Qt networking can build without third-party packages, or as frames (`transport.py`)
between the plugin and its own backend. This module only routes: the bodies and what they become
are `api_bodies.py`, the door every request passes first (Host, token, body size) is `guard.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from . import API_VERSION, __version__
from .api_bodies import (
    ApiError,
    ColorizeBody,
    PaletteBody,
    PanelsBody,
    detect_page_panels,
    frames_body,
    job_json,
    make_palette,
    result_json,
    submit_request,
)
from .guard import Guard
from .jobs import Job, JobRunner, StoredResult
from .options import schema
from .request import ColorizeOptions
from . import transport

MAX_BODY_BYTES = 400 * 1024 * 1024  # a 6000x8500 page with hints and references, base64, fits
CANCEL_WAIT_SECONDS = 1.0  # DELETE waits this long for a running job to stop, to answer its new state
DISCONNECT_POLL_SECONDS = 0.1


class FramesRoute(APIRoute):
    """A route only frames bodies take (Content-Type application/x-mangacolor-frames); any other body
    goes on to the JSON route of the same path."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match != Match.NONE and not transport.is_frames(Headers(scope=scope).get("content-type")):
            return Match.NONE, {}
        return match, child


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
    app.add_middleware(Guard, token=token, allow_remote=allow_remote, max_body_bytes=max_body_bytes)

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
            "frames": True,  # speaks application/x-mangacolor-frames (transport.py)
        }

    @app.get(f"/{API_VERSION}/options")
    def options() -> dict[str, Any]:
        return {"options": schema(ColorizeOptions)}

    async def create_job_frames(request: Request) -> dict[str, Any]:
        body = await run_in_threadpool(frames_body, await request.body())
        return job_json(runner, await run_in_threadpool(submit_request, runner, body, "frames"))

    async def colorize_frames(request: Request) -> Any:
        body = await run_in_threadpool(frames_body, await request.body())
        return await colorize_sync(body, request, "frames")

    # Frames first: these routes take only frames bodies, JSON goes on to the routes below.
    for path, endpoint, code in ((f"/{API_VERSION}/jobs", create_job_frames, 202), (f"/{API_VERSION}/colorize", colorize_frames, 200)):
        app.router.add_api_route(
            path, endpoint, methods=["POST"], status_code=code, include_in_schema=False, route_class_override=FramesRoute
        )

    @app.post(f"/{API_VERSION}/panels")
    def panels(body: PanelsBody) -> dict[str, Any]:
        return detect_page_panels(body)

    @app.post(f"/{API_VERSION}/palettes")
    def palettes(body: PaletteBody) -> dict[str, Any]:
        return make_palette(body)

    @app.post(f"/{API_VERSION}/jobs", status_code=202)
    def create_job(body: ColorizeBody) -> dict[str, Any]:
        return job_json(runner, submit_request(runner, body))

    def find(job_id: str) -> Job:
        job = runner.get(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id}")
        return job

    @app.get(f"/{API_VERSION}/jobs/{{job_id}}")
    def job_status(job_id: str) -> dict[str, Any]:
        return job_json(runner, find(job_id))

    def answer(result: StoredResult, accept: str | None) -> Any:
        """A frames job's result, or any result asked for with Accept: frames, answers frames."""
        if result.encoding == "frames" or transport.wants_frames(accept):
            return Response(transport.result_frames(result), media_type=transport.CONTENT_TYPE)
        return result_json(result)

    @app.get(f"/{API_VERSION}/jobs/{{job_id}}/result")
    def job_result(job_id: str, request: Request) -> Any:
        job = find(job_id)
        if job.status != "done":
            raise ApiError(409, f"job is {job.status}" + (f": {job.error}" if job.error else ""), job_status=job.status)
        result = runner.take_result(job_id)
        if result is None:
            raise ApiError(410, f"no result for job {job_id}: {job.result_gone or 'it was dropped'}", job_status=job.status)
        return answer(result, request.headers.get("accept"))

    @app.delete(f"/{API_VERSION}/jobs/{{job_id}}")
    def cancel_job(job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job, or delete a finished one with its result."""
        job = runner.cancel(job_id, wait=CANCEL_WAIT_SECONDS)
        if job is None:
            raise ApiError(404, f"no job {job_id}")
        return job_json(runner, job)

    @app.post(f"/{API_VERSION}/colorize")
    async def colorize_now(body: ColorizeBody, request: Request) -> Any:
        return await colorize_sync(body, request)

    async def colorize_sync(body: ColorizeBody, request: Request, encoding: str = "png") -> Any:
        job = await run_in_threadpool(submit_request, runner, body, encoding)
        loop = asyncio.get_running_loop()
        finished = asyncio.Event()
        job.when_done(lambda: loop.call_soon_threadsafe(finished.set))
        try:
            while not finished.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(finished.wait(), DISCONNECT_POLL_SECONDS)
                if not finished.is_set() and await request.is_disconnected():
                    # Nobody will read this answer: free the device for the others.
                    runner.cancel(job.id)
                    return JSONResponse({"error": "the client went away; its job was cancelled"}, status_code=499)
            if job.status == "failed" and job.error and job.error.startswith("out of memory"):
                raise ApiError(503, job.error)
            if job.status != "done":
                raise ApiError(500 if job.status == "failed" else 409, f"job {job.status}: {job.error or ''}".strip())
            result = runner.take_result(job.id)
            if result is None:
                raise ApiError(409, f"job done but {job.result_gone or 'its result was dropped'}")
            return await run_in_threadpool(answer, result, request.headers.get("accept"))
        finally:
            runner.cancel(job.id)  # a synchronous job is nobody's to fetch later: forget it

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

    token = ensure_token()  # first: a token problem is reported before the model's long load
    model = get_model(device)  # load before listening: a healthy server can colorize
    runner = JobRunner(run=functools.partial(colorize, model=model), max_waiting=max_waiting)
    app = create_app(
        token, runner, device_name=str(model.device), model_version=model.version,
        allow_remote=allow_remote, max_body_bytes=max_body_bytes,
    )
    print(f"MangaColor backend {__version__} on http://{host}:{port} (device {model.device}, model {model.version})")
    print(f"access token in {token_path()}")
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
