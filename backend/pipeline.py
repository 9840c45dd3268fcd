"""Colorization as small stages over numpy/torch arrays; the CLI and the server both call `colorize`."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
import torch

from . import color
from .reference import hint_colours, match_palette, reference_colours
from .model import DEFAULT_WEIGHTS, GLOBAL_SIZE, ColorUNet, load_weights
from .request import ColorizeOptions, ColorizeRequest, ColorizeResult, RequestError
from .structure import (
    Checkpoint,
    analyse_page,
    band_rows,
    build_inputs,
    clean_paper,
    spread_on_page,
    lettered_regions,
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


def cancel_checkpoint(cancelled: Callable[[], bool] | None) -> Checkpoint | None:
    """A callable for the long loops: raises Cancelled once `cancelled()` says so."""
    if cancelled is None:
        return None

    def checkpoint() -> None:
        if cancelled():
            raise Cancelled()

    return checkpoint


# The network's layers check for a cancel too (a whole-page forward pass takes seconds on a
# CPU): a forward pre-hook on every layer calls the checkpoint of the run on this thread.
_layer_checks = threading.local()
_hooked_nets: weakref.WeakSet[torch.nn.Module] = weakref.WeakSet()


def _check_before_layer(module: torch.nn.Module, args: object) -> None:
    checkpoint = getattr(_layer_checks, "checkpoint", None)
    if checkpoint is not None:
        checkpoint()


@contextlib.contextmanager
def _cancellable(net: torch.nn.Module, checkpoint: Checkpoint | None) -> Iterator[None]:
    if checkpoint is None:
        yield
        return
    with _models_lock:
        if net not in _hooked_nets:
            for module in net.modules():
                module.register_forward_pre_hook(_check_before_layer)
            _hooked_nets.add(net)
    previous = getattr(_layer_checks, "checkpoint", None)
    _layer_checks.checkpoint = checkpoint
    try:
        yield
    finally:
        _layer_checks.checkpoint = previous


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
def run_network(
    model: LoadedModel, inputs: np.ndarray, global_vec: np.ndarray, tile: int | None = None,
    checkpoint: Checkpoint | None = None,
) -> np.ndarray:
    """C x H x W inputs -> H x W x 3 sRGB float32 at the working resolution.

    Whole page at once; if the device runs out of memory, again in overlapping tiles
    (feathered together), and only if that fails too a clear MemoryError. `checkpoint` is
    called before every layer and every tile (it raises Cancelled to stop).
    """
    with _cancellable(model.net, checkpoint):
        return _run_network(model, inputs, global_vec, tile, checkpoint)


def _run_network(
    model: LoadedModel, inputs: np.ndarray, global_vec: np.ndarray, tile: int | None, checkpoint: Checkpoint | None
) -> np.ndarray:
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
        return _run_tiled(model, inputs, g, tile, checkpoint)
    except (RuntimeError, MemoryError) as exc:
        if not _is_out_of_memory(exc):
            raise
        raise MemoryError(
            f"out of memory on {model.device} even in {tile}-px tiles: lower working_size or colorize a selection"
        ) from None


def _run_tiled(
    model: LoadedModel, inputs: np.ndarray, g: torch.Tensor, tile: int, checkpoint: Checkpoint | None = None
) -> np.ndarray:
    _, h, w = inputs.shape
    out = np.zeros((h, w, 3), np.float32)
    weight = np.zeros((h, w, 1), np.float32)
    step = max(1, tile - TILE_OVERLAP)
    ys = list(range(0, max(h - tile, 0) + 1, step)) + ([h - tile] if h > tile and (h - tile) % step else [])
    xs = list(range(0, max(w - tile, 0) + 1, step)) + ([w - tile] if w > tile and (w - tile) % step else [])
    for y0 in ys:
        for x0 in xs:
            if checkpoint is not None:
                checkpoint()
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


def upsample_rows(color_work: np.ndarray, shape: tuple[int, int], y0: int, y1: int) -> np.ndarray:
    """Rows y0:y1 of `cv2.resize(color_work, (W, H), interpolation=cv2.INTER_LINEAR)` (float32
    H' x W' x C upsampled to `shape`), without making the other rows: OpenCV's linear resize is
    separable, so the few working rows needed are widened by OpenCV itself (a vertical factor of
    1 adds nothing) and blended vertically with OpenCV's coefficients. Equal to the whole-page
    resize to a few float32 ulps (OpenCV's vertical pass rounds slightly differently)."""
    h, w = shape
    small_h, small_w = color_work.shape[:2]
    if (small_h, small_w) == (h, w):
        return color_work[y0:y1].copy()
    if small_h > h or small_w > w:  # never in the pipeline (working size <= page); whole resize
        return cv2.resize(color_work, (w, h), interpolation=cv2.INTER_LINEAR)[y0:y1]
    scale = 1.0 / (h / small_h)  # as OpenCV: 1 / inv_scale
    fy = ((np.arange(y0, y1, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    sy = np.floor(fy).astype(np.int64)
    fy -= sy.astype(np.float32)
    row0, row1 = np.clip(sy, 0, small_h - 1), np.clip(sy + 1, 0, small_h - 1)
    lo, hi = int(row0.min()), int(row1.max()) + 1
    rows = np.ascontiguousarray(color_work[lo:hi])
    wide = cv2.resize(rows, (w, hi - lo), interpolation=cv2.INTER_LINEAR) if small_w != w else rows
    wide = wide.reshape((hi - lo, w) + color_work.shape[2:])
    b1 = fy.reshape((-1,) + (1,) * (color_work.ndim - 1))
    out = wide[row0 - lo] * (np.float32(1.0) - b1)
    out += wide[row1 - lo] * b1
    return out


def restore_bands(
    color_work: np.ndarray, line_full: np.ndarray, options: ColorizeOptions, checkpoint: Checkpoint | None = None
) -> Iterator[tuple[slice, np.ndarray]]:
    """`restore_full_resolution` band by band: yields (rows, float32 rows x W x 3). A 64-Mpx page
    never has a page-sized float copy; what stays is the int32 region labels (the regions span
    bands) and a few MB per band. `checkpoint` is called between bands."""
    h, w = line_full.shape
    step = band_rows(w)
    bands = [slice(y, min(y + step, h)) for y in range(0, h, step)]
    if options.flat_regions <= 0:
        for rows in bands:
            up = upsample_rows(color_work, (h, w), rows.start, rows.stop)
            yield rows, np.clip(up, 0.0, 1.0, out=up)
            if checkpoint is not None:
                checkpoint()
        return
    # line_regions(line_full), without its uint8 and int32 copies; the areas from OpenCV's stats
    # (np.bincount over a 64-Mpx page takes a second and a 512 MB int64 copy of the labels)
    free = np.logical_not(line_full).view(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(free, connectivity=4)
    del free
    if checkpoint is not None:
        checkpoint()
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    flat_weight = np.where(area < MAX_FLAT_REGION_SHARE * labels.size, options.flat_regions, 0.0).astype(np.float32)
    flat_weight[0] = 0.0  # the ink itself: its colour is hidden by Multiply anyway
    sums = np.zeros((n, 3), np.float64)
    for rows in bands:  # first pass: each region's mean upsampled colour
        up = upsample_rows(color_work, (h, w), rows.start, rows.stop)
        band_labels = labels[rows].ravel()
        for c in range(3):
            sums[:, c] += np.bincount(band_labels, weights=up[..., c].ravel(), minlength=n)
        if checkpoint is not None:
            checkpoint()
    means = (sums / np.maximum(area, 1.0)[:, None]).astype(np.float32)
    for rows in bands:  # second pass: flatten each region toward its mean
        up = upsample_rows(color_work, (h, w), rows.start, rows.stop)
        band_labels = labels[rows]
        flat = means[band_labels]
        flat -= up
        flat *= flat_weight[band_labels][..., None]
        up += flat
        yield rows, np.clip(up, 0.0, 1.0, out=up)
        if checkpoint is not None:
            checkpoint()


def restore_full_resolution(
    color_work: np.ndarray, line_full: np.ndarray, options: ColorizeOptions, checkpoint: Checkpoint | None = None
) -> np.ndarray:
    """Working-resolution colour -> full-size colour, guided by the ink.

    Bilinear upsampling bleeds colour across lines; flattening each line-enclosed region toward
    its mean colour puts the boundaries back exactly where the ink is (layout restoration).
    (`colorize` uses `restore_bands` and never holds this float32 page.)
    """
    h, w = line_full.shape
    out = np.empty((h, w, 3), np.float32)
    for rows, rgb in restore_bands(color_work, line_full, options, checkpoint):
        out[rows] = rgb
    return out


def balloon_white(
    ink: np.ndarray, tone: np.ndarray, hints: np.ndarray | None, checkpoint: Checkpoint | None = None
) -> np.ndarray | None:
    """bool HxW: the speech balloons and caption boxes (`structure.lettered_regions`) with no
    hint pixel inside, which stay paper white; None if there are none. Only hint pixels inside
    count, not colour propagated at the working resolution (where a thin balloon outline may leak)."""
    balloons = lettered_regions(ink, tone, checkpoint)
    if not balloons.any():
        return None
    n, labels = cv2.connectedComponents(balloons.view(np.uint8), connectivity=8)
    if checkpoint is not None:
        checkpoint()
    keep_colour = np.zeros(n, bool)
    if hints is not None:
        keep_colour[np.unique(labels[(hints[..., 3] > 0) & balloons])] = True
    keep_colour[0] = True
    return np.logical_not(keep_colour)[labels]


def white_balloons(color_full: np.ndarray, ink: np.ndarray, tone: np.ndarray, hints: np.ndarray | None) -> np.ndarray:
    """Speech balloons and caption boxes stay paper white unless a hint was painted inside them
    (`balloon_white`): colorists leave them white, and the model cannot tell a balloon from a
    white shirt by its outline alone. In place; returns `color_full`."""
    white = balloon_white(ink, tone, hints)
    if white is not None:
        color_full[white] = 1.0
    return color_full


def _near_white_lut(levels: int = 64) -> np.ndarray:
    """Near-white test for every colour of a levels^3 grid: a lookup instead of Lab per pixel."""
    grid = (np.arange(levels, dtype=np.float64) + 0.5) / levels
    rgb = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(-1, 3)
    lab = color.rgb_to_lab(rgb)
    return (lab[:, 0] > WHITE_L) & (np.hypot(lab[:, 1], lab[:, 2]) < WHITE_CHROMA)


_NEAR_WHITE = _near_white_lut()


def _snap_white_into(rgb: np.ndarray) -> None:
    """`snap_white` of a band, in place."""
    q = np.clip(rgb * 64.0, 0, 63).astype(np.int32)
    q[..., 0] <<= 12
    q[..., 1] <<= 6
    idx = q[..., 0] | q[..., 1]
    idx |= q[..., 2]
    rgb[_NEAR_WHITE[idx]] = 1.0


def snap_white(rgb: np.ndarray) -> np.ndarray:
    """Near-white, near-neutral colour becomes paper white (Comicolorization's layout restoration)."""
    out = rgb.copy()
    step = band_rows(rgb.shape[1])
    for y in range(0, out.shape[0], step):
        _snap_white_into(out[y : y + step])
    return out


def _compose_into(color_rgb: np.ndarray, ink: np.ndarray, layer: np.ndarray, composite: np.ndarray) -> None:
    """`compose` of a band into the bands `layer` (RGBA) and `composite` (RGB) of its outputs."""
    layer_rgb = color_rgb * 255.0
    layer_rgb += 0.5
    np.clip(layer_rgb, 0, 255, out=layer_rgb)
    layer[..., :3] = layer_rgb  # float -> uint8 truncates, as astype
    layer[..., 3] = 255
    mixed = layer[..., :3].astype(np.float32)
    mixed *= ink[..., None]
    mixed += 0.5
    np.clip(mixed, 0, 255, out=mixed)
    composite[...] = mixed


def compose(color_rgb: np.ndarray, ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(colour layer RGBA, composite RGB), both uint8. Multiply keeps black ink exactly black."""
    h, w = ink.shape
    layer = np.empty((h, w, 4), np.uint8)
    composite = np.empty((h, w, 3), np.uint8)
    step = band_rows(w)
    for y in range(0, h, step):
        rows = slice(y, y + step)
        _compose_into(color_rgb[rows], ink[rows], layer[rows], composite[rows])
    return layer, composite


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
    checkpoint = cancel_checkpoint(cancelled)  # inside the long loops, between the stages' steps

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
    line_full, tone_full = split_line_and_tone(ink, checkpoint)
    page = analyse_page(ink, opts.working_size, (line_full, tone_full), checkpoint)
    if request.hints is not None:
        hint_rgb, hint_mask = resample_hints(request.hints, page.shape, checkpoint)
    else:
        hint_rgb, hint_mask = np.zeros(page.shape + (3,), np.float32), np.zeros(page.shape, bool)
    global_vec = reference_vector(request.references, opts.reference_mode)
    if checkpoint is not None:
        checkpoint()
    spread = spread_on_page(page, hint_rgb, hint_mask)
    if checkpoint is not None:
        checkpoint()
    inputs = build_inputs(page, hint_rgb, hint_mask, spread=spread)
    stage("analyse", 0.2)
    color_work = run_network(model, inputs, global_vec, checkpoint=checkpoint)
    hinted = spread.mask
    if opts.keep_white:
        # Clean paper the paper seed won (margins, gutters, the background around figures, and
        # any of it that a hint could only reach through a gap in an outline) stays paper.
        color_work[spread.paper & clean_paper(page.ink, page.tone, page.line)] = 1.0
    if opts.palette_strength > 0:
        if checkpoint is not None:
            checkpoint()
        palette = np.concatenate([hint_colours(request.hints), reference_colours(request.references)])
        if checkpoint is not None:
            checkpoint()
        color_work = match_palette(
            color_work, page.line, hinted, palette, opts.palette_strength, spread.paper, (spread.regions, spread.n_regions)
        )
    stage("network", 0.7)
    # Full resolution, band by band into the two uint8 outputs: restore_full_resolution,
    # white_balloons, snap_white and compose per band, never a float32 copy of the page.
    white = balloon_white(ink, tone_full, request.hints, checkpoint) if opts.keep_white else None
    del tone_full
    layer = np.empty(ink.shape + (4,), np.uint8)
    composite = np.empty(ink.shape + (3,), np.uint8)
    for rows, rgb in restore_bands(color_work, line_full, opts, checkpoint):
        if white is not None:
            rgb[white[rows]] = 1.0
        if opts.keep_white:
            _snap_white_into(rgb)
        _compose_into(rgb, ink[rows], layer[rows], composite[rows])
    stage("restore", 1.0)
    return ColorizeResult(color_layer=layer, composite=composite, model_version=model.version, seconds=seconds)
