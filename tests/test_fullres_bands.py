"""Full-resolution stages in bands (issue 14: bounded memory) give what the whole-page formulas
gave, and a running colorization stops inside its long loops when cancelled.

The `old_*` functions are the whole-page formulas the banded code replaced, kept here verbatim
as the reference (the balloons found as one mask and labelled, as they were). Bands are made tiny
(`BAND_PIXELS`) so small pages cross many band borders."""

import cv2
import numpy as np
import pytest

from backend import pipeline, restore, structure
from backend.balloons import Balloon, find_balloons, white_balloons
from backend.inputs import GLOBAL_SIZE, page_inputs
from backend.pipeline import Cancelled, cancel_checkpoint
from backend.request import ColorizeOptions, ColorizeRequest, multiply


@pytest.fixture(autouse=True)
def tiny_bands(monkeypatch):
    monkeypatch.setattr(structure, "BAND_PIXELS", 997)  # not a divisor of anything below


# --- the whole-page formulas, as they were -------------------------------------------------


def old_split_line_and_tone(ink):
    dark = structure.ink_mask(ink).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    min_area = max(4, int(round(structure.TONE_BLOB_AREA_AT_2000 * (max(ink.shape) / 2000.0) ** 2)))
    is_line = stats[:, cv2.CC_STAT_AREA] >= min_area
    is_line[0] = False
    line = is_line[labels]
    return line, dark.astype(bool) & ~line


