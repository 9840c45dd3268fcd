"""HTTP API over the pipeline (FastAPI). Local-only by default, token-protected, one job at a time.

Paths are versioned under /v1; /openapi.json describes them. Images travel as base64 PNG in JSON,
which Krita's Qt networking can build without third-party packages.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import re
import secrets
import threading
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import API_VERSION, __version__
from .imageio import ImageError, check_page_size, decode_hints, decode_ink, decode_reference, open_image
from .jobs import Job, JobRunner, QueueFull, StoredResult
from .options import schema
from .palettes import Palette, PaletteError, palette_from_json, palette_from_rgba
from .panels import PanelsError, detect_panels
from .request import (
    MAX_PANELS,
    ColorizeOptions,
    ColorizeRequest,
    ColourSources,
    PanelInput,
    RequestError,
    check_panels,
    check_weights,
)
from . import transport
from .transport import FrameError, FrameImage

MAX_BODY_BYTES = 400 * 1024 * 1024  # a 6000x8500 page with hints and references, base64, fits
MAX_REFERENCES = 8  # per page, and per panel
MAX_ALL_REFERENCES = 32  # reference images of one request, its panels' included
MAX_PALETTES = 16  # per page, and per panel
# A Host header naming a loopback address, with an optional port, and nothing else
# (no userinfo, no path: `localhost:80@evil` is not localhost).
LOOPBACK_HOST = re.compile(r"(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?", re.IGNORECASE)
CANCEL_WAIT_SECONDS = 1.0  # DELETE waits this long for a running job to stop, to answer its new state
DISCONNECT_POLL_SECONDS = 0.1


class PanelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    polygon: list[list[float]] = Field(description="the panel's corners [[x, y], ...] in page pixels, at least 3")
    box: list[float] | None = Field(None, description="ignored (what POST /v1/panels answers next to the polygon)")
    inset: bool = Field(False, description="ignored (what POST /v1/panels answers)")
    references: list[str] = Field(default_factory=list, description="this panel's colour references, base64")
    reference_weights: list[float] | None = Field(None, description="one weight > 0 per reference of this panel")
    palettes: list[dict[str, Any]] = Field(default_factory=list, description="this panel's palettes (mangacolor-palette JSON)")


class ColorizeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ink: str = Field(description="the B/W page, base64 PNG/JPEG (L, LA, RGB or RGBA; 1, 8 or 16 bit)")
    hints: str | None = Field(None, description="RGBA hint layer of the same size, base64 PNG; alpha > 0 = hint")
    references: list[str] = Field(default_factory=list, description="colour reference images, base64")
    reference_weights: list[float] | None = Field(
        None, description="one weight > 0 per reference (default all 1): blended as Comicolorization blends histograms"
    )
    draft: str | None = Field(
        None, description="coloring draft, RGBA of the same size, base64 PNG; alpha > 0 = painted draft colour"
    )
    palettes: list[dict[str, Any]] = Field(
        default_factory=list, description="saved palettes (mangacolor-palette JSON, see POST /v1/palettes), blended like references"
    )
    panels: Literal["auto"] | list[PanelBody] | None = Field(
        None, description="'auto' (detected) or the page's panels, each with its own references/palettes or the page's"
    )
    options: dict[str, Any] = Field(default_factory=dict, description="see GET /v1/options")
    outputs: list[Literal["color_layer", "composite"]] = Field(
        default_factory=lambda: ["color_layer"],
        min_length=1,
        description="the images the result carries: the colour layer (what the Krita plugin uses) and, "
        "when asked for, the composite (colour multiplied by the ink)",
    )


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def _b64(data: str, what: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{what}: not valid base64") from None


def _image(value: Any, what: str) -> Any:
    """An image opened, its header checked, nothing decoded: base64 from a JSON body, or the blob
    that stands for it in a frames body (`transport.FrameImage`), taken as it is."""
    return value if isinstance(value, FrameImage) else open_image(_b64(value, what), what)


_decoding = threading.Lock()  # one request's images decoded at a time: their temporaries never add up


class PanelsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page: str = Field(description="the page, base64 image")
    order: Literal["rtl", "ltr"] = Field("rtl", description="reading order: rtl (manga) or ltr")


class PaletteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="the palette's name", min_length=1, max_length=80)
    image: str = Field(description="base64 image (RGBA: transparent pixels are not part of it)")
    source: Literal["reference", "hints", "selection"] = Field("reference", description="what the image is")


def _palettes(values: list[dict[str, Any]], where: str) -> list[Palette]:
    if len(values) > MAX_PALETTES:
        raise RequestError(f"{where}: at most {MAX_PALETTES} palettes")
    out = []
    for i, value in enumerate(values):
        try:
            out.append(palette_from_json(value))
        except PaletteError as exc:
            raise RequestError(f"{where} {i + 1}: {exc}") from None
    return out


def _weights(weights: list[float] | None, n: int, where: str) -> tuple[float, ...] | None:
    check_weights(weights, n, where)
    return tuple(weights) if weights is not None else None


def submit_request(runner: JobRunner, body: ColorizeBody, encoding: str = "png") -> Job:
    """Check everything cheap first (base64, image headers, sizes, options, polygons, palettes),
    then take a queue place, and only then decode the pixels: a busy server or a bad request costs
    no decoding."""
    if len(body.references) > MAX_REFERENCES:
        raise ApiError(400, f"at most {MAX_REFERENCES} references")
    panel_bodies = body.panels if isinstance(body.panels, list) else []
    if len(panel_bodies) > MAX_PANELS:
        raise ApiError(400, f"{len(panel_bodies)} panels: at most {MAX_PANELS}")
    for i, pb in enumerate(panel_bodies):
        if len(pb.references) > MAX_REFERENCES:
            raise ApiError(400, f"panel {i + 1}: at most {MAX_REFERENCES} references")
    if len(body.references) + sum(len(pb.references) for pb in panel_bodies) > MAX_ALL_REFERENCES:
        raise ApiError(400, f"at most {MAX_ALL_REFERENCES} reference images in one request, the panels' included")
    try:
        ink = _image(body.ink, "ink")
        check_page_size(*ink.size)
        hints = _image(body.hints, "hints") if body.hints else None
        if hints is not None and hints.size != ink.size:
            raise RequestError(
                f"hints are {hints.size[0]}x{hints.size[1]} but the ink is {ink.size[0]}x{ink.size[1]}; "
                "they must be the same size"
            )
        draft = _image(body.draft, "draft") if body.draft else None
        if draft is not None and draft.size != ink.size:
            raise RequestError(
                f"the draft is {draft.size[0]}x{draft.size[1]} but the ink is {ink.size[0]}x{ink.size[1]}; "
                "they must be the same size"
            )
        references = [_image(r, f"reference {i + 1}") for i, r in enumerate(body.references)]
        weights = _weights(body.reference_weights, len(body.references), "reference_weights")
        palettes = _palettes(body.palettes, "palette")
        panel_refs, panel_sources = [], []
        for i, pb in enumerate(panel_bodies):
            where = f"panel {i + 1}"
            panel_refs.append([_image(r, f"{where} reference {j + 1}") for j, r in enumerate(pb.references)])
            if pb.reference_weights is not None and not pb.references:
                raise RequestError(f"{where}: reference_weights without references")
            panel_sources.append((_weights(pb.reference_weights, len(pb.references), f"{where}: reference_weights"),
                                  _palettes(pb.palettes, f"{where}: palette")))
        check_panels([PanelInput([tuple(pt) for pt in pb.polygon]) for pb in panel_bodies], (ink.size[1], ink.size[0]))
        options = ColorizeOptions.from_dict(body.options)
    except (ImageError, RequestError, TypeError) as exc:
        raise ApiError(400, str(exc)) from None
    try:
        with runner.admit() as admission:
            with _decoding:
                ink_array = decode_ink(ink)
                panels = None
                if body.panels == "auto":
                    panels = _detected(ink_array, "rtl")
                elif body.panels is not None:
                    panels = []
                    for i, (pb, refs, (pw, pp)) in enumerate(zip(panel_bodies, panel_refs, panel_sources)):
                        decoded = tuple(decode_reference(r, f"panel {i + 1} reference {j + 1}") for j, r in enumerate(refs))
                        own = ColourSources(decoded, pw, tuple(pp)) if decoded or pp else None
                        panels.append(PanelInput([tuple(pt) for pt in pb.polygon], own))
                request = ColorizeRequest(
                    ink=ink_array,
                    hints=decode_hints(hints) if hints is not None else None,
                    draft=decode_hints(draft, "draft") if draft is not None else None,
                    references=[decode_reference(r, f"reference {i + 1}") for i, r in enumerate(references)],
                    reference_weights=list(weights) if weights is not None else None,
                    palettes=palettes,
                    panels=panels,
                    options=options,
                )
            del ink, hints, draft, references, panel_refs, ink_array  # the decoded arrays are all the job needs
            return admission.submit(request, outputs=tuple(dict.fromkeys(body.outputs)), encoding=encoding)
    except QueueFull as exc:
        raise ApiError(503, str(exc), position=exc.waiting + 1) from None
    except (ImageError, RequestError, TypeError) as exc:
        raise ApiError(400, str(exc)) from None
    except MemoryError:
        raise ApiError(503, "not enough memory to decode these images now; try again or send a smaller page") from None


def _detected(ink: Any, order: str) -> list[PanelInput]:
    from .colour_features import auto_panels

    try:
        return auto_panels(ink, order)
    except (PanelsError, ValueError) as exc:
        raise RequestError(f"panels: {exc}") from None


def detect_page_panels(body: PanelsBody) -> dict[str, Any]:
    """POST /v1/panels: the page's panels in reading order, polygons and boxes in page pixels."""
    try:
        img = open_image(_b64(body.page, "page"), "page")
        with _decoding:
            page = decode_ink(img, "page")
        del img
        found = detect_panels(page, order=body.order)
    except (ImageError, PanelsError, ValueError) as exc:
        raise ApiError(400, str(exc)) from None
    except MemoryError:
        raise ApiError(503, "not enough memory to decode this page now; try again") from None
    return {"panels": [p.to_json() for p in found]}


