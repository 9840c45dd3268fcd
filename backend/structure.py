"""Classical structure of a B/W page, computed before the network sees it.

A small network trained on little data should not have to learn what classical image analysis
gives for free, so the colorizer is fed:
- which ink is *line* (long connected strokes that enclose regions) and which is *tone*
  (screentone dots and specks, small connected blobs);
- the regions enclosed by lines, their size and whether they touch the page border (paper);
- the hint layer at the working resolution.
Where hints spread is `spread.py`; how all of it becomes the network's input, `inputs.py`.
All functions work on numpy arrays; images are float32 in [0, 1] with 1 = white paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import cv2
import numpy as np

INK_LEVEL = 0.5  # ink pixels are darker than this
# An ink blob smaller than this many pixels (at a 2000-px page height) is tone or a speck, not a line.
TONE_BLOB_AREA_AT_2000 = 24
# A working-resolution pixel is a wall between regions when this share of it is line ink.
LINE_COVERAGE_WALL = 0.2


@dataclass
class PageStructure:
    """What the colorizer needs of the ink, at its working resolution."""

    ink: np.ndarray  # float32 HxW, area-averaged ink
    line: np.ndarray  # bool HxW, walls between regions
    tone: np.ndarray  # float32 HxW, local density of tone ink (screentone, hatching specks)

    @property
    def shape(self) -> tuple[int, int]:
        return self.ink.shape  # type: ignore[return-value]


def ink_mask(ink: np.ndarray) -> np.ndarray:
    return ink < INK_LEVEL


# Full-resolution pages reach 64 Mpx, where one float32 plane costs 256 MB: full-size work runs
# in bands of about this many pixels (a few MB of temporaries) or in place on compact dtypes.
BAND_PIXELS = 1 << 20

Checkpoint = Callable[[], None]  # called between bands; raises to stop (the pipeline's cancel)


def band_rows(width: int, multiple: int = 1) -> int:
    """Rows per band for a page `width` pixels wide (a multiple of `multiple`)."""
    rows = max(1, BAND_PIXELS // max(width, 1))
    return max(multiple, rows // multiple * multiple)


def split_line_and_tone(ink: np.ndarray, checkpoint: Checkpoint | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split dark pixels of a full-resolution page into line ink and tone ink by blob size."""
    dark = np.ascontiguousarray(ink_mask(ink))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(dark.view(np.uint8), connectivity=8)
    if checkpoint is not None:
        checkpoint()
    min_area = max(4, int(round(TONE_BLOB_AREA_AT_2000 * (max(ink.shape) / 2000.0) ** 2)))
    is_line = stats[:, cv2.CC_STAT_AREA] >= min_area
    is_line[0] = False  # background label
    line = is_line[labels]
    del labels  # int32, 256 MB at 64 Mpx
    tone = np.greater(dark, line, out=dark)  # dark & ~line, in place
    return line, tone


def working_shape(shape: tuple[int, int], long_side: int) -> tuple[int, int]:
    h, w = shape
    scale = min(1.0, long_side / max(h, w))
    return max(1, int(round(h * scale))), max(1, int(round(w * scale)))


