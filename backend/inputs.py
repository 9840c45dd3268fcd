"""The network's inputs: what each channel holds, and the one code that builds them.

Serving (`pipeline.colorize`, through `page_inputs`) and training (`sampler.example_inputs`)
both build the per-pixel planes with `build_inputs` and the global colour vector with
`global_vector`, so a model is trained on exactly what it is served, and the model (`model.py`)
reads its propagated hints by the same names. Per-pixel planes are C x H x W float32 at the
working resolution; values are in [0, 1].
"""

from __future__ import annotations

import numpy as np

from . import color
from .spread import HintSpread, SpreadPrep, spread_on_page
from .structure import Checkpoint, PageStructure, region_maps

INK = 0  # area-averaged ink (1 = paper)
LINE = 1  # line walls between regions
TONE = 2  # local density of tone ink (screentone, hatching specks)
REGION_AREA = 3  # log-area share of the pixel's gap-closed region (`spread.page_regions`)
REGION_BORDER = 4  # the pixel's region touches the page border
HINT_RGB = slice(5, 8)  # the user's hint colour, where there is a hint
HINT_MASK = 8
PROPAGATED_RGB = slice(9, 12)  # the colour of the hint that spread there (`spread.spread_hints`)
PROPAGATED_MASK = 12
DRAFT_RGB = slice(13, 16)  # a coloring draft, where there is one
DRAFT_MASK = 16
N_INPUT_CHANNELS = 17

# The global vector: a reference's 216-bin histogram or binary palette, then two flags.
HAS_REFERENCE = color.HIST_SIZE
IS_PALETTE = color.HIST_SIZE + 1
GLOBAL_SIZE = color.HIST_SIZE + 2


def build_inputs(
    page: PageStructure,
    region_area: np.ndarray,
    region_border: np.ndarray,
    hint_rgb: np.ndarray,
    hint_mask: np.ndarray,
    propagated_rgb: np.ndarray,
    propagated_mask: np.ndarray,
    draft_rgb: np.ndarray | None = None,
    draft_mask: np.ndarray | None = None,
) -> np.ndarray:
    """The per-pixel input planes (the channels above), all HxW (HxWx3 for colours) and of the
    same size. Colours count only under their masks; no draft means an empty draft."""
    x = np.zeros((N_INPUT_CHANNELS,) + page.shape, np.float32)
    x[INK] = page.ink
    x[LINE] = page.line
    x[TONE] = page.tone
    x[REGION_AREA] = region_area
    x[REGION_BORDER] = region_border
    x[HINT_RGB] = np.moveaxis(hint_rgb * hint_mask[..., None], -1, 0)
    x[HINT_MASK] = hint_mask
    x[PROPAGATED_RGB] = np.moveaxis(propagated_rgb * propagated_mask[..., None], -1, 0)
    x[PROPAGATED_MASK] = propagated_mask
    if draft_rgb is not None and draft_mask is not None:
        x[DRAFT_RGB] = np.moveaxis(draft_rgb * draft_mask[..., None], -1, 0)
        x[DRAFT_MASK] = draft_mask
    return x


def page_inputs(
    page: PageStructure,
    hint_rgb: np.ndarray,
    hint_mask: np.ndarray,
    draft_rgb: np.ndarray | None = None,
    draft_mask: np.ndarray | None = None,
    checkpoint: Checkpoint | None = None,
    prep: SpreadPrep | None = None,
) -> tuple[np.ndarray, HintSpread]:
    """The inputs of a whole page (what the pipeline serves) and the hint spread they hold (the
    pipeline keeps its paper white and its regions for the palette stage). The region maps are
    those of the spread's gap-closed regions, as the training cache stores them. `prep`: the page's
    `spread.prepare_page_spread(page)` when the caller keeps it (the pipeline's page cache)."""
    spread = spread_on_page(page, hint_rgb, hint_mask, prep=prep)
    if checkpoint is not None:
        checkpoint()
    area, border = prep.region_maps if prep is not None else region_maps(spread.regions)
    x = build_inputs(page, area, border, hint_rgb, hint_mask, spread.rgb, spread.mask, draft_rgb, draft_mask)
    return x, spread


def global_vector(histogram: np.ndarray | None, palette: bool = False) -> np.ndarray:
    """Comicolorization's global colour feature: a 216-bin histogram, or with `palette` the
    binary palette of its bins (normalised), then has-reference and is-palette flags. None (no
    reference): all zero."""
    vec = np.zeros(GLOBAL_SIZE, np.float32)
    if histogram is None:
        return vec
    if palette:
        pal = color.palette216(histogram)
        vec[: color.HIST_SIZE] = pal / max(pal.sum(), 1.0)
    else:
        vec[: color.HIST_SIZE] = histogram
    vec[HAS_REFERENCE] = 1.0
    vec[IS_PALETTE] = 1.0 if palette else 0.0
    return vec


def reference_vector(references: list[np.ndarray], mode: str) -> np.ndarray:
    """The global vector of the user's reference images (several are blended, Comicolorization's
    multi-reference blending); `mode` is the request's reference_mode (histogram or palette)."""
    if not references:
        return global_vector(None)
    histogram = color.blend_histograms([color.histogram216(r) for r in references])
    return global_vector(histogram, mode == "palette")
