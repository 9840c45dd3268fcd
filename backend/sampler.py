"""Training samples, drawn cheaply at every step from the page cache (`data.py`).

`Sampler.batch(n, crop)` draws: a random crop (biased to content) of a cached page, sometimes
with pasted speech balloons or broken outlines, a flip, simulated hints (schedule of
`hints.hint_count`), a simulated reference (histogram or palette of the same picture,
cropped/scaled, sometimes blended with another, sometimes recoloured with the picture, sometimes
none) and, rarely, a blurred colouring draft. The network input of a sample is built by the
pipeline's own code (`example_inputs`: `inputs.build_inputs`, `spread.spread_on_page`,
`inputs.global_vector`), so the model is trained on what it is served.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import color
from .data import P_AREA, P_BORDER, P_CAND, P_FILL, P_GT, P_INK, P_LINE, P_TONE, cached_pages, from_uint8, reference_hists
from .hints import hint_count, sample_hints
from .inputs import HINT_MASK, INK, N_INPUT_CHANNELS, PROPAGATED_MASK, build_inputs, global_vector
from .spread import spread_on_page
from .structure import PageStructure, resample_hints

# How often each group of sources is drawn (normalised over the groups present).
GROUP_WEIGHTS = {"openmoji": 0.25, "dicebear": 0.15, "openclipart": 0.25, "comicgen": 0.15, "peppercarrot": 0.15, "other": 0.05}


def paste_balloon(win: np.ndarray, page_pixels: int, rng: np.random.Generator) -> None:
    """Draw a speech balloon with lettering into a window of cached planes (in place).

    Synthetic sources have few balloons; real pages have many, and their paper must stay white.
    The balloon is an inked ellipse, white inside with glyph-like strokes (as lettering looks at the
    working resolution: small dark strokes, most of them walls), ground truth white.
    """
    H, W = win.shape[:2]
    if H < 48 or W < 48:
        return
    a = rng.uniform(14.0, min(70.0, W / 2.5))
    b = float(np.clip(a * rng.uniform(0.6, 1.5), 10.0, H / 2.5))
    cy, cx = rng.uniform(b + 2, H - b - 2), rng.uniform(a + 2, W - a - 2)
    centre, axes = (int(round(cx)), int(round(cy))), (int(round(a)), int(round(b)))
    filled = np.zeros((H, W), np.uint8)
    cv2.ellipse(filled, centre, axes, 0, 0, 360, 1, -1)
    outline = np.zeros((H, W), np.uint8)
    cv2.ellipse(outline, centre, axes, 0, 0, 360, 1, int(rng.integers(1, 3)))
    filled, outline = filled > 0, outline > 0
    inner = cv2.erode((filled & ~outline).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    glyph_ink = np.ones((H, W), np.float32)
    g = int(rng.integers(3, 6))  # glyph size in working px
    vertical = rng.random() < 0.5
    ys, xs = np.nonzero(inner)
    if len(ys):
        y_lo, y_hi, x_lo, x_hi = ys.min(), ys.max(), xs.min(), xs.max()
        step = g + int(rng.integers(1, 3))
        for yy in range(y_lo, y_hi - g, step if not vertical else g + 1):
            for xx in range(x_lo, x_hi - g, g + 1 if not vertical else step):
                if rng.random() < 0.25 or not inner[yy : yy + g, xx : xx + g].all():
                    continue
                for _ in range(int(rng.integers(1, 4))):
                    p0 = (xx + int(rng.integers(0, g)), yy + int(rng.integers(0, g)))
                    p1 = (xx + int(rng.integers(0, g)), yy + int(rng.integers(0, g)))
                    cv2.line(glyph_ink, p0, p1, float(rng.uniform(0.0, 0.45)), 1)
    glyph = glyph_ink < 0.99
    walls = outline | (glyph & (rng.random((H, W)) < 0.7))
    inside = filled & ~outline
    ink = np.where(outline, 0.0, np.where(inside, glyph_ink, win[..., P_INK] / 255.0))
    win[..., P_INK] = np.clip(ink * 255 + 0.5, 0, 255).astype(np.uint8)
    win[..., P_LINE] = np.where(filled, walls * 255, win[..., P_LINE]).astype(np.uint8)
    win[..., P_TONE][filled] = 0
    for c in range(3):
        win[..., P_GT + c][inside] = 255
        win[..., P_GT + c][outline] = 0
        win[..., P_FILL + c][filled] = 255
    cand = inside & ~(cv2.dilate(glyph.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
    win[..., P_CAND][filled] = 0
    win[..., P_CAND][cand] = 1
    # Region maps of the balloon's own regions (it is enclosed: no border contact).
    n, labels = cv2.connectedComponents((inside & ~walls).astype(np.uint8), connectivity=4)
    area = np.bincount(labels.ravel(), minlength=n).astype(np.float64)
    share = 1.0 + np.log(np.maximum(area, 1.0) / page_pixels) / np.log(page_pixels)
    share[0] = 0.0
    win[..., P_AREA][filled] = np.clip(share[labels][filled] * 255 + 0.5, 0, 255).astype(np.uint8)
    win[..., P_BORDER][filled] = 0


def hue_matrix(degrees: float) -> np.ndarray:
    """3x3 RGB matrix rotating hue by `degrees` about the gray axis in YIQ (luma kept)."""
    yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
    t = np.radians(degrees)
    rot = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]], np.float32)
    return (np.linalg.inv(yiq) @ rot @ yiq).astype(np.float32)


def recolour(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return np.clip(rgb @ matrix.T, 0.0, 1.0).astype(np.float32)


@dataclass
class Batch:
    x: np.ndarray  # B x N_INPUT_CHANNELS x H x W network input (`inputs.build_inputs`)
    g: np.ndarray  # B x GLOBAL_SIZE global vector (`inputs.global_vector`)
    target: np.ndarray  # B x 3 x H x W sRGB ground truth (colour under thin lines filled in)
    weight: np.ndarray  # B x 1 x H x W per-pixel loss weight

    @property
    def hint(self) -> np.ndarray:
        """B x 1 x H x W hint mask (1 = user hint pixel)."""
        return np.ascontiguousarray(self.x[:, HINT_MASK : HINT_MASK + 1])

    @property
    def prop(self) -> np.ndarray:
        """B x 1 x H x W propagated hint mask."""
        return np.ascontiguousarray(self.x[:, PROPAGATED_MASK : PROPAGATED_MASK + 1])


WHITE_TARGET = 0.94  # a target (and ink) lighter than this in every channel is white paper
GAP_BREAKS_PER_LINE_PX = 1 / 250  # breaks in the line art, per line pixel of the window


def break_lines(ink: np.ndarray, line: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Line art with gaps, as drawn outlines often have (hands, hair, sleeves): erase small
    discs (1-3 px radius at the working resolution) at random points of the lines."""
    ys, xs = np.nonzero(line)
    n = rng.binomial(len(ys), GAP_BREAKS_PER_LINE_PX) if len(ys) else 0
    if n == 0:
        return ink, line
    ink, line = ink.copy(), line.astype(np.uint8)
    paper = float(np.percentile(ink, 95))
    gaps = np.zeros_like(line)
    for i in rng.choice(len(ys), size=n, replace=False):
        cv2.circle(gaps, (int(xs[i]), int(ys[i])), int(rng.integers(1, 4)), 1, -1)
    ink[gaps > 0] = paper
    return ink, (line > 0) & (gaps == 0)