def old_resize_area(img, shape):
    if img.shape[:2] == tuple(shape):
        return img.astype(np.float32, copy=True)
    return cv2.resize(img.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def old_resample_hints(hints_rgba, shape):
    mask = (hints_rgba[..., 3] > 0).astype(np.float32)
    rgb = hints_rgba[..., :3].astype(np.float32) / 255.0
    if hints_rgba.shape[:2] != tuple(shape):
        weight = old_resize_area(mask, shape)
        summed = old_resize_area(rgb * mask[..., None], shape)
        out_mask = weight > 1e-6
        out_rgb = np.where(out_mask[..., None], summed / np.maximum(weight, 1e-6)[..., None], 0.0)
        return out_rgb.astype(np.float32), out_mask
    return rgb * mask[..., None], mask > 0


def old_restore(color_work, line_full, options):
    h, w = line_full.shape
    up = cv2.resize(color_work, (w, h), interpolation=cv2.INTER_LINEAR)
    if options.flat_regions > 0:
        labels, n = structure.line_regions(line_full)
        area = np.bincount(labels.ravel(), minlength=n).astype(np.float64)
        flat_weight = np.where(area < restore.MAX_FLAT_REGION_SHARE * labels.size, options.flat_regions, 0.0).astype(np.float32)
        flat_weight[0] = 0.0
        means = np.stack(
            [np.bincount(labels.ravel(), weights=up[..., c].ravel(), minlength=n) for c in range(3)], -1
        ) / np.maximum(area, 1.0)[:, None]
        flat = means.astype(np.float32)[labels]
        flat -= up
        flat *= flat_weight[labels][..., None]
        up += flat
    return np.clip(up, 0.0, 1.0, out=up)


def balloon_mask(balloons, shape):
    out = np.zeros(shape, bool)
    for b in balloons:
        out[b.rows, b.cols] |= b.filled
    return out


def old_white_balloons(color_full, ink, tone, hints, balloons=None):
    balloons = balloon_mask(find_balloons(ink, tone) if balloons is None else balloons, ink.shape)
    if not balloons.any():
        return color_full
    n, labels = cv2.connectedComponents(balloons.astype(np.uint8), connectivity=8)
    keep_colour = np.zeros(n, bool)
    if hints is not None:
        keep_colour[np.unique(labels[(hints[..., 3] > 0) & balloons])] = True
    keep_colour[0] = True
    color_full[~keep_colour[labels]] = 1.0
    return color_full


def old_snap_white(rgb):
    q = np.clip(rgb * 64.0, 0, 63).astype(np.int32)
    idx = (q[..., 0] << 12) | (q[..., 1] << 6) | q[..., 2]
    out = rgb.copy()
    out[restore._NEAR_WHITE[idx]] = 1.0
    return out


def old_compose(color_rgb, ink):
    layer_rgb = np.clip(color_rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    alpha = np.full(ink.shape + (1,), 255, np.uint8)
    composite = layer_rgb.astype(np.float32)
    composite *= ink[..., None]
    composite += 0.5
    composite = np.clip(composite, 0, 255, out=composite).astype(np.uint8)
    return np.concatenate([layer_rgb, alpha], -1), composite


# --- a small page with lines, screentone, a lettered balloon and a hinted balloon ------------


def page(h=301, w=233, seed=0):
    rng = np.random.default_rng(seed)
    ink = np.ones((h, w), np.float32)
    ink[:3], ink[-3:], ink[:, :3], ink[:, -3:] = 0, 0, 0, 0
    ink[h // 2 : h // 2 + 2] = 0.2
    ink[:, w // 3] = 0.0
    ink[h // 2 + 10 :: 5, w // 3 + 5 :: 5] = 0.1  # screentone dots
    ink[h // 2 + 10 :, : w // 4] = rng.random((h - h // 2 - 10, w // 4), dtype=np.float32)  # gray noise
    for cx in (w // 3 + 50, w // 3 + 110):  # two balloons with "lettering"
        cv2.ellipse(ink, (cx, 60), (28, 40), 0, 0, 360, 0.0, 2)
        for i in range(3):
            for j in range(2):
                cv2.rectangle(ink, (cx - 14 + 10 * j, 40 + 13 * i), (cx - 9 + 10 * j, 47 + 13 * i), 0.0, -1)
    hints = np.zeros((h, w, 4), np.uint8)
    hints[60:63, w // 3 + 110 : w // 3 + 113] = (30, 200, 40, 255)  # inside the second balloon
    hints[200:205, 20:24] = (200, 30, 40, 255)
    hints[20, 20] = (5, 6, 250, 128)
    return ink, hints


SHAPES = [(301, 233, 30, 23), (300, 240, 30, 24), (300, 240, 31, 24), (300, 240, 30, 25), (257, 199, 100, 77), (240, 300, 24, 30), (301, 233, 301, 233)]


@pytest.mark.parametrize("big_h,big_w,h,w", SHAPES)
def test_resize_area_in_bands_is_bit_identical(big_h, big_w, h, w):
    rng = np.random.default_rng(big_h * w)
    for img in (rng.random((big_h, big_w), dtype=np.float32), rng.random((big_h, big_w)) < 0.3,
                rng.integers(0, 255, (big_h, big_w, 3), dtype=np.uint8)):  # fmt: skip
        assert np.array_equal(structure.resize_area(img, (h, w)), old_resize_area(img, (h, w)))


def test_resample_hints_in_bands_is_bit_identical():
    _, hints = page()
    for shape in ((30, 23), (100, 77), (301, 233)):
        rgb, mask = structure.resample_hints(hints, shape)
        old_rgb, old_mask = old_resample_hints(hints, shape)
        assert np.array_equal(rgb, old_rgb) and np.array_equal(mask, old_mask)


def test_split_and_analyse_are_bit_identical():
    ink, _ = page()
    line, tone = structure.split_line_and_tone(ink)
    old_line, old_tone = old_split_line_and_tone(ink)
    assert np.array_equal(line, old_line) and np.array_equal(tone, old_tone)
    new = structure.analyse_page(ink, 64, (line, tone))
    shape = structure.working_shape(ink.shape, 64)
    assert np.array_equal(new.ink, old_resize_area(ink, shape))
    assert np.array_equal(new.line, old_resize_area(old_line.astype(np.float32), shape) >= structure.LINE_COVERAGE_WALL)
    assert np.array_equal(new.tone, cv2.blur(old_resize_area(old_tone.astype(np.float32), shape), (5, 5)))


@pytest.mark.parametrize("shape", [(301, 233), (300, 240), (64, 64), (1, 5000), (5000, 1)])
def test_upsample_rows_is_opencvs_resize(shape):
    rng = np.random.default_rng(1)
    work = rng.random((max(1, shape[0] // 7), max(1, shape[1] // 9), 3), dtype=np.float32)
    whole = cv2.resize(work, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR).reshape(shape + (3,))
    bands = np.concatenate([restore.upsample_rows(work, shape, y, min(y + 17, shape[0])) for y in range(0, shape[0], 17)])
    np.testing.assert_allclose(bands, whole, rtol=0, atol=1e-5)


@pytest.mark.parametrize("flat", [0.0, 0.6, 1.0])
def test_restore_in_bands_matches_the_whole_page_formula(flat):
    ink, _ = page()
    line, _ = structure.split_line_and_tone(ink)
    work = np.random.default_rng(2).random((30, 23, 3), dtype=np.float32)
    opts = ColorizeOptions(flat_regions=flat)
    bands = np.concatenate([rgb for _, rgb in restore.restore_bands(work, line, opts)])
    np.testing.assert_allclose(bands, old_restore(work, line, opts), rtol=0, atol=1e-5)


def test_snap_white_and_compose_are_bit_identical():
    rng = np.random.default_rng(3)
    rgb = np.clip(rng.normal(0.9, 0.15, (301, 233, 3)), 0, 1).astype(np.float32)
    ink, _ = page()
    no_lines = np.zeros(ink.shape, bool)
    for keep_white in (True, False):
        layer = restore.colour_layer(rgb, no_lines, ColorizeOptions(flat_regions=0.0, keep_white=keep_white))
        old_layer, old_comp = old_compose(old_snap_white(rgb) if keep_white else rgb, ink)
        assert np.array_equal(layer, old_layer)
        assert np.array_equal(multiply(layer, ink), old_comp)


def test_white_balloons_as_before():
    ink, hints = page()
    line, tone = structure.split_line_and_tone(ink)
    balloons = find_balloons(ink, tone)
    assert len(balloons) == 2 and balloon_mask(balloons, ink.shape).sum() > 1000  # the page does have balloons
    rgb = np.random.default_rng(4).random(ink.shape + (3,), dtype=np.float32)
    for h in (hints, None):
        new = rgb.copy()
        new[white_balloons(balloons, h, ink.shape)] = 1.0
        assert np.array_equal(new, old_white_balloons(rgb.copy(), ink, tone, h))


def test_joined_balloons_keep_colour_together_as_before():
    """Balloons that touch (8-connected) or overlap were one balloon to the old labelling: a hint
    in one keeps them all in colour."""
    shape = (40, 60)

    def box(y0, x0, h, w):
        return Balloon(rows=slice(y0, y0 + h), cols=slice(x0, x0 + w), filled=np.ones((h, w), bool))

    balloons = [box(2, 2, 5, 5), box(7, 7, 4, 4), box(20, 20, 6, 6), box(22, 24, 6, 8), box(2, 40, 5, 5), box(2, 46, 5, 5)]
    # 0 and 1 touch at a corner; 2 and 3 overlap; 4 and 5 are one pixel apart: three groups and two loners
    rgb = np.random.default_rng(5).random(shape + (3,), dtype=np.float32)
    for spot in ((3, 3), (9, 9), (21, 21), (27, 30), (3, 41), (3, 47), (35, 5)):
        hints = np.zeros(shape + (4,), np.uint8)
        hints[spot] = (200, 40, 40, 255)
        new = rgb.copy()
        new[white_balloons(balloons, hints, shape)] = 1.0
        assert np.array_equal(new, old_white_balloons(rgb.copy(), np.ones(shape, np.float32), None, hints, balloons))


def test_colorize_full_resolution_matches_the_old_formulas(monkeypatch):
    """The banded tail of colorize against restore -> white_balloons -> snap_white -> compose
    as they were, from the same working-resolution colour: at most 1/255 apart."""
    ink, hints = page()
    seen = {}
    real = restore.restore_bands

    def spy(color_work, line_full, options, checkpoint=None, regions=None):
        seen["work"], seen["line"] = color_work.copy(), line_full.copy()
        return real(color_work, line_full, options, checkpoint, regions)

    monkeypatch.setattr(restore, "restore_bands", spy)
    for keep_white in (True, False):
        opts = ColorizeOptions(working_size=96, keep_white=keep_white)
        res = pipeline.colorize(ColorizeRequest(ink=ink, hints=hints, options=opts))
        colour = old_restore(seen["work"], seen["line"], opts)
        if keep_white:
            colour = old_snap_white(old_white_balloons(colour, ink, old_split_line_and_tone(ink)[1], hints))
        layer, comp = old_compose(colour, ink)
        assert np.abs(res.color_layer.astype(int) - layer).max() <= 1
        assert np.abs(res.composite.astype(int) - comp).max() <= 1
        assert (res.color_layer != layer).mean() < 0.001


def test_a_one_pixel_page_has_finite_region_maps():
    area, border = structure.region_maps(structure.Regions(*structure.line_regions(np.zeros((1, 1), bool))))
    assert np.isfinite(area).all() and np.isfinite(border).all()


# --- cancel inside the long loops ---------------------------------------------------------


class Flag:
    def __init__(self):
        self.on = False
        self.calls_after = 0

    def __call__(self) -> bool:
        if self.on:
            self.calls_after += 1
        return self.on


def _frames(exc: BaseException) -> list[str]:
    tb, names = exc.__traceback__, []
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return names


def test_cancel_stops_inside_the_network():
    """Cancelled as the network stage begins: the first layer's check raises, long before the
    forward pass ends."""
    ink, hints = page()
    flag = Flag()

    def progress(fraction, stage):
        if stage == "analyse":
            flag.on = True

    with pytest.raises(Cancelled) as caught:
        pipeline.colorize(ColorizeRequest(ink=ink, hints=hints, options=ColorizeOptions(working_size=96)), progress=progress, cancelled=flag)
    assert "_check_before_layer" in _frames(caught.value)
    assert flag.calls_after == 1


def test_cancel_stops_between_tiles_and_layers():
    model = pipeline.get_model("cpu")
    ink, hints = page()
    pg = structure.analyse_page(ink, 96)
    x, _ = page_inputs(pg, *structure.resample_hints(hints, pg.shape))
    g = np.zeros(GLOBAL_SIZE, np.float32)
    calls = []

    def checkpoint():
        calls.append(1)
        if len(calls) > 3:
            raise Cancelled()

    with pytest.raises(Cancelled):
        pipeline.run_network(model, x, g, tile=48, checkpoint=checkpoint)
    assert len(calls) == 4
    # no checkpoint: no hook fires, and a later run without one is not stopped by a stale one
    assert pipeline.run_network(model, x, g).shape == pg.shape + (3,)
    assert getattr(pipeline._layer_checks, "checkpoint", None) is None


def test_cancel_stops_between_restore_bands_and_balloon_candidates():
    ink, hints = page()
    line, tone = structure.split_line_and_tone(ink)
    work = np.zeros((30, 23, 3), np.float32)
    calls = []

    def checkpoint():
        calls.append(1)
        if len(calls) == 5:
            raise Cancelled()

    with pytest.raises(Cancelled):
        list(restore.restore_bands(work, line, ColorizeOptions(), checkpoint))
    assert len(calls) == 5  # stopped after 5 of its many bands
    calls.clear()
    with pytest.raises(Cancelled):
        find_balloons(np.tile(ink, (3, 3)), np.tile(tone, (3, 3)), checkpoint)
    assert cancel_checkpoint(None) is None
    with pytest.raises(Cancelled):
        cancel_checkpoint(lambda: True)()