def make_palette(body: PaletteBody) -> dict[str, Any]:
    """POST /v1/palettes: the colours of a reference layer, of hints, or of a selection of a coloured
    page (transparent pixels left out) as a palette JSON object."""
    try:
        img = open_image(_b64(body.image, "image"), "image")
        check_page_size(*img.size, what="image")
        with _decoding:
            rgba = decode_hints(img, "image")
        del img
        return palette_from_rgba(rgba, body.name, body.source).to_json()
    except (ImageError, PaletteError) as exc:
        raise ApiError(400, str(exc)) from None
    except MemoryError:
        raise ApiError(503, "not enough memory to decode this image now; try again") from None


def result_json(result: StoredResult) -> dict[str, Any]:
    return {
        **{name: base64.b64encode(png).decode("ascii") for name, png in result.images.items()},
        **({"variants": [base64.b64encode(png).decode("ascii") for png in result.variants]} if result.variants else {}),
        "width": result.width,
        "height": result.height,
        "model_version": result.model_version,
        "seconds": result.seconds,
    }


def frames_body(data: bytes) -> ColorizeBody:
    """A frames body -> the ColorizeBody a JSON body would make (images: `transport.FrameImage`)."""
    try:
        return transport.body_from_frames(data, ColorizeBody)
    except FrameError as exc:
        raise ApiError(400, str(exc)) from None
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]) from None


