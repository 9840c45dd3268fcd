"""Drafts and variants (issue 13; Golyadkin & Makarov 2023): the colorizer follows a coloring draft.

`pipeline.colorize` hands a request here when it carries a painted draft or asks for more than one
variant; a request with neither never comes here (its output is byte for byte what it was).

- A painted draft (the colorist's Draft layer, or a variant kept as draft: RGBA, alpha > 0 = painted)
  is resampled to the working size (area average of the painted pixels), blurred there as the
  training drafts are (`DRAFT_SIGMA_SHARE` of the working long side, a normalised blur that does not
  bleed the unpainted part in) and fed as `inputs.DRAFT_RGB` / `DRAFT_MASK` (mask = painted).
- `variants` N: N drafts are sampled from the drafting model (`draft.py`, the page's coloring latent
  space) conditioned on the page and the hints (and the painted draft's colours, taken as hints
  there); variant i (1-based) uses the draft of seed `seed + i - 1` (so seed S's variant 2 is seed
  S+1's variant 1). Each draft covers the whole page (mask 1); a painted draft overrides it where
  painted. The network, the palette stage and the restoration run once per variant; the page
  analysis, the hint spread, the inputs, the balloons and the full-resolution guides are computed
  once (and the per-ink ones are kept by `page_cache`).
- A reference acts through the draft too (option `reference_draft`, on by default) when there are
  variants: the references' inverted coarse latents (`draft.invert`, the weighted mean of their
  codes) replace each variant's coarse (palette) level (`draft.mix`); the fine level (where each
  colour goes) is still sampled, so the variants keep differing in layout. With one colouring and no
  painted draft nothing of this runs.
- The draft stage (`draft_stage`, option `draft_strength`): after the network, each line-enclosed
  working region that no hint reached and that is not paper takes the draft's hue and saturation
  (its mean there) by `draft_strength`, the network's lightness and shading kept (a sampled draft
  gives its hue only, at the stronger of the two saturations: its colourings are blurred and pale;
  where it is nearly gray the network's colour stays); the shipped colorizer was trained with a draft only 12 % of the time and follows it loosely, so this stage is
  what makes a painted colour show and the variants differ (0 = the network's reading alone).

Variant 1 is the result's colour layer, variants 2..N are `ColorizeResult.variants`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import cv2
import numpy as np

from .inputs import DRAFT_MASK, DRAFT_RGB
from .request import ColorizeRequest, ColorizeResult, RequestError
from .structure import Checkpoint

if TYPE_CHECKING:
    from .draft import DraftModel, Latent
    from .structure import Regions
    from .pipeline import LoadedModel

DRAFT_SIGMA_SHARE = 8.0 / 768.0  # blur of a painted draft, share of the working long side (training: 6..20 px at 768)
# How variants are drawn (`draft.sample_latents`): the coarse (palette) level from the drafting weights'
# bank of training palettes when they have one ("auto") or from the page prior ("prior"); temperature of
# the prior samples.
DRAFT_COARSE = "auto"
DRAFT_TEMPERATURE = 1.5  # 1.0: best of 4 -4.9 %, pairwise 3.96 / 7.30; 1.5: -4.2 %, 4.31 / 8.49; 2.0: -3.0 %, 4.79 / 10.59 (bench --variants, 12 cases)
PAINTED_SHARE = 0.5  # a working pixel is painted when at least this share of its page pixels is
GRAY_DRAFT_CHROMA = 4.0  # a sampled draft this gray (C*) in a region says nothing about its hue

_draft_models: dict[str, "DraftModel"] = {}
_draft_lock = threading.Lock()


def draft_weights_path() -> Path:
    """The drafting model's weights: $MANGACOLOR_DRAFT_WEIGHTS, else the shipped backend/weights/draft.safetensors."""
    from .draft import DEFAULT_WEIGHTS

    env = os.environ.get("MANGACOLOR_DRAFT_WEIGHTS")
    return Path(env) if env else DEFAULT_WEIGHTS


def get_draft_model(path: Path | None = None) -> "DraftModel":
    """The drafting model, loaded once per process (CPU: it runs at 64x64)."""
    from .draft import load_draft_model

    path = Path(path or draft_weights_path())
    with _draft_lock:
        key = str(path)
        if key not in _draft_models:
            if not path.exists():
                raise RequestError(
                    f"variants need the drafting model, and its weights are not at {path} "
                    "(train them with `python -m backend.train_draft`)"
                )
            _draft_models[key] = load_draft_model(path)
        return _draft_models[key]


def needs_variants(request: ColorizeRequest) -> bool:
    """True when the request carries a painted draft or asks for more than one colouring."""
    return request.options.variants > 1 or painted(request.draft)


