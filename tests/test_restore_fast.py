"""The restoration's fast paths (issue 15) give the bytes of the straightforward formulas."""

import numpy as np

from backend import restore
from backend.request import ColorizeOptions


def old_colour_layer(color_work, line_full, options, white=None):
    h, w = line_full.shape
    layer = np.empty((h, w, 4), np.uint8)
    layer[..., 3] = 255
    for rows, rgb in restore.restore_bands(color_work, line_full, options):
        if white is not None:
            rgb[white[rows]] = 1.0
        if options.keep_white:
            restore.snap_white_into(rgb)
        rgb *= 255.0
        rgb += 0.5
        np.clip(rgb, 0, 255, out=rgb)
        layer[rows, :, :3] = rgb
    return layer


def test_near_white_bytes_is_snap_white():
    rng = np.random.default_rng(0)
    rgb = rng.random((300, 200, 3)).astype(np.float32) ** 0.1  # mostly light
    rgb[:10] = (np.arange(64, dtype=np.float32) / 64.0).repeat(4)[None, :200, None]  # exact level edges
    rgb[10:20] = 1.0
    rgb[20:30] = 0.0
    snapped = rgb.copy()
    restore.snap_white_into(snapped)
    np.testing.assert_array_equal(restore.near_white_bytes(rgb) == 255, (snapped == 1.0).all(-1))


def test_colour_layer_matches_the_plain_formulas():
    rng = np.random.default_rng(1)
    line = np.zeros((400, 300), bool)
    line[::37] = True
    line[:, ::23] = True
    work = rng.random((40, 30, 3)).astype(np.float32) ** 0.3
    white = np.zeros(line.shape, bool)
    white[100:150, 50:120] = True
    for opts in (ColorizeOptions(), ColorizeOptions(flat_regions=0.0), ColorizeOptions(keep_white=False, flat_regions=1.0)):
        for wh in (None, white):
            np.testing.assert_array_equal(restore.colour_layer(work, line, opts, wh), old_colour_layer(work, line, opts, wh))
