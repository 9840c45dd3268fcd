"""Colorization as small stages over numpy/torch arrays; the CLI and the server both call `colorize`."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from . import color
from .reference import hint_colours, match_palette, reference_colours
from .model import DEFAULT_WEIGHTS, GLOBAL_SIZE, ColorUNet, load_weights
from .request import ColorizeOptions, ColorizeRequest, ColorizeResult, RequestError
from .structure import (
    PageStructure,
    analyse_page,
    build_inputs,
    clean_paper,
    paper_seed,
    spread_hints,
    lettered_regions,
    line_regions,
    resample_hints,
    split_line_and_tone,
)

Progress = Callable[[float, str], None]

# A region larger than this share of the page is usually open paper or a leaky outline: never flattened.
MAX_FLAT_REGION_SHARE = 0.03
WHITE_L = 93.0  # Lab lightness above which, with little chroma, colour snaps to paper white
WHITE_CHROMA = 7.0


class Cancelled(Exception):
    pass


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RequestError("device 'cuda' was asked for but no CUDA GPU is available")
    if name not in ("cpu", "cuda"):
        raise RequestError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


@dataclass
class LoadedModel:
    net: ColorUNet
    device: torch.device
    version: str
    path: Path


_models: dict[tuple[str, str], LoadedModel] = {}
_models_lock = threading.Lock()


def get_model(device: str = "auto", path: Path = DEFAULT_WEIGHTS) -> LoadedModel:
    """Load (once per process) the shipped weights on the asked device."""
    dev = resolve_device(device)
    key = (str(dev), str(path))
    with _models_lock:
        if key not in _models:
            if not path.exists():
                raise FileNotFoundError(f"model weights not found at {path}; train them with `python -m backend train`")
            net, meta = load_weights(path, dev)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            version = f"{meta.get('name', 'mangacolor')}-{digest}"
            _models[key] = LoadedModel(net=net, device=dev, version=version, path=path)
        return _models[key]


def reference_vector(references: list[np.ndarray], mode: str) -> np.ndarray:
    """Comicolorization's global colour feature: blended 216-bin histogram (or palette) + flags."""
    vec = np.zeros(GLOBAL_SIZE, np.float32)
    if not references:
        return vec
    hist = color.blend_histograms([color.histogram216(r) for r in references])
    if mode == "palette":
        pal = color.palette216(hist)
        vec[: color.HIST_SIZE] = pal / max(pal.sum(), 1.0)
    else:
        vec[: color.HIST_SIZE] = hist
    vec[color.HIST_SIZE] = 1.0
    vec[color.HIST_SIZE + 1] = 1.0 if mode == "palette" else 0.0
    return vec


TILE = 512  # working-resolution tile side when a page does not fit in device memory at once
TILE_OVERLAP = 64


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in str(exc).lower()


@torch.inference_mode()
def run_network(model: LoadedModel, inputs: np.ndarray, global_vec: np.ndarray, tile: int | None = None) -> np.ndarray:
    """C x H x W inputs -> H x W x 3 sRGB float32 at the working resolution.

    Whole page at once; if the device runs out of memory, again in overlapping tiles
    (feathered together), and only if that fails too a clear MemoryError.
    """
    g = torch.from_numpy(global_vec)[None].to(model.device)
    if tile is None:
        try:
            x = torch.from_numpy(inputs)[None].to(model.device)
            return model.net(x, g)[0].permute(1, 2, 0).float().cpu().numpy()
        except (RuntimeError, MemoryError) as exc:
            if not _is_out_of_memory(exc):
                raise
            if model.device.type == "cuda":
                torch.cuda.empty_cache()
            tile = TILE
    try:
        return _run_tiled(model, inputs, g, tile)
    except (RuntimeError, MemoryError) as exc:
        if not _is_out_of_memory(exc):
            raise
        raise MemoryError(
            f"out of memory on {model.device} even in {tile}-px tiles: lower working_size or colorize a selection"
        ) from None


def _run_tiled(model: LoadedModel, inputs: np.ndarray, g: torch.Tensor, tile: int) -> np.ndarray:
    _, h, w = inputs.shape
    out = np.zeros((h, w, 3), np.float32)
    weight = np.zeros((h, w, 1), np.float32)
    step = max(1, tile - TILE_OVERLAP)
    ys = list(range(0, max(h - tile, 0) + 1, step)) + ([h - tile] if h > tile and (h - tile) % step else [])
    xs = list(range(0, max(w - tile, 0) + 1, step)) + ([w - tile] if w > tile and (w - tile) % step else [])
    for y0 in ys:
        for x0 in xs:
            patch = inputs[:, y0 : y0 + tile, x0 : x0 + tile]
            ph, pw = patch.shape[1:]
            y = model.net(torch.from_numpy(np.ascontiguousarray(patch))[None].to(model.device), g)[0]
            # Feather: weight falls off toward tile edges, where the network sees less context.
            wy = np.minimum(np.arange(ph) + 1, np.arange(ph)[::-1] + 1).clip(max=TILE_OVERLAP)
            wx = np.minimum(np.arange(pw) + 1, np.arange(pw)[::-1] + 1).clip(max=TILE_OVERLAP)
            wgt = (wy[:, None] * wx[None, :]).astype(np.float32)[..., None]
            out[y0 : y0 + ph, x0 : x0 + pw] += y.permute(1, 2, 0).float().cpu().numpy() * wgt
            weight[y0 : y0 + ph, x0 : x0 + pw] += wgt
    return out / np.maximum(weight, 1e-6)