def resize_area(
    img: np.ndarray, shape: tuple[int, int], block: Callable[[slice, slice], np.ndarray] | None = None,
    checkpoint: Checkpoint | None = None,
) -> np.ndarray:
    """Area-averaged float32 copy of `img` (any dtype) at `shape`, the same bits as
    `cv2.resize(img.astype(np.float32), ..., INTER_AREA)` but without the page-sized float32
    copy: a large page is converted and reduced in bands. `block(rows, cols)`, if given, makes
    the float32 pixels of that part of the page instead of `img[rows, cols]` (`img` then only
    gives the size), so derived images (hint colour x mask) are never built at full size.

    Bands are exact because OpenCV's INTER_AREA is separable: with an integer vertical (or
    horizontal) factor each band of whole output rows (columns) is reduced on its own; otherwise
    the rows are reduced horizontally band by band (a vertical factor of 1 adds nothing) and the
    narrow result vertically."""
    h, w = shape
    big_h, big_w = img.shape[:2]
    if (big_h, big_w) == (h, w):
        return img.astype(np.float32, copy=True) if block is None else np.asarray(block(slice(None), slice(None)), np.float32)
    if block is None:
        block = lambda rows, cols: img[rows, cols].astype(np.float32)  # noqa: E731
    if h > big_h or w > big_w or big_h * big_w <= 2 * BAND_PIXELS:
        return cv2.resize(block(slice(None), slice(None)), (w, h), interpolation=cv2.INTER_AREA)
    tail = img.shape[2:]

    def reduce(part: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        return cv2.resize(part, (size[1], size[0]), interpolation=cv2.INTER_AREA).reshape(size + tail)

    def check() -> None:
        if checkpoint is not None:
            checkpoint()

    out = np.empty((h, w) + tail, np.float32)
    if big_h % h == 0:  # whole output rows per band
        fy = big_h // h
        step = band_rows(big_w, fy)
        for y in range(0, big_h, step):
            y1 = min(y + step, big_h)
            out[y // fy : y1 // fy] = reduce(block(slice(y, y1), slice(None)), ((y1 - y) // fy, w))
            check()
        return out
    if big_w % w == 0:  # whole output columns per band
        fx = big_w // w
        step = band_rows(big_h, fx)
        for x in range(0, big_w, step):
            x1 = min(x + step, big_w)
            out[:, x // fx : x1 // fx] = reduce(block(slice(None), slice(x, x1)), (h, (x1 - x) // fx))
            check()
        return out
    narrow = np.empty((big_h, w) + tail, np.float32)
    step = band_rows(big_w)
    for y in range(0, big_h, step):
        y1 = min(y + step, big_h)
        narrow[y:y1] = reduce(block(slice(y, y1), slice(None)), (y1 - y, w))
        check()
    out[...] = reduce(narrow, (h, w))
    return out


def analyse_page(
    ink: np.ndarray, long_side: int, line_and_tone: tuple[np.ndarray, np.ndarray] | None = None,
    checkpoint: Checkpoint | None = None,
) -> PageStructure:
    """Full-resolution ink -> structure at the working resolution (long side at most `long_side`)."""
    line_full, tone_full = line_and_tone if line_and_tone is not None else split_line_and_tone(ink)
    shape = working_shape(ink.shape, long_side)
    ink_w = resize_area(ink, shape, checkpoint=checkpoint)
    line_w = resize_area(line_full, shape, checkpoint=checkpoint) >= LINE_COVERAGE_WALL  # bool -> float32 band by band
    tone_w = resize_area(tone_full, shape, checkpoint=checkpoint)
    tone_w = cv2.blur(tone_w, (5, 5))
    return PageStructure(ink=ink_w, line=line_w, tone=tone_w)


def line_regions(line: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the regions enclosed by line ink (4-connected); walls get label 0."""
    n, labels = cv2.connectedComponents((~line).astype(np.uint8), connectivity=4)
    return labels.astype(np.int32), int(n)


def enclosed_holes(region: np.ndarray) -> np.ndarray:
    """What a region (bool HxW) encloses: the pixels outside it that cannot reach the image border
    without crossing it (4-connected), e.g. the lettering inside a balloon."""
    outside = np.pad((~region).astype(np.uint8), 1, constant_values=1)
    cv2.floodFill(outside, None, (0, 0), 2)
    return outside[1:-1, 1:-1] == 1


@dataclass
class Regions:
    """A labelling of the page into regions (label 0: the walls) and, computed once when first
    asked for, what the network inputs, the paper seed and the palette stage all need of it."""

    labels: np.ndarray  # int32 HxW
    n: int  # labels are 0..n-1

    @cached_property
    def area(self) -> np.ndarray:
        """int64[n]: pixels per region."""
        return np.bincount(self.labels.ravel(), minlength=self.n)

    @cached_property
    def touches_border(self) -> np.ndarray:
        """bool[n]: which regions reach the image border (label 0, the walls, never counts).
        Shared: copy it before changing it."""
        labels = self.labels
        border = np.zeros(self.n, bool)
        border[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
        border[0] = False
        return border


def region_maps(regions: Regions) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel log-area share of its region and whether its region touches the border."""
    labels = regions.labels
    area = regions.area.astype(np.float32)
    total = float(labels.size)
    log_share = np.log(np.maximum(area, 1.0) / total) / np.log(max(total, 2.0))  # in [-1, 0]; a 1-px page: 0
    log_share = 1.0 + log_share  # 0 for a 1-px region, 1 for the whole page
    log_share[0] = 0.0
    return log_share[labels].astype(np.float32), regions.touches_border[labels].astype(np.float32)


def resample_hints(
    hints_rgba: np.ndarray, shape: tuple[int, int], checkpoint: Checkpoint | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution RGBA hint layer -> (RGB float, mask bool) at `shape`.

    A 1-px dot must survive downsampling, so colours are averaged over hint pixels only
    (not diluted with the empty layer) and any covered output pixel counts as hinted.
    """
    if hints_rgba.shape[:2] != tuple(shape):
        # Band by band: the float32 RGB of a 64-Mpx hint layer alone would be 768 MB. A hint layer is
        # mostly empty: a band without a hint pixel is zeros (what the formulas give it) at once.
        def weight_block(rows: slice, cols: slice) -> np.ndarray:
            return (hints_rgba[rows, cols, 3] > 0).astype(np.float32)

        def summed_block(rows: slice, cols: slice) -> np.ndarray:
            part = hints_rgba[rows, cols]
            if not part[..., 3].any():
                return np.zeros(part.shape[:2] + (3,), np.float32)
            rgb = part[..., :3].astype(np.float32) / 255.0
            rgb *= (part[..., 3] > 0).astype(np.float32)[..., None]
            return rgb

        weight = resize_area(hints_rgba[..., 3], shape, weight_block, checkpoint)
        summed = resize_area(hints_rgba[..., :3], shape, summed_block, checkpoint)
        out_mask = weight > 1e-6
        out_rgb = np.where(out_mask[..., None], summed / np.maximum(weight, 1e-6)[..., None], 0.0)
        return out_rgb.astype(np.float32), out_mask
    mask = (hints_rgba[..., 3] > 0).astype(np.float32)
    rgb = hints_rgba[..., :3].astype(np.float32) / 255.0
    return rgb * mask[..., None], mask > 0