class FramesRoute(APIRoute):
    """A route only frames bodies take (Content-Type application/x-mangacolor-frames); any other body
    goes on to the JSON route of the same path."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match != Match.NONE and not transport.is_frames(Headers(scope=scope).get("content-type")):
            return Match.NONE, {}
        return match, child


def job_json(runner: JobRunner, job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status,
        "progress": round(job.progress, 3),
        "stage": job.stage,
        "position": runner.position(job),
        "error": job.error,
    }


def is_loopback_host(host_header: str) -> bool:
    """Strict: the whole header must be a loopback name with an optional numeric port."""
    return LOOPBACK_HOST.fullmatch(host_header) is not None


def _is_loopback(addr: str | None) -> bool:
    try:
        return addr is not None and ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"request body larger than {limit} bytes")


class Guard:
    """Every request passes here first: Host and client checks, the access token, and the body
    limit, counted on the bytes actually received (a chunked upload has no Content-Length)."""

    def __init__(self, app: ASGIApp, token: str, allow_remote: bool, max_body_bytes: int):
        self.app, self.token, self.allow_remote, self.max_body_bytes = app, token, allow_remote, max_body_bytes

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        headers = Headers(scope=scope)
        # DNS rebinding: a browser page on evil.example resolving to 127.0.0.1 still sends its own Host.
        if not self.allow_remote:
            if not is_loopback_host(headers.get("host", "")):
                return 403, "refused: Host must be a loopback name"
            client = scope.get("client")
            if client and not _is_loopback(client[0]):
                return 403, "refused: only local clients are served"
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            return 413, f"request body larger than {self.max_body_bytes} bytes"
        if scope["path"] != f"/{API_VERSION}/health":
            auth = headers.get("authorization", "")
            given = auth[7:] if auth.lower().startswith("bearer ") else ""
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                return 401, "missing or wrong access token"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope)
        if refused is not None:
            await JSONResponse({"error": refused[1]}, status_code=refused[0])(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge as exc:  # raised where no exception handler turned it into an answer
            if started:
                raise
            await JSONResponse({"error": exc.detail}, status_code=413)(scope, receive, send)


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