def _cut(plane: np.ndarray, rows: slice, cols: slice, crop: int, outside: float) -> np.ndarray:
    """`plane[rows, cols]` in the top left of a crop x crop plane, `outside` elsewhere (a page
    smaller than the crop is padded)."""
    out = np.full((crop, crop) + plane.shape[2:], outside, plane.dtype)
    part = plane[rows, cols]
    out[: part.shape[0], : part.shape[1]] = part
    return out


def example_inputs(
    page: PageStructure,
    region_area: np.ndarray,
    region_border: np.ndarray,
    hints: np.ndarray,
    edges: tuple[bool, bool, bool, bool],
    page_shape: tuple[int, int],
    rows: slice,
    cols: slice,
    crop: int,
    draft_rgb: np.ndarray | None = None,
) -> np.ndarray:
    """The network input of a training crop, built as the pipeline builds a page's
    (`inputs.page_inputs`): `page` is a window of a cached page around the crop, `hints` its
    RGBA hint layer; the hints spread over the whole window (hints just outside the crop still
    reach in, as on a full page), the paper seed on the window's `edges` that are the page's
    edges. The region maps are the cached ones, of the whole page. Then the crop (`rows`, `cols`
    of the window) is cut out; a page smaller than `crop` is padded with blank paper that belongs
    to the big region touching the border. `draft_rgb` (crop x crop x 3) covers the whole crop."""
    hint_rgb, hint_mask = resample_hints(hints, page.shape)
    spread = spread_on_page(page, hint_rgb, hint_mask, edges, page_shape)

    def cut(plane: np.ndarray, outside: float = 0.0) -> np.ndarray:
        return _cut(plane, rows, cols, crop, outside)

    window = PageStructure(ink=cut(page.ink, 1.0), line=cut(page.line), tone=cut(page.tone))
    draft_mask = None if draft_rgb is None else np.ones((crop, crop), bool)
    return build_inputs(
        window, cut(region_area, 1.0), cut(region_border, 1.0), cut(hint_rgb), cut(hint_mask),
        cut(spread.rgb), cut(spread.mask), draft_rgb, draft_mask,
    )  # fmt: skip


