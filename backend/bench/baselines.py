"""What a colorist could use instead of MangaColor, run on the same pages and hints.

- `no_colour`: the page left as it is (the ink as RGB).
- `levin`: Levin, Lischinski & Weiss (2004), "Colorization using optimization": hint colours are
  propagated over the page by a sparse least-squares system whose affinities come from the ink's
  luminance (neighbours of similar gray want similar colour), solved with scipy.sparse at a
  reduced resolution and upsampled. See `levin_colour` for how it is fitted to line art.
- `flat_fill`: a bucket fill: every line-enclosed region (`structure.line_regions`) that holds a
  hint takes the hint's colour (the nearest hint's where it holds several); others stay white.
- Krita's Colorize Mask: Krita 5.2.9 driven in a chroot, in `colorize_mask.py` (its `status` says
  why it is skipped where it cannot run).

Every method returns (colour layer float32 HxWx3 in [0, 1], composite uint8 HxWx3 = colour x ink),
the same pair the pipeline produces, so all are scored the same way.
"""

from __future__ import annotations


import cv2
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..spread import propagate_hints
from ..structure import line_regions, resample_hints, resize_area, split_line_and_tone, working_shape

LEVIN_SIZE = 320  # long side of the grid the optimisation is solved on

# sRGB <-> YIQ-style YUV as in Levin et al.'s code (rgb2ntsc).
_RGB_TO_YUV = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float64)
_YUV_TO_RGB = np.linalg.inv(_RGB_TO_YUV)


def compose(colour: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Colour layer x ink (Multiply), uint8, as `request.multiply` does."""
    layer = np.clip(colour * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.clip(layer.astype(np.float32) * ink[..., None] + 0.5, 0, 255).astype(np.uint8)


def no_colour(ink: np.ndarray, hints: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    colour = np.ones(ink.shape + (3,), np.float32)
    return colour, compose(colour, ink)


def levin_affinity_system(gray: np.ndarray, fixed: np.ndarray) -> sp.csr_matrix:
    """The sparse matrix A of Levin et al.: for a free pixel r, U(r) - sum_s w_rs U(s) = 0 over its
    3x3 neighbours, w_rs proportional to exp(-(Y(r) - Y(s))^2 / (2 sigma_r^2)), sigma_r^2 from the
    window's variance (their getColorExact: 0.6 x variance, floored so that the least similar
    neighbour still weighs 0.01, and at 2e-6); a fixed (hinted) pixel keeps its value (row = identity).
    """
    h, w = gray.shape
    n = h * w
    g = gray.astype(np.float64)
    idx = np.arange(n).reshape(h, w)
    pad_g = np.pad(g, 1, mode="constant", constant_values=np.nan)
    pad_i = np.pad(idx, 1, mode="constant", constant_values=-1)
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    nb_g = np.stack([pad_g[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in offsets], 0)
    nb_i = np.stack([pad_i[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in offsets], 0)
    valid = nb_i >= 0
    win = np.concatenate([nb_g, g[None]], 0)
    var = np.nanvar(win, axis=0)
    diff2 = np.where(valid, (nb_g - g[None]) ** 2, np.inf)
    csig = 0.6 * var
    min_diff = np.min(diff2, axis=0)
    csig = np.maximum(csig, -min_diff / np.log(0.01))
    csig = np.maximum(csig, 2e-6)
    wts = np.where(valid, np.exp(-np.where(valid, diff2, 0.0) / csig[None]), 0.0)
    wts /= np.maximum(wts.sum(0, keepdims=True), 1e-300)
    free = ~fixed.ravel()
    rows = np.broadcast_to(idx[None], nb_i.shape).reshape(len(offsets), -1)
    cols = nb_i.reshape(len(offsets), -1)
    vals = -wts.reshape(len(offsets), -1)
    keep = valid.reshape(len(offsets), -1) & free[None, :]
    A = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n, n))
    return (A + sp.identity(n, format="csr")).tocsc()


def levin_solve(gray: np.ndarray, hint_values: np.ndarray, hint_mask: np.ndarray) -> np.ndarray:
    """Propagate C channels of hint values (HxWxC) over `gray` by Levin's optimisation."""
    h, w = gray.shape
    A = levin_affinity_system(gray, hint_mask)
    b = np.where(hint_mask[..., None], hint_values, 0.0).reshape(h * w, -1)
    # A is structurally symmetric and (weakly) diagonally dominant: no pivoting is needed, and the
    # minimum-degree ordering of A + A^T is the fastest SuperLU ordering for this stencil.
    lu = spla.splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    x = lu.solve(b.astype(np.float64))
    return x.reshape(h, w, -1)


def levin_colour(
    ink: np.ndarray, hints: np.ndarray | None, size: int = LEVIN_SIZE, keep_luma: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Levin et al. colorization of a B/W page from an RGBA hint layer.

    The affinities come from the ink's gray at a working resolution (long side `size`); the hint
    colours are solved for in YUV. The classic method then keeps the gray image's own Y (`keep_luma`);
    on line art that Y is paper white almost everywhere, which leaves only pale tints, so by default
    all of Y, U and V are propagated and the result is used as a colour layer under the ink
    (Multiply), exactly as MangaColor's own output is. Without hints it is `no_colour`.
    """
    if hints is None or not (hints[..., 3] > 0).any():
        return no_colour(ink)
    shape = working_shape(ink.shape, size)
    gray = resize_area(ink, shape)
    hint_rgb, hint_mask = resample_hints(hints, shape)
    yuv_hints = hint_rgb.astype(np.float64) @ _RGB_TO_YUV.T
    if keep_luma:
        uv = levin_solve(gray, yuv_hints[..., 1:], hint_mask)
        uv_full = cv2.resize(uv.astype(np.float32), (ink.shape[1], ink.shape[0]), interpolation=cv2.INTER_LINEAR)
        yuv = np.concatenate([ink[..., None].astype(np.float64), uv_full], -1)
        rgb = np.clip(yuv @ _YUV_TO_RGB.T, 0.0, 1.0).astype(np.float32)
        # The classic output already carries the page's luminance: it *is* the composite.
        return rgb, np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    yuv = levin_solve(gray, yuv_hints, hint_mask)
    rgb = np.clip(yuv @ _YUV_TO_RGB.T, 0.0, 1.0).astype(np.float32)
    if rgb.shape[:2] != ink.shape:
        rgb = cv2.resize(rgb, (ink.shape[1], ink.shape[0]), interpolation=cv2.INTER_LINEAR)
    rgb = np.clip(rgb, 0.0, 1.0)
    return rgb, compose(rgb, ink)


def flat_fill(ink: np.ndarray, hints: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Bucket fill of line-enclosed regions from the hints, at full resolution; unhinted regions stay white."""
    if hints is None or not (hints[..., 3] > 0).any():
        return no_colour(ink)
    line, _ = split_line_and_tone(ink)
    labels, _ = line_regions(line)
    hint_rgb, hint_mask = resample_hints(hints, ink.shape)
    prop_rgb, prop_mask = propagate_hints(labels, hint_rgb, hint_mask)
    colour = np.where(prop_mask[..., None], prop_rgb, 1.0).astype(np.float32)
    return colour, compose(colour, ink)


METHODS = {
    "none": no_colour,
    "levin": levin_colour,
    "flatfill": flat_fill,
}