def painted(draft: np.ndarray | None) -> bool:
    return draft is not None and bool(draft[..., 3].any())


def working_draft(draft: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A page-size RGBA draft -> (RGB float32 HxWx3, painted bool HxW) at the working `shape`:
    painted colours area-averaged, then blurred by a normalised Gaussian inside the painted part."""
    h, w = shape
    alpha = (draft[..., 3] > 0).astype(np.float32)
    rgb = draft[..., :3].astype(np.float32) * (alpha[..., None] / 255.0)
    cover = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA)
    summed = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    mask = cover >= PAINTED_SHARE
    m = mask.astype(np.float32)
    colour = summed / np.maximum(cover, 1e-6)[..., None] * m[..., None]
    sigma = max(1.0, DRAFT_SIGMA_SHARE * max(h, w))
    blur_c = cv2.GaussianBlur(colour, (0, 0), sigma)
    blur_m = cv2.GaussianBlur(m, (0, 0), sigma)
    out = np.where(mask[..., None], blur_c / np.maximum(blur_m, 1e-6)[..., None], 0.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32), mask


def reference_latent(model: "DraftModel", request: ColorizeRequest) -> "Latent | None":
    """The page references' point in the colouring space: the weighted mean of their inverted latents."""
    from .draft import Latent, invert

    refs = list(request.references)
    if not refs:
        return None
    weights = list(request.reference_weights or [1.0] * len(refs))
    lats = [invert(model, r.astype(np.float32) / 255.0) for r in refs]
    total = float(sum(weights))
    coarse = sum(wt * z.coarse for wt, z in zip(weights, lats)) / total
    fine = sum(wt * z.fine for wt, z in zip(weights, lats)) / total
    return Latent(coarse, fine)


def model_drafts(
    model: "DraftModel",
    ink_work: np.ndarray,
    hint_rgb: np.ndarray,
    hint_mask: np.ndarray,
    n: int,
    seed: int,
    reference: "Latent | None" = None,
) -> list[np.ndarray]:
    """n drafts (HxWx3 float32 at the working size) of seeds seed, seed + 1, ...; with a reference,
    its coarse level replaces each sampled one."""
    from .draft import decode, mix, sample_latents

    mask = hint_mask if hint_mask.any() else None
    rgb = hint_rgb if mask is not None else None
    zs = [sample_latents(model, ink_work, rgb, mask, n=1, seed=seed + i, temperature=DRAFT_TEMPERATURE, coarse=DRAFT_COARSE)[0]
          for i in range(n)]
    if reference is not None:
        zs = [mix(z, reference, "coarse") for z in zs]
    return decode(model, ink_work, zs, rgb, mask, shape=ink_work.shape)


def drafts_for(
    request: ColorizeRequest, ink_work: np.ndarray, hint_rgb: np.ndarray, hint_mask: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (draft RGB, draft mask) of each variant at the working size."""
    opts = request.options
    shape = ink_work.shape
    paint = working_draft(request.draft, shape) if painted(request.draft) else None
    if opts.variants == 1:
        assert paint is not None
        return [paint]
    model = get_draft_model()
    # The painted draft's colours join the hints for the drafting model (hints win where both are).
    cond_rgb, cond_mask = hint_rgb, hint_mask
    if paint is not None:
        extra = paint[1] & ~hint_mask
        cond_rgb = np.where(extra[..., None], paint[0], hint_rgb).astype(np.float32)
        cond_mask = hint_mask | extra
    ref = reference_latent(model, request) if opts.reference_draft else None
    drafts = model_drafts(model, ink_work, cond_rgb, cond_mask, opts.variants, opts.seed, ref)
    ones = np.ones(shape, bool)
    out = []
    for d in drafts:
        if paint is not None:
            d = np.where(paint[1][..., None], paint[0], d).astype(np.float32)
        out.append((d, ones))
    return out


def draft_stage(
    color_work: np.ndarray,
    regions: "Regions",
    hinted: np.ndarray,
    paper: np.ndarray,
    draft_rgb: np.ndarray,
    draft_mask: np.ndarray,
    strength: float,
    painted: np.ndarray | None = None,
) -> np.ndarray:
    """Move the chroma (Lab a, b) of every line-enclosed working region that no hint reached, that is
    not paper and that the draft covers (at least half of it) toward the draft's mean there, by
    `strength`; the lightness and the shading inside the region stay the network's (as the palette
    stage, `reference.match_palette`, keeps them). Working resolution, sRGB float HxWx3.

    A region mostly `painted` (the user's draft) takes the painted hue and saturation. Elsewhere (a
    sampled draft: a blurred, low-chroma colouring) it takes the draft's hue at the stronger of the two
    saturations, and a region where the draft is nearly gray keeps the network's colour."""
    if strength <= 0:
        return color_work
    from . import color

    labels, n = regions.labels, regions.n
    h, w = labels.shape
    flat = labels.ravel()
    lab = color.rgb_to_lab(color_work.reshape(-1, 3).astype(np.float64))
    m = draft_mask.ravel().astype(np.float64)
    dlab = color.rgb_to_lab(draft_rgb.reshape(-1, 3).astype(np.float64))
    area = np.maximum(np.bincount(flat, minlength=n), 1).astype(np.float64)
    cover = np.bincount(flat, weights=m, minlength=n)
    net_ab = np.stack([np.bincount(flat, weights=lab[:, c], minlength=n) for c in (1, 2)], -1) / area[:, None]
    draft_ab = np.stack([np.bincount(flat, weights=dlab[:, c] * m, minlength=n) for c in (1, 2)], -1) / np.maximum(cover, 1e-9)[:, None]
    keep = cover < 0.5 * area
    keep[0] = True  # the walls: hidden under the ink
    keep |= np.bincount(flat, weights=hinted.ravel().astype(np.float64), minlength=n) > 0
    keep |= np.bincount(flat, weights=paper.ravel().astype(np.float64), minlength=n) > 0.5 * area
    target = draft_ab.copy()
    exact = np.zeros(n, bool) if painted is None else np.bincount(flat, weights=painted.ravel().astype(np.float64), minlength=n) > 0.5 * area
    c_draft, c_net = np.hypot(*draft_ab.T), np.hypot(*net_ab.T)
    hue_only = ~exact
    target[hue_only] *= (np.maximum(c_draft, c_net) / np.maximum(c_draft, 1e-9))[hue_only, None]
    keep |= hue_only & (c_draft < GRAY_DRAFT_CHROMA)
    shift = target - net_ab
    shift[keep] = 0.0
    lab[:, 1:] += strength * shift[flat]
    return np.clip(color.lab_to_rgb(lab), 0.0, 1.0).reshape(h, w, 3).astype(np.float32)


def colorize_variants(
    request: ColorizeRequest,
    model: "LoadedModel",
    progress: Callable[[float, str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ColorizeResult:
    """`pipeline.colorize` for a request with a draft or variants (see the module's doc)."""
    from .colour_features import run_plan
    from .pipeline import StageClock, cancel_checkpoint, full_resolution_guides, kept_paper, prepare_page, run_network
    from .restore import colour_layer

    opts, ink = request.options, request.ink
    stage = StageClock(progress, cancelled)
    checkpoint: Checkpoint | None = cancel_checkpoint(cancelled)
    prepared = prepare_page(request, checkpoint)
    page, plan, spread, inputs, panel_labels = prepared.page, prepared.plan, prepared.spread, prepared.inputs, prepared.panel_labels
    hint_rgb, hint_mask = prepared.hint_rgb, prepared.hint_mask
    stage("analyse", 0.15)
    drafts = drafts_for(request, page.ink, hint_rgb, hint_mask)
    painted_mask = working_draft(request.draft, page.shape)[1] if painted(request.draft) else None
    stage("drafts", 0.2)
    white, line_full, regions = full_resolution_guides(request, prepared.analysis, checkpoint)
    keep_paper = kept_paper(prepared) if opts.keep_white else None
    stage("analyse", 0.25)
    layers = []
    n = len(drafts)
    for i, (d_rgb, d_mask) in enumerate(drafts):
        x = inputs.copy()
        x[DRAFT_RGB] = np.moveaxis(d_rgb * d_mask[..., None], -1, 0)
        x[DRAFT_MASK] = d_mask
        color_work = run_plan(plan, lambda vec, x=x: run_network(model, x, vec, checkpoint=checkpoint), panel_labels, checkpoint)
        del x
        if keep_paper is not None:
            color_work[keep_paper] = 1.0
        color_work = draft_stage(color_work, spread.regions, spread.mask, spread.paper, d_rgb, d_mask, opts.draft_strength, painted_mask)
        color_work = plan.palette_stage(
            color_work, spread.regions, spread.mask, spread.paper, request.hints, panel_labels, ink.shape, checkpoint
        )
        stage("network", 0.25 + 0.75 * (i + 0.6) / n)
        layers.append(colour_layer(color_work, line_full, opts, white, checkpoint, regions))
        stage("restore", 0.25 + 0.75 * (i + 1) / n)
    return ColorizeResult(color_layer=layers[0], model_version=model.version, seconds=stage.seconds, ink=ink, variants=layers[1:])
