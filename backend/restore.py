"""Full resolution: the network's working-resolution colour made page-sized along the ink.

Bilinear upsampling bleeds colour across lines; flattening each line-enclosed region toward its
mean colour puts the boundaries back exactly where the ink is (Comicolorization's layout
restoration); then lettered balloons and near-white colour become paper white. All of it runs
in row bands straight into the uint8 colour layer: a 64-Mpx page never has a page-sized float
copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np

from . import color
from .request import ColorizeOptions
from .structure import Checkpoint, band_rows

# A region larger than this share of the page is usually open paper or a leaky outline: never flattened.
MAX_FLAT_REGION_SHARE = 0.03
WHITE_L = 93.0  # Lab lightness above which, with little chroma, colour snaps to paper white
WHITE_CHROMA = 7.0


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


@dataclass
class FullRegions:
    """The line-enclosed regions of the full-resolution page (4-connected, walls label 0): what the
    restoration flattens colour over. Depends only on the ink: the page cache keeps it."""

    n: int
    labels: np.ndarray  # HxW, uint16 when there are fewer than 65536 regions (half the memory), else int32
    area: np.ndarray  # float64[n]

    @property
    def nbytes(self) -> int:
        return self.labels.nbytes + self.area.nbytes


def full_regions(line_full: np.ndarray, checkpoint: Checkpoint | None = None) -> FullRegions:
    """line_regions(line_full), without its uint8 and int32 copies; the areas from OpenCV's stats
    (np.bincount over a 64-Mpx page takes a second and a 512 MB int64 copy of the labels)."""
    free = np.logical_not(line_full).view(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(free, connectivity=4)
    del free
    if n <= 1 << 16:  # the page cache keeps these: 128 MB instead of 256 MB at 64 Mpx
        labels = labels.astype(np.uint16)
    if checkpoint is not None:
        checkpoint()
    return FullRegions(n, labels, stats[:, cv2.CC_STAT_AREA].astype(np.float64))


def restore_bands(
    color_work: np.ndarray, line_full: np.ndarray, options: ColorizeOptions, checkpoint: Checkpoint | None = None,
    regions: FullRegions | None = None,
) -> Iterator[tuple[slice, np.ndarray]]:
    """Working-resolution colour -> full-size colour, guided by the ink, band by band: yields
    (rows, float32 rows x W x 3). Each line-enclosed region is flattened toward its mean colour
    by `options.flat_regions`. What stays for the whole page is the int32 region labels (the
    regions span bands) and a few MB per band. `checkpoint` is called between bands. `regions`:
    `full_regions(line_full)` if the caller has it."""
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
    if regions is None:
        regions = full_regions(line_full, checkpoint)
    n, labels, area = regions.n, regions.labels, regions.area
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
    # Each region's mean colour as one 12-byte item: np.take copies it per pixel, where numpy's fancy
    # indexing of 3 floats is several times slower.
    mean_items = np.ascontiguousarray(means).view(np.dtype((np.void, 12))).ravel()
    for rows in bands:  # second pass: flatten each region toward its mean
        up = upsample_rows(color_work, (h, w), rows.start, rows.stop)
        band_labels = labels[rows]
        flat = np.take(mean_items, band_labels).view(np.float32).reshape(up.shape)
        flat -= up
        flat *= np.take(flat_weight, band_labels)[..., None]
        up += flat
        yield rows, np.clip(up, 0.0, 1.0, out=up)
        if checkpoint is not None:
            checkpoint()


def _near_white_lut(levels: int = 64) -> np.ndarray:
    """Near-white test for every colour of a levels^3 grid: a lookup instead of Lab per pixel."""
    grid = (np.arange(levels, dtype=np.float64) + 0.5) / levels
    rgb = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(-1, 3)
    lab = color.rgb_to_lab(rgb)
    return (lab[:, 0] > WHITE_L) & (np.hypot(lab[:, 1], lab[:, 2]) < WHITE_CHROMA)


_NEAR_WHITE = _near_white_lut()


def _near_white_bytes() -> np.ndarray:
    """`_NEAR_WHITE` indexed by the bytes of a pixel's 6-bit levels packed as r | g << 8 | b << 16
    (what a uint32 view of RGBA levels gives, alpha masked off): 255 where near white, else 0."""
    q = np.arange(64, dtype=np.int64)
    packed = (q[:, None, None] | (q[None, :, None] << 8) | (q[None, None, :] << 16)).ravel()
    lut = np.zeros(0x3F3F3F + 1, np.uint8)
    lut[packed] = np.where(_NEAR_WHITE, 255, 0)  # _NEAR_WHITE is r-major: (r << 12) | (g << 6) | b
    return lut


_NEAR_WHITE_BYTES = _near_white_bytes()


def near_white_bytes(rgb: np.ndarray) -> np.ndarray:
    """uint8 HxW: 255 where `snap_white_into` would make the pixel white, else 0 (`rgb`: float32
    HxWx3 in [0, 1]). The same 6-bit levels, packed by OpenCV into one uint32 a pixel."""
    levels = np.minimum(rgb * 64.0, 63.0).astype(np.uint8)  # = clip(rgb * 64, 0, 63) for rgb in [0, 1]
    packed = cv2.cvtColor(levels, cv2.COLOR_RGB2RGBA).view(np.uint32)[..., 0]
    packed &= 0x3F3F3F  # alpha off (little-endian: RGBA bytes are r | g << 8 | b << 16 | a << 24)
    return _NEAR_WHITE_BYTES[packed]


def snap_white_into(rgb: np.ndarray) -> None:
    """Near-white, near-neutral colour becomes paper white, in place (a band of float32 RGB)."""
    q = np.clip(rgb * 64.0, 0, 63).astype(np.int32)
    q[..., 0] <<= 12
    q[..., 1] <<= 6
    idx = q[..., 0] | q[..., 1]
    idx |= q[..., 2]
    rgb[_NEAR_WHITE[idx]] = 1.0


def colour_layer(
    color_work: np.ndarray,
    line_full: np.ndarray,
    options: ColorizeOptions,
    white: np.ndarray | None = None,
    checkpoint: Checkpoint | None = None,
    regions: FullRegions | None = None,
) -> np.ndarray:
    """The colour layer (uint8 RGBA, opaque) of a page: `color_work` restored to the size of
    `line_full` (`restore_bands`), paper white where `white` says (the balloons that stay white)
    and, with `options.keep_white`, where it is near white."""
    h, w = line_full.shape
    layer = np.empty((h, w, 4), np.uint8)
    little = np.little_endian
    for rows, rgb in restore_bands(color_work, line_full, options, checkpoint, regions):
        # White (a balloon, a near-white colour) is 255 in every channel whatever the colour was, so
        # it is OR-ed into the bytes afterwards: the same bytes as setting the colour to 1.0 first.
        snap = near_white_bytes(rgb) if options.keep_white and little else None
        if not little:
            if white is not None:
                rgb[white[rows]] = 1.0
            if options.keep_white:
                snap_white_into(rgb)
        rgb *= 255.0
        rgb += 0.5
        np.clip(rgb, 0, 255, out=rgb)
        band = layer[rows]
        band[...] = cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2RGBA)  # float -> uint8 truncates; alpha 255
        if snap is not None:
            band |= snap[..., None]
        if white is not None and little:
            band |= white[rows].view(np.uint8)[..., None] * np.uint8(255)
    return layer
