"""The HTTP API's bodies and what they become: the colorize body (JSON, or frames through
`transport.py`) checked and turned into a `ColorizeRequest`, the panels and palettes bodies, and the
answers' JSON. Everything cheap is checked before a pixel is decoded; a user's mistake is an
`ApiError` (4xx with the reason), never a 5xx.
"""

from __future__ import annotations

import base64
import binascii
import threading
from typing import Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .imageio import ImageError, check_page_size, decode_hints, decode_ink, decode_reference, open_image
from .jobs import Job, JobRunner, QueueFull, StoredResult
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


MAX_REFERENCES = 8  # per page, and per panel
MAX_ALL_REFERENCES = 32  # reference images of one request, its panels' included
MAX_PALETTES = 16  # per page, and per panel


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


def job_json(runner: JobRunner, job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status,
        "progress": round(job.progress, 3),
        "stage": job.stage,
        "position": runner.position(job),
        "error": job.error,
    }