def restore_full_resolution(
    color_work: np.ndarray, line_full: np.ndarray, options: ColorizeOptions
) -> np.ndarray:
    """Working-resolution colour -> full-size colour, guided by the ink.

    Bilinear upsampling bleeds colour across lines; flattening each line-enclosed region toward
    its mean colour puts the boundaries back exactly where the ink is (layout restoration).
    """
    h, w = line_full.shape
    up = cv2.resize(color_work, (w, h), interpolation=cv2.INTER_LINEAR)
    if options.flat_regions > 0:
        labels, n = line_regions(line_full)
        area = np.bincount(labels.ravel(), minlength=n).astype(np.float64)
        flat_weight = np.where(area < MAX_FLAT_REGION_SHARE * labels.size, options.flat_regions, 0.0).astype(np.float32)
        flat_weight[0] = 0.0  # the ink itself: its colour is hidden by Multiply anyway
        means = np.stack(
            [np.bincount(labels.ravel(), weights=up[..., c].ravel(), minlength=n) for c in range(3)], -1
        ) / np.maximum(area, 1.0)[:, None]
        # In place: full pages reach 50 Mpx, where every temporary costs 600 MB.
        flat = means.astype(np.float32)[labels]
        flat -= up
        flat *= flat_weight[labels][..., None]
        up += flat
    return np.clip(up, 0.0, 1.0, out=up)


def white_balloons(color_full: np.ndarray, ink: np.ndarray, tone: np.ndarray, hints: np.ndarray | None) -> np.ndarray:
    """Speech balloons and caption boxes (`structure.lettered_regions`) stay paper white unless a
    hint was painted inside them: colorists leave them white, and the model cannot tell a
    balloon from a white shirt by its outline alone. Only hint pixels inside count, not colour
    propagated at the working resolution (where a thin balloon outline may leak).
    In place; returns `color_full`."""
    balloons = lettered_regions(ink, tone)
    if not balloons.any():
        return color_full
    n, labels = cv2.connectedComponents(balloons.astype(np.uint8), connectivity=8)
    keep_colour = np.zeros(n, bool)
    if hints is not None:
        keep_colour[np.unique(labels[(hints[..., 3] > 0) & balloons])] = True
    keep_colour[0] = True
    color_full[~keep_colour[labels]] = 1.0
    return color_full


def _near_white_lut(levels: int = 64) -> np.ndarray:
    """Near-white test for every colour of a levels^3 grid: a lookup instead of Lab per pixel."""
    grid = (np.arange(levels, dtype=np.float64) + 0.5) / levels
    rgb = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(-1, 3)
    lab = color.rgb_to_lab(rgb)
    return (lab[:, 0] > WHITE_L) & (np.hypot(lab[:, 1], lab[:, 2]) < WHITE_CHROMA)


_NEAR_WHITE = _near_white_lut()


def snap_white(rgb: np.ndarray) -> np.ndarray:
    """Near-white, near-neutral colour becomes paper white (Comicolorization's layout restoration)."""
    q = np.clip(rgb * 64.0, 0, 63).astype(np.int32)
    idx = (q[..., 0] << 12) | (q[..., 1] << 6) | q[..., 2]
    out = rgb.copy()
    out[_NEAR_WHITE[idx]] = 1.0
    return out


def compose(color_rgb: np.ndarray, ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(colour layer RGBA, composite RGB), both uint8. Multiply keeps black ink exactly black."""
    layer_rgb = np.clip(color_rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    alpha = np.full(ink.shape + (1,), 255, np.uint8)
    composite = layer_rgb.astype(np.float32)
    composite *= ink[..., None]
    composite += 0.5
    composite = np.clip(composite, 0, 255, out=composite).astype(np.uint8)
    return np.concatenate([layer_rgb, alpha], -1), composite


def colorize(
    request: ColorizeRequest,
    model: LoadedModel | None = None,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ColorizeResult:
    request.validate()
    opts = request.options
    model = model or get_model()
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()

    def stage(name: str, fraction: float) -> None:
        nonlocal t0
        now = time.perf_counter()
        seconds[name] = round(now - t0, 4)
        t0 = now
        if cancelled is not None and cancelled():
            raise Cancelled()
        if progress is not None:
            progress(fraction, name)

    ink = request.ink
    line_full, tone_full = split_line_and_tone(ink)
    page = analyse_page(ink, opts.working_size, (line_full, tone_full))
    if request.hints is not None:
        hint_rgb, hint_mask = resample_hints(request.hints, page.shape)
    else:
        hint_rgb, hint_mask = np.zeros(page.shape + (3,), np.float32), np.zeros(page.shape, bool)
    global_vec = reference_vector(request.references, opts.reference_mode)
    paper = clean_paper(page.ink, page.tone, page.line)
    spread = spread_hints(page.line, hint_rgb, hint_mask, paper_seed(paper))
    inputs = build_inputs(page, hint_rgb, hint_mask, spread=spread)
    stage("analyse", 0.2)
    color_work = run_network(model, inputs, global_vec)
    hinted = spread.mask
    if opts.keep_white:
        # Clean paper the paper seed won (margins, gutters, the background around figures, and
        # any of it that a hint could only reach through a gap in an outline) stays paper.
        color_work[spread.paper & paper] = 1.0
    if opts.palette_strength > 0:
        palette = np.concatenate([hint_colours(request.hints), reference_colours(request.references)])
        color_work = match_palette(color_work, page.line, hinted, palette, opts.palette_strength, spread.paper)
    stage("network", 0.7)
    color_full = restore_full_resolution(color_work, line_full, opts)
    if opts.keep_white:
        color_full = white_balloons(color_full, ink, tone_full, request.hints)
        color_full = snap_white(color_full)
    layer, composite = compose(color_full, ink)
    stage("restore", 1.0)
    return ColorizeResult(color_layer=layer, composite=composite, model_version=model.version, seconds=seconds)
