"""Colorization as small stages over numpy/torch arrays; the CLI and the server both call `colorize`.

Stages: page structure (`structure.py`), hint spread and network inputs (`spread.py`,
`inputs.py`), the network (`run_network` here, `model.py`), the palette (`reference.py`), and
full resolution (`restore.py`, `balloons.py`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from . import page_cache
from .balloons import white_balloons
from .colour_features import ColourPlan, panel_spread_prep, run_plan, working_panel_labels
from .inputs import page_inputs
from .model import DEFAULT_WEIGHTS, ColorUNet, load_weights
from .request import ColorizeRequest, ColorizeResult, RequestError
from .restore import colour_layer
from .spread import HintSpread, clean_paper
from .structure import Checkpoint, PageStructure, resample_hints

Progress = Callable[[float, str], None]


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
            if CHANNELS_LAST:
                net = net.to(memory_format=torch.channels_last)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            version = f"{meta.get('name', 'mangacolor')}-{digest}"
            _models[key] = LoadedModel(net=net, device=dev, version=version, path=path)
        return _models[key]


# Channels-last (NHWC) convolutions: oneDNN's faster layout on CPUs, a third less network time on 2 cores.
# Its sums run in another order, so colour layers differ from NCHW's by rounding (0.018 mean dE2000 on real
# pages); the bench's dE moved by at most 0.01 (docs/BENCHMARKS.md, Speed). MANGACOLOR_CHANNELS_LAST=0: NCHW.
CHANNELS_LAST = os.environ.get("MANGACOLOR_CHANNELS_LAST", "1") == "1"


def _layout(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if CHANNELS_LAST else x


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
            x = _layout(torch.from_numpy(inputs)[None].to(model.device))
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
            y = model.net(_layout(torch.from_numpy(np.ascontiguousarray(patch))[None].to(model.device)), g)[0]
            # Feather: weight falls off toward tile edges, where the network sees less context.
            wy = np.minimum(np.arange(ph) + 1, np.arange(ph)[::-1] + 1).clip(max=TILE_OVERLAP)
            wx = np.minimum(np.arange(pw) + 1, np.arange(pw)[::-1] + 1).clip(max=TILE_OVERLAP)
            wgt = (wy[:, None] * wx[None, :]).astype(np.float32)[..., None]
            out[y0 : y0 + ph, x0 : x0 + pw] += y.permute(1, 2, 0).float().cpu().numpy() * wgt
            weight[y0 : y0 + ph, x0 : x0 + pw] += wgt
    return out / np.maximum(weight, 1e-6)


class StageClock:
    """Seconds per stage (summed when a stage comes back, as a variant loop does), the progress
    callback, and the cancel check between stages."""

    def __init__(self, progress: Progress | None, cancelled: Callable[[], bool] | None):
        self.seconds: dict[str, float] = {}
        self._progress, self._cancelled = progress, cancelled
        self._t0 = time.perf_counter()

    def __call__(self, name: str, fraction: float) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + now - self._t0, 4)
        self._t0 = now
        if self._cancelled is not None and self._cancelled():
            raise Cancelled()
        if self._progress is not None:
            self._progress(fraction, name)


@dataclass
class PreparedPage:
    """Everything before the network, shared by one colouring (`colorize`) and several (`variants.py`)."""

    analysis: page_cache.PageAnalysis
    page: PageStructure
    hint_rgb: np.ndarray
    hint_mask: np.ndarray
    plan: ColourPlan
    panel_labels: np.ndarray | None
    inputs: np.ndarray
    spread: HintSpread


def prepare_page(request: ColorizeRequest, checkpoint: Checkpoint | None) -> PreparedPage:
    opts, ink = request.options, request.ink
    # What depends only on the ink is kept by its hash: a re-run with other hints or options skips it.
    analysis = page_cache.analysis(ink)
    page, spread_prep = analysis.working(ink, opts.working_size, checkpoint)
    if request.hints is not None:
        hint_rgb, hint_mask = resample_hints(request.hints, page.shape, checkpoint)
    else:
        hint_rgb, hint_mask = np.zeros(page.shape + (3,), np.float32), np.zeros(page.shape, bool)
    # The page's colour feature and each panel's (colour_features.py): one network run per distinct one.
    plan = ColourPlan.of(request)
    panel_labels = working_panel_labels(plan.panels, ink.shape, page.shape) if plan.panels else None
    if panel_labels is not None:
        spread_prep = panel_spread_prep(page, panel_labels)  # each panel's own paper, as a picture of its own
    if checkpoint is not None:
        checkpoint()
    inputs, spread = page_inputs(page, hint_rgb, hint_mask, checkpoint=checkpoint, prep=spread_prep)
    return PreparedPage(analysis, page, hint_rgb, hint_mask, plan, panel_labels, inputs, spread)


def kept_paper(prepared: PreparedPage) -> np.ndarray:
    """Clean paper the paper seed won (margins, gutters, the background around figures, and any of it
    that a hint could only reach through a gap in an outline): it stays paper."""
    page = prepared.page
    return prepared.spread.paper & clean_paper(page.ink, page.tone, page.line)


def full_resolution_guides(
    request: ColorizeRequest, analysis: page_cache.PageAnalysis, checkpoint: Checkpoint | None
) -> tuple[np.ndarray | None, np.ndarray, object]:
    """(balloons kept white or None, the full-resolution line ink, the full-resolution regions or None)."""
    opts, ink = request.options, request.ink
    # Speech balloons stay paper white unless a hint was painted inside them: colorists leave them
    # white, and the model cannot tell a balloon from a white shirt by its outline alone.
    white = white_balloons(analysis.balloons(ink, checkpoint), request.hints, ink.shape) if opts.keep_white else None
    line_full = analysis.line_and_tone(ink, checkpoint)[0]
    regions = analysis.full_regions(ink, checkpoint) if opts.flat_regions > 0 else None
    return white, line_full, regions


def colorize(
    request: ColorizeRequest,
    model: LoadedModel | None = None,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ColorizeResult:
    opts = request.options
    model = model or get_model()
    if opts.variants > 1 or request.draft is not None:
        from .variants import colorize_variants, needs_variants

        if needs_variants(request):  # a painted draft or several colourings (issue 13, variants.py)
            return colorize_variants(request, model, progress, cancelled)
    stage = StageClock(progress, cancelled)
    checkpoint = cancel_checkpoint(cancelled)  # inside the long loops, between the stages' steps
    prepared = prepare_page(request, checkpoint)
    plan, spread = prepared.plan, prepared.spread
    stage("analyse", 0.2)
    color_work = run_plan(
        plan, lambda vec: run_network(model, prepared.inputs, vec, checkpoint=checkpoint), prepared.panel_labels, checkpoint
    )
    if opts.keep_white:
        color_work[kept_paper(prepared)] = 1.0
    color_work = plan.palette_stage(
        color_work, spread.regions, spread.mask, spread.paper, request.hints, prepared.panel_labels, request.ink.shape, checkpoint
    )
    stage("network", 0.7)
    white, line_full, regions = full_resolution_guides(request, prepared.analysis, checkpoint)
    layer = colour_layer(color_work, line_full, opts, white, checkpoint, regions)
    stage("restore", 1.0)
    return ColorizeResult(color_layer=layer, model_version=model.version, seconds=stage.seconds, ink=request.ink)
