"""The colour feature stage: which colours the network and the palette stage are given, page-wide
or per panel (Comicolorization's colour features, and its per-panel colorization restored into the
page layout).

- `feature_vector`: a set of colour sources (weighted references and saved palettes) -> the network's
  global vector (`inputs.global_vector`, the one definition): their 216-bin histograms blended by
  weight, the dominant bin adjusted (`palettes.adjust_dominant`, option `dominant_scale`), as a
  histogram or as a binary palette (option `reference_mode`).
- `stage_colours`: the same sources -> the palette stage's colours (Lab): the references' main
  colours and the palettes' swatches.
- `ColourPlan`: the page's and each panel's feature. The network runs once per distinct feature on
  the WHOLE page (the network keeps its context: the rest of the page, the hints' spread); each
  panel's pixels (its polygon at the working resolution, `panels.panel_masks`) are taken from the run
  with its feature, the rest of the page from the page's run; then the palette stage acts per panel
  with that panel's colours and the hints painted inside it. Restoration to full resolution
  (`restore.py`) is the same for the whole page afterwards.

With no panels the plan is one feature and one palette, exactly what the pipeline did before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from . import color
from .inputs import global_vector
from .palettes import adjust_dominant, blend_features
from .panels import Panel, detect_panels, panel_masks
from .reference import SOLID_HINT_ALPHA, hint_colours, match_palette, reference_colours
from .request import ColorizeOptions, ColorizeRequest, ColourSources, PanelInput
from .spread import SpreadPrep, clean_paper, paper_seed, prepare_spread
from .structure import Checkpoint, PageStructure, Regions

# Each panel is a picture of its own (Comicolorization colorizes panel by panel): blank paper just
# inside its frame, within this share of the working long side, seeds paper as the page border does.
PANEL_SEED_SHARE = 0.015


def feature_histogram(sources: ColourSources, dominant_scale: float = 1.0) -> np.ndarray | None:
    """The blended 216-bin histogram of the sources (None when there are none): references and
    palettes, each by its weight, then the dominant-bin adjustment."""
    if sources.empty:
        return None
    hists = [color.histogram216(r) for r in sources.references] + [p.histogram for p in sources.palettes]
    weights = list(sources.weights) if sources.weights is not None else [1.0] * len(sources.references)
    weights += [p.weight for p in sources.palettes]
    return adjust_dominant(blend_features(hists, weights), dominant_scale)


def feature_vector(sources: ColourSources, options: ColorizeOptions) -> np.ndarray:
    """The network's global colour vector for these sources."""
    return global_vector(feature_histogram(sources, options.dominant_scale), options.reference_mode == "palette")


def stage_colours(sources: ColourSources) -> np.ndarray:
    """The palette stage's colours (Lab, N x 3) from these sources: the references' main colours
    (k-means), then every palette's swatches."""
    lab = reference_colours(list(sources.references))
    swatches = [p.swatches_lab() for p in sources.palettes if len(p.swatches)]
    return np.concatenate([lab, *swatches]) if swatches else lab


def auto_panels(ink: np.ndarray, order: str = "rtl") -> list[PanelInput]:
    """`"panels": "auto"`: the page's panels (`panels.detect_panels`), each with the page's colours."""
    return [PanelInput(polygon=list(p.polygon)) for p in detect_panels(ink, order=order)]


def working_panel_labels(panels: list[PanelInput], page_shape: tuple[int, int], work_shape: tuple[int, int]) -> np.ndarray:
    """int32 label map at the working resolution: 0 = no panel, i + 1 = panel i (an inset, the
    smaller of two overlapping panels, wins)."""
    (H, W), (h, w) = page_shape, work_shape
    sx, sy = w / W, h / H
    scaled = [Panel([(round(x * sx), round(y * sy)) for x, y in p.polygon]) for p in panels]
    return panel_masks(scaled, (h, w))


def panel_spread_prep(page: PageStructure, labels: np.ndarray) -> SpreadPrep:
    """The hint spread's page analysis (`spread.prepare_spread`) with the paper seed on the page
    border AND just inside every panel's edge: the blank background around a figure inside a framed
    panel stays paper as it does on an unframed page (the frame no longer hides it from the seed)."""
    paper = clean_paper(page.ink, page.tone, page.line)
    r = max(2, round(PANEL_SEED_SHARE * max(page.shape)))
    kernel = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    lab = labels.astype(np.float32)
    near_edge = cv2.dilate(lab, kernel, borderType=cv2.BORDER_REPLICATE) != cv2.erode(lab, kernel, borderType=cv2.BORDER_REPLICATE)
    seed = paper_seed(paper) | (paper & near_edge & (labels > 0))
    return prepare_spread(page.line, seed, page.shape)


def _crop_regions(regions: Regions, ys: slice, xs: slice) -> Regions:
    """The regions seen through a window: areas counted inside it (region means are the panel's
    part), but a region touches the border only if it touches the PAGE's (a region cut by the
    panel's frame is not open paper)."""
    crop = Regions(np.ascontiguousarray(regions.labels[ys, xs]), regions.n)
    crop.__dict__["touches_border"] = regions.touches_border  # cached_property: the page's answer
    return crop