class Sampler:
    """Cheap random training samples from a page cache (memory-mapped)."""

    def __init__(
        self,
        cache_dir: str | Path,
        rng: np.random.Generator,
        names: list[str] | None = None,
        p_reference: float = 0.6,
        p_palette: float = 0.3,
        p_draft: float = 0.12,
        p_recolour: float = 0.4,
        p_balloon: float = 0.0,
        ink_weight: float = 0.15,
        p_gaps: float = 0.0,
        white_weight: float = 1.0,
        p_model_draft: float = 0.0,
        draft_model=None,
    ):
        self.cache_dir = Path(cache_dir)
        self.names = names if names is not None else cached_pages(cache_dir)
        if not self.names:
            raise ValueError(f"no cached pages in {cache_dir}")
        self.rng = rng
        self.p_reference, self.p_palette, self.p_draft, self.ink_weight = p_reference, p_palette, p_draft, ink_weight
        self.p_recolour, self.p_balloon = p_recolour, p_balloon
        self.p_gaps, self.white_weight = p_gaps, white_weight
        # Issue 13: this share of the drafts comes from the drafting model (`draft.DraftModel`), as the
        # paper trains its colorizer: the truth encoded by the colour encoder and decoded for the page
        # (the posterior mean), at 64x64, upsampled as serving does (`draft._to_page`).
        self.p_model_draft, self.draft_model = p_model_draft, draft_model
        self._model_drafts: dict[str, np.ndarray] = {}
        self._set_weights()
        self._pages: dict[str, np.ndarray] = {}
        self.hists = {n: np.load(self.cache_dir / f"{n}.hist.npy") for n in self.names}

    def refresh(self) -> int:
        """Pick up pages added to the cache since (a cache still being built by another process)."""
        names = cached_pages(self.cache_dir)
        new = [n for n in names if n not in self.hists]
        for n in new:
            try:
                self.hists[n] = np.load(self.cache_dir / f"{n}.hist.npy")
            except (OSError, ValueError):
                continue
        if new:
            self.names = [n for n in names if n in self.hists]
            self._set_weights()
        return len(new)

    def _set_weights(self) -> None:
        groups = [n.split("__", 1)[0] for n in self.names]
        present = sorted(set(groups))
        gw = {g: GROUP_WEIGHTS.get(g, GROUP_WEIGHTS["other"]) for g in present}
        total = sum(gw.values())
        count = {g: groups.count(g) for g in present}
        self.p = np.array([gw[g] / total / count[g] for g in groups])
        self.p /= self.p.sum()

    def page(self, name: str) -> np.ndarray:
        if name not in self._pages:
            self._pages[name] = np.load(self.cache_dir / f"{name}.npy", mmap_mode="r")
        return self._pages[name]

    def _crop_origin(self, planes: np.ndarray, crop: int) -> tuple[int, int]:
        h, w = planes.shape[:2]
        rng = self.rng
        if rng.random() < 0.75:
            # Centre on a random piece of the drawing (coloured or inked), not on the margin.
            gt = planes[::4, ::4, P_GT : P_GT + 3]
            ys, xs = np.nonzero(gt.min(-1) < 230)
            if len(ys):
                i = int(rng.integers(len(ys)))
                cy, cx = ys[i] * 4, xs[i] * 4
                return int(np.clip(cy - crop // 2, 0, max(0, h - crop))), int(np.clip(cx - crop // 2, 0, max(0, w - crop)))
        return int(rng.integers(0, max(0, h - crop) + 1)), int(rng.integers(0, max(0, w - crop) + 1))

    def reference(self, name: str, hue: np.ndarray | None = None) -> np.ndarray:
        """The global vector of a simulated reference: a 216-bin histogram or binary palette of a
        view of the same picture (sometimes blended with another picture's). With `hue` (a colour
        matrix applied to the ground truth), the view is recoloured the same way, so only the
        reference tells the colours."""
        rng = self.rng
        if hue is not None:
            page = np.asarray(self.page(name)[::2, ::2, P_GT : P_GT + 3], np.float32) / 255.0
            hist = reference_hists(recolour(page, hue), rng, n=2)[int(rng.integers(2))]
        else:
            hists = self.hists[name]
            hist = hists[int(rng.integers(len(hists)))]
        if rng.random() < 0.2:  # a blend of two references (Comicolorization's blending)
            other = self.names[int(rng.choice(len(self.names), p=self.p))]
            oh = self.hists[other][int(rng.integers(len(self.hists[other])))]
            wgt = rng.uniform(0.1, 0.4)
            hist = color.blend_histograms([hist, oh], [1.0 - wgt, wgt])
        return global_vector(hist, palette=rng.random() < self.p_palette)

    def sample(self, crop: int, margin: int = 48, k: int | None = None, name: str | None = None):
        """(x, g, target, weight) of one random crop of a cached page: `Batch` without the batch."""
        rng = self.rng
        name = name or self.names[int(rng.choice(len(self.names), p=self.p))]
        planes = self.page(name)
        h, w = planes.shape[:2]
        y0, x0 = self._crop_origin(planes, crop)
        # A window around the crop, so hints just outside it still propagate in (as on a full page).
        wy0, wx0 = max(0, y0 - margin), max(0, x0 - margin)
        wy1, wx1 = min(h, y0 + crop + margin), min(w, x0 + crop + margin)
        win = np.array(planes[wy0:wy1, wx0:wx1], dtype=np.uint8)
        if rng.random() < self.p_balloon:
            for _ in range(int(rng.integers(1, 3))):
                paste_balloon(win, h * w, rng)
        ink = from_uint8(win[..., P_INK])
        line = win[..., P_LINE] > 0
        gt = from_uint8(win[..., P_GT : P_GT + 3])
        fill = from_uint8(win[..., P_FILL : P_FILL + 3])
        # With a reference, sometimes recolour the whole picture (hue rotation keeping luma): the
        # ink cannot tell the new colours, only the reference (and hints) can, so the network learns to read it.
        with_ref = rng.random() < self.p_reference
        hue = hue_matrix(rng.uniform(40.0, 320.0)) if with_ref and rng.random() < self.p_recolour else None
        if hue is not None:
            gt, fill = recolour(gt, hue), recolour(fill, hue)
        cand_code = win[..., P_CAND]
        cand = (cand_code > 0, np.where(cand_code == 2, 4.0, 1.0).astype(np.float32))
        n_hints = hint_count(rng) if k is None else k
        # Hint density is per page in the schedule; a window sees its share of them.
        if k is None and n_hints > 0:
            share = (win.shape[0] * win.shape[1]) / float(h * w)
            n_hints = int(rng.binomial(n_hints, min(1.0, share * rng.uniform(1.0, 3.0)))) if share < 1 else n_hints
        hints = sample_hints(gt, ink, n_hints, rng, strokes=rng.random() < 0.3, candidates=cand, sizes=(1, 1, 1, 2))
        if rng.random() < self.p_gaps:
            ink, line = break_lines(ink, line, rng)
        page = PageStructure(ink=ink, line=line, tone=from_uint8(win[..., P_TONE]))
        # The crop inside the window; a page smaller than the crop is padded with paper.
        oy, ox = y0 - wy0, x0 - wx0
        rows, cols = slice(oy, oy + min(crop, h)), slice(ox, ox + min(crop, w))
        tgt = np.moveaxis(_cut(fill, rows, cols, crop, 1.0), -1, 0)
        draft = None
        if rng.random() < self.p_draft:
            if self.draft_model is not None and rng.random() < self.p_model_draft:
                d = self.model_draft(name)[wy0:wy1, wx0:wx1]
                draft = _cut(recolour(d, hue) if hue is not None else d, rows, cols, crop, 1.0)
            else:
                draft = cv2.GaussianBlur(np.moveaxis(tgt, 0, -1), (0, 0), rng.uniform(6.0, 20.0))
        edges = (wy0 == 0, wy1 == h, wx0 == 0, wx1 == w)
        x = example_inputs(
            page, from_uint8(win[..., P_AREA]), from_uint8(win[..., P_BORDER]), hints, edges, (h, w), rows, cols, crop, draft
        )
        weight = np.where(x[INK] < 0.5, self.ink_weight, 1.0).astype(np.float32)
        # The truth's white paper must stay white: weigh it more where the page is blank there.
        white = (tgt.min(0) > WHITE_TARGET) & (x[INK] > WHITE_TARGET)
        weight = np.where(white, weight * self.white_weight, weight)[None].astype(np.float32)
        if rng.random() < 0.5:  # horizontal flip
            x, tgt, weight = x[..., ::-1], tgt[..., ::-1], weight[..., ::-1]
        g = self.reference(name, hue) if with_ref else global_vector(None)
        assert x.shape[0] == N_INPUT_CHANNELS
        return np.ascontiguousarray(x), g, np.ascontiguousarray(tgt), np.ascontiguousarray(weight)

    def model_draft(self, name: str) -> np.ndarray:
        """The drafting model's draft of a cached page (its truth inverted with the page, decoded),
        page-sized HxWx3 float32; the 64x64 draft is computed once per page."""
        from .draft import _to_page, draft_from_color

        planes = self.page(name)
        if name not in self._model_drafts:
            ink = from_uint8(np.asarray(planes[..., P_INK]))
            gt = from_uint8(np.asarray(planes[..., P_FILL : P_FILL + 3]))
            small = cv2.resize(draft_from_color(self.draft_model, gt, ink), (64, 64), interpolation=cv2.INTER_AREA)
            self._model_drafts[name] = small
        import torch

        return _to_page(torch.from_numpy(np.moveaxis(self._model_drafts[name], -1, 0)), planes.shape[:2])

    def batch(self, n: int, crop: int) -> Batch:
        xs, gs, ts, ws = zip(*(self.sample(crop) for _ in range(n)))
        return Batch(x=np.stack(xs), g=np.stack(gs), target=np.stack(ts), weight=np.stack(ws))