@dataclass
class ColourPlan:
    """The page's colour feature and each panel's; what the pipeline runs and composes."""

    page: ColourSources
    panels: list[PanelInput] = field(default_factory=list)
    options: ColorizeOptions = field(default_factory=ColorizeOptions)

    @classmethod
    def of(cls, request: ColorizeRequest) -> "ColourPlan":
        return cls(request.colours, list(request.panels or []), request.options)

    def panel_sources(self, i: int) -> ColourSources:
        own = self.panels[i].colours
        return self.page if own is None else own

    def vectors(self, labels: np.ndarray | None) -> tuple[list[np.ndarray], np.ndarray | None]:
        """The distinct global vectors to run, and for each working pixel the index of its run (None:
        one run for the whole page). `labels`: `working_panel_labels`, None without panels."""
        page_vec = feature_vector(self.page, self.options)
        if not self.panels or labels is None:
            return [page_vec], None
        runs: list[np.ndarray] = []
        index: dict[bytes, int] = {}

        def run_of(vec: np.ndarray) -> int:
            key = vec.tobytes()
            if key not in index:
                index[key] = len(runs)
                runs.append(vec)
            return index[key]

        lut = np.zeros(len(self.panels) + 1, np.int32)
        if (labels == 0).any():
            lut[0] = run_of(page_vec)
        for i in range(len(self.panels)):
            lut[i + 1] = run_of(page_vec if self.panels[i].colours is None else feature_vector(self.panels[i].colours, self.options))
        if not runs:  # panels covering nothing at the working size: the page's run
            run_of(page_vec)
        return runs, lut[labels]

    def palette_stage(
        self,
        color_work: np.ndarray,
        regions: Regions,
        hinted: np.ndarray,
        paper: np.ndarray,
        hints: np.ndarray | None,
        labels: np.ndarray | None,
        page_shape: tuple[int, int],
        checkpoint: Checkpoint | None = None,
    ) -> np.ndarray:
        """The palette stage (`reference.match_palette`): page-wide with the page's colours and all
        hints; then inside each panel with its own colours and the hints painted in it."""
        strength = self.options.palette_strength
        if strength <= 0:
            return color_work
        if checkpoint is not None:
            checkpoint()
        page_colours = np.concatenate([hint_colours(hints), stage_colours(self.page)])
        if checkpoint is not None:
            checkpoint()
        out = match_palette(color_work, regions, hinted, page_colours, strength, paper)
        if not self.panels or labels is None:
            return out
        if out is color_work:  # nothing moved page-wide: the panels' windows still read the network's colour
            out = out.copy()
        panel_hints = _hint_pixels_by_panel(hints, labels, page_shape)
        for i in range(len(self.panels)):
            if checkpoint is not None:
                checkpoint()
            inside = labels == i + 1
            if not inside.any():
                continue
            ys, xs = np.nonzero(inside)
            win = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
            colours = np.concatenate([hint_colours(panel_hints.get(i + 1)), stage_colours(self.panel_sources(i))])
            moved = match_palette(
                np.ascontiguousarray(color_work[win]), _crop_regions(regions, *win), hinted[win], colours, strength, paper[win]
            )
            sel = inside[win]
            out[win][sel] = moved[sel]
        return out


def _hint_pixels_by_panel(hints: np.ndarray | None, labels: np.ndarray, page_shape: tuple[int, int]) -> dict[int, np.ndarray]:
    """The solid hint pixels of each panel, as N x 1 x 4 'images' for `reference.hint_colours`."""
    if hints is None:
        return {}
    ys, xs = np.nonzero(hints[..., 3] >= SOLID_HINT_ALPHA)
    if ys.size == 0:
        return {}
    (H, W), (h, w) = page_shape, labels.shape
    wy = np.minimum((ys * h) // H, h - 1)
    wx = np.minimum((xs * w) // W, w - 1)
    which = labels[wy, wx]
    pixels = hints[ys, xs]
    return {int(k): pixels[which == k][:, None, :] for k in np.unique(which) if k > 0}


def compose_runs(runs: list[np.ndarray], which: np.ndarray | None) -> np.ndarray:
    """One working-resolution colour image from the runs: each pixel from the run of its panel."""
    if which is None or len(runs) == 1:
        return runs[0]
    out = runs[0].copy()
    for k in range(1, len(runs)):
        sel = which == k
        out[sel] = runs[k][sel]
    return out


def run_plan(
    plan: ColourPlan,
    run: Callable[[np.ndarray], np.ndarray],
    labels: np.ndarray | None,
    checkpoint: Checkpoint | None = None,
) -> np.ndarray:
    """Run the network (`run(global_vector) -> H x W x 3`) once per distinct feature and compose."""
    vectors, which = plan.vectors(labels)
    outs = []
    for vec in vectors:
        if checkpoint is not None and outs:
            checkpoint()
        outs.append(run(vec))
    return compose_runs(outs, which)
