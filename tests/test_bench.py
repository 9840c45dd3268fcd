"""The bench: its metrics and baselines on hand-made images, and a quick run end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from backend.bench import baselines, metrics
from backend.bench.data import DEFAULT_DATA, palette_hints, reference_view, seed_of

REPO = Path(__file__).resolve().parents[1]


def _page(h: int = 64, w: int = 96) -> np.ndarray:
    """A white page split in two regions by a vertical black line, with a frame."""
    ink = np.ones((h, w), np.float32)
    ink[:, w // 2 - 1 : w // 2 + 1] = 0.0
    ink[0, :] = ink[-1, :] = 0.0
    ink[:, 0] = ink[:, -1] = 0.0
    return ink


def _hint(h: int, w: int, dots: list[tuple[int, int, tuple[int, int, int]]]) -> np.ndarray:
    layer = np.zeros((h, w, 4), np.uint8)
    for y, x, c in dots:
        layer[y - 1 : y + 2, x - 1 : x + 2, :3] = c
        layer[y - 1 : y + 2, x - 1 : x + 2, 3] = 255
    return layer


RED, BLUE = (220, 30, 30), (30, 60, 220)


# ----------------------------------------------------------------------------- metrics


def test_colourfulness_of_gray_is_zero_and_of_colour_positive():
    gray = np.full((32, 32, 3), 128, np.uint8)
    gray[:16] = 30
    assert metrics.colourfulness(gray) == pytest.approx(0.0, abs=1e-9)
    colour = np.zeros((32, 32, 3), np.uint8)
    colour[:16] = RED
    colour[16:] = BLUE
    assert metrics.colourfulness(colour) > 50
    assert metrics.colourfulness_ratio(colour, colour) == pytest.approx(1.0)
    assert metrics.colourfulness_ratio(gray, colour) == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(metrics.colourfulness_ratio(colour, gray))  # gray truth: undefined, not infinite


def test_histogram_intersection_identical_is_one_disjoint_is_zero():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    assert metrics.palette_fidelity(img, img) == pytest.approx(1.0, abs=1e-6)
    assert metrics.palette_fidelity(img, img[::-1, ::-1]) == pytest.approx(1.0, abs=1e-6)  # proportions only
    red = np.zeros((8, 8, 3), np.uint8)
    red[:] = RED
    blue = np.zeros((8, 8, 3), np.uint8)
    blue[:] = BLUE
    assert metrics.palette_fidelity(red, blue) == pytest.approx(0.0)


def test_ink_preservation_copy_is_one_and_painted_lines_are_caught():
    ink = _page()
    copy = metrics.ink_to_rgb(ink)
    assert metrics.ink_preservation(copy, ink) == 1.0
    painted = copy.copy()
    painted[:, : ink.shape[1] // 2] = 255  # left half (with its lines) painted over
    assert 0.3 < metrics.ink_preservation(painted, ink) < 0.7
    # Multiply never lightens ink, whatever the colour.
    colour = np.ones(ink.shape + (3,), np.float32)
    assert metrics.ink_preservation(baselines.compose(colour, ink), ink) == 1.0
    assert math.isnan(metrics.ink_preservation(copy, np.ones_like(ink)))


def test_delta_e_identical_zero_and_masked_mean_exact():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    assert metrics.mean_delta_e(a, a) == pytest.approx(0.0, abs=1e-9)
    b = a.copy()
    b[:10] = 255 - b[:10]
    mask = np.zeros((30, 30), bool)
    mask[:10, :5] = True
    from backend import color

    direct = color.ciede2000(color.rgb_to_lab(a[mask] / 255.0), color.rgb_to_lab(b[mask] / 255.0)).mean()
    assert metrics.mean_delta_e(a, b, mask) == pytest.approx(direct, rel=1e-9)
    assert math.isnan(metrics.mean_delta_e(a, b, np.zeros((30, 30), bool)))


def test_delta_e_non_ink_ignores_ink_pixels():
    ink = _page()
    gt = np.full(ink.shape + (3,), 200, np.uint8)
    out = gt.copy()
    out[ink < 0.5] = (255, 0, 255)  # wrong colour only under the ink
    assert metrics.delta_e_non_ink(out, gt, ink) == pytest.approx(0.0, abs=1e-9)


def test_hint_adherence():
    ink = _page()
    hints = _hint(*ink.shape, [(20, 20, RED)])
    out = np.full(ink.shape + (3,), 255, np.uint8)
    assert metrics.hint_adherence(out, hints) > 20
    out[19:22, 19:22] = RED
    assert metrics.hint_adherence(out, hints) == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(metrics.hint_adherence(out, None))
    assert math.isnan(metrics.hint_adherence(out, np.zeros(ink.shape + (4,), np.uint8)))


def _balloon_page() -> tuple[np.ndarray, np.ndarray]:
    """A 600x400 page: a framed panel with hatching and one oval balloon holding 'text' dots."""
    import cv2

    ink = np.ones((600, 400), np.float32)
    ink[300::6, :] = 0.0  # hatching in the lower half (not paper)
    cv2.rectangle(ink, (0, 0), (399, 599), 0.0, 3)
    balloon = np.zeros((600, 400), np.uint8)
    cv2.ellipse(balloon, (150, 120), (70, 40), 0, 0, 360, 1, -1)
    ink[balloon > 0] = 1.0
    cv2.ellipse(ink, (150, 120), (70, 40), 0, 0, 360, 0.0, 2)
    for i in range(6):  # lettering
        cv2.rectangle(ink, (110 + 14 * i, 112), (116 + 14 * i, 126), 0.0, -1)
    return ink, balloon > 0


def test_balloon_mask_finds_a_lettered_balloon_and_preservation():
    ink, balloon = _balloon_page()
    mask = metrics.balloon_mask(ink)
    assert mask.sum() > 0.8 * (balloon & (ink > 0.8)).sum()
    assert not (mask & ~balloon).any()
    page = metrics.ink_to_rgb(ink)
    assert metrics.balloon_preservation(page, ink, mask) == 1.0
    tinted = page.copy()
    tinted[mask] = (255, 180, 180)
    assert metrics.balloon_preservation(tinted, ink, mask) == 0.0
    # Without lettering the same white oval is not a balloon.
    blank = ink.copy()
    blank[balloon] = np.maximum(blank[balloon], 1.0)
    import cv2

    cv2.ellipse(blank, (150, 120), (70, 40), 0, 0, 360, 0.0, 2)
    assert metrics.balloon_mask(blank).sum() == 0
    assert math.isnan(metrics.balloon_preservation(page, ink, np.zeros_like(mask)))


def test_white_regions_are_large_paper_areas():
    ink, balloon = _balloon_page()
    white = metrics.white_regions(ink)
    assert white[50, 50]  # the open paper of the upper half
    assert white[120, 200]  # the balloon's inside
    assert not white[ink < 0.5].any()
    small = ink.copy()
    small[20:36, 20:36] = 0.0
    small[24:32, 24:32] = 1.0  # an 8x8 white island: 0.03 % of the page, not a large area
    assert not metrics.white_regions(small)[28, 28]
    assert metrics.white_regions(small)[60, 60]


def test_shift_consistency_of_a_shift_invariant_method_is_zero():
    rng = np.random.default_rng(3)
    ink = _page(80, 80)
    colour = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    shifted = metrics.shift_page(colour, 16, 255)
    assert metrics.shift_consistency(colour, shifted, ink, 16) == pytest.approx(0.0, abs=1e-9)
    assert metrics.shift_consistency(colour, colour, ink, 16) > 1.0


# ----------------------------------------------------------------------------- baselines


def test_levin_colours_each_region_with_its_hint():
    ink = _page()
    h, w = ink.shape
    hints = _hint(h, w, [(32, 20, RED), (32, 75, BLUE)])
    colour, composite = baselines.levin_colour(ink, hints, size=128)
    assert composite.shape == (h, w, 3) and composite.dtype == np.uint8
    left, right = composite[5:-5, 5 : w // 2 - 4], composite[5:-5, w // 2 + 4 : -5]
    assert metrics.mean_delta_e(left, np.broadcast_to(np.array(RED, np.uint8), left.shape).copy()) < 3.0
    assert metrics.mean_delta_e(right, np.broadcast_to(np.array(BLUE, np.uint8), right.shape).copy()) < 3.0
    # Lines stay black under Multiply.
    assert metrics.ink_preservation(composite, ink) == 1.0


def test_levin_at_reduced_resolution_still_separates_regions():
    ink = _page(200, 300)
    hints = _hint(200, 300, [(100, 60, RED), (100, 240, BLUE)])
    _, composite = baselines.levin_colour(ink, hints, size=100)
    assert composite[100, 40, 0] > 150 and composite[100, 40, 2] < 100
    assert composite[100, 260, 2] > 150 and composite[100, 260, 0] < 100


def test_levin_classic_keeps_the_page_luminance():
    ink = _page()
    hints = _hint(*ink.shape, [(32, 20, RED), (32, 75, BLUE)])
    rgb, composite = baselines.levin_colour(ink, hints, size=128, keep_luma=True)
    assert metrics.ink_preservation(composite, ink) == 1.0  # lines stay dark (tinted: Y is kept, not RGB)
    assert rgb[32, 20, 0] > rgb[32, 20, 2]  # left tinted red, right blue, but pale on white paper
    assert rgb[32, 75, 2] > rgb[32, 75, 0]


def test_no_hints_levin_and_flat_fill_equal_no_colour():
    ink = _page()
    none = baselines.no_colour(ink)[1]
    assert np.array_equal(none, metrics.ink_to_rgb(ink))
    assert np.array_equal(baselines.levin_colour(ink, None)[1], none)
    assert np.array_equal(baselines.flat_fill(ink, None)[1], none)
    empty = np.zeros(ink.shape + (4,), np.uint8)
    assert np.array_equal(baselines.flat_fill(ink, empty)[1], none)


def test_flat_fill_fills_hinted_region_only():
    ink = _page()
    h, w = ink.shape
    hints = _hint(h, w, [(32, 20, RED)])
    colour, composite = baselines.flat_fill(ink, hints)
    assert tuple(composite[10, 10]) == RED and tuple(composite[50, 40]) == RED
    assert tuple(composite[32, 75]) == (255, 255, 255)  # the other region stays white
    assert metrics.ink_preservation(composite, ink) == 1.0


# ----------------------------------------------------------------------------- data helpers


def test_reference_view_is_deterministic_and_different():
    rng = np.random.default_rng(4)
    gt = rng.integers(0, 256, (100, 80, 3), dtype=np.uint8)
    a = reference_view(gt, np.random.default_rng(seed_of("x", 2)))
    b = reference_view(gt, np.random.default_rng(seed_of("x", 2)))
    assert np.array_equal(a, b)
    assert a.shape != gt.shape


def test_palette_hints_avoid_ink_and_balloons():
    ink, balloon = _balloon_page()
    layer = palette_hints(ink, balloon, 30, np.random.default_rng(0))
    hinted = layer[..., 3] > 0
    assert hinted.any()
    assert not (hinted & balloon).any()
    assert (ink[hinted] > 0.75).all()


# ----------------------------------------------------------------------------- end to end

DATA = DEFAULT_DATA


@pytest.mark.skipif(not DATA.is_dir(), reason=f"bench data not found at {DATA} (../shared/data)")
def test_quick_bench_writes_every_metric_for_every_method_and_condition(tmp_path):
    from backend.bench import main
    from backend.bench.runner import GT_METRICS, REAL_METRICS

    out = tmp_path / "bench"
    rc = main(["--quick", "--cases", "2", "--out", str(out), "--quiet"])
    assert rc == 0
    data = json.loads((out / "bench.json").read_text())
    methods = ["ours", "levin", "flatfill", "none"]
    assert sorted(data["methods"]) == sorted(methods)
    assert "krita" in data["skipped"] or "krita" in data["methods"]
    # --quick: the asked-for current cases plus one case of the extended set (a DiceBear avatar).
    assert data["testset"]["n_cases"] == 3 and data["testset"]["n_real_pages"] == 1
    assert data["testset"]["sets"] == {"current": 2, "extended": 1}
    assert data["skipped"]["krita"].startswith("skipped")  # --quick leaves Krita off unless asked
    assert set(data["aggregate_by_set"]) == {"current", "extended"}
    assert data["bars"]["all"]["ink_min"]["value"] == pytest.approx(1.0)
    for set_name, names in (("gt", GT_METRICS), ("real", REAL_METRICS)):
        agg = data["aggregate"][set_name]
        conditions = data["conditions"][set_name]
        assert conditions
        for m in methods:
            for cond in conditions:
                stats = agg[m][cond]
                for metric in names:
                    assert metric in stats, (set_name, m, cond, metric)
                    st = stats[metric]
                    undefined = metric == "hint_adherence" and cond.startswith("k0")
                    if undefined and st["n"] == 0:
                        assert st["mean"] is None
                        continue
                    assert st["n"] >= 1 and math.isfinite(st["mean"]), (set_name, m, cond, metric, st)
        # Per-case rows hold the same keys.
        for case_id, row in data["per_case"][set_name].items():
            for m in methods:
                for cond in conditions:
                    assert set(names) <= set(row[m][cond]), (case_id, m, cond)
    gt = data["aggregate"]["gt"]
    # Sanity of the instrument itself.
    assert gt["none"]["k0"]["colourfulness_ratio"]["mean"] == pytest.approx(0.0, abs=1e-6)
    for m in methods:
        assert gt[m]["k16"]["ink_preservation"]["mean"] == pytest.approx(1.0)
        assert gt[m]["k16"]["seconds"]["mean"] > 0
    assert gt["levin"]["k0"]["delta_e"]["mean"] == pytest.approx(gt["none"]["k0"]["delta_e"]["mean"])
    assert gt["flatfill"]["k0"]["delta_e"]["mean"] == pytest.approx(gt["none"]["k0"]["delta_e"]["mean"])
    assert gt["flatfill"]["k64"]["delta_e"]["mean"] < gt["none"]["k64"]["delta_e"]["mean"]
    assert data["aggregate"]["real"]["none"]["k0"]["shift_consistency"]["mean"] == pytest.approx(0.0, abs=1e-9)
    for name in ("bench_contact.png", "bench_de_vs_hints.png", "bench_converter_vs_real.png"):
        assert (out / name).stat().st_size > 1000, name
    # Paired differences ours - baseline for every baseline and condition.
    for m in ("levin", "flatfill", "none"):
        for cond in data["conditions"]["gt"]:
            st = data["paired_delta_e"][m][cond]
            assert st["n"] == 3 and math.isfinite(st["mean"]) and 0.0 <= st["better_share"] <= 1.0
    # A saved run re-renders without running anything.
    (out / "tables.md").unlink()
    assert main(["--from-json", str(out / "bench.json")]) == 0
    assert "| MangaColor | k16 |" in (out / "tables.md").read_text()


def test_paired_differences():
    from backend.bench.runner import paired

    per_case = {
        "a": {"ours": {"k0": {"delta_e": 1.0}}, "none": {"k0": {"delta_e": 3.0}}},
        "b": {"ours": {"k0": {"delta_e": 2.0}}, "none": {"k0": {"delta_e": 1.0}}},
        "c": {"ours": {"k0": {"delta_e": float("nan")}}, "none": {"k0": {"delta_e": 1.0}}},
    }
    st = paired(per_case)["none"]["k0"]
    assert st["n"] == 2 and st["mean"] == pytest.approx(-0.5) and st["better_share"] == pytest.approx(0.5)
    assert st["sem"] == pytest.approx(1.5)


@pytest.mark.skipif(not DATA.is_dir(), reason=f"bench data not found at {DATA} (../shared/data)")
def test_testset_build_is_deterministic(tmp_path):
    from backend.bench.data import TestSet

    a = TestSet(cache=tmp_path / "a", log=lambda *x: None).cases(1, ("openclipart",))[0]
    b = TestSet(cache=tmp_path / "b", log=lambda *x: None).cases(1, ("openclipart",))[0]
    c = TestSet(cache=tmp_path / "a", log=lambda *x: None).cases(1, ("openclipart",))[0]  # from the cache
    assert a.id == b.id == c.id
    for x in (b, c):
        assert np.array_equal(a.ink, x.ink) and np.array_equal(a.gt, x.gt) and np.array_equal(a.ref, x.ref)
        assert sorted(a.hints) == sorted(x.hints) == [16, 64]
        for k in a.hints:
            assert np.array_equal(a.hints[k], x.hints[k])
    assert a.ink.dtype == np.float32 and a.ink.shape == a.gt.shape[:2]
    assert (a.hints[64][..., 3] > 0).sum() > (a.hints[16][..., 3] > 0).sum() > 0



# ----------------------------------------------------------------------------- issue 10: colorist hints, extended set, Krita


def _figure_page(h: int = 240, w: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """A white page with a figure: a red disc and a blue box, outlined in black (ground truth, ink)."""
    import cv2

    gt = np.full((h, w, 3), 255, np.uint8)
    cv2.circle(gt, (100, 80), 50, (220, 40, 40), -1)
    cv2.rectangle(gt, (60, 140), (140, 220), (40, 60, 200), -1)
    ink = np.ones((h, w), np.float32)
    cv2.circle(ink, (100, 80), 50, 0.0, 2)
    cv2.rectangle(ink, (60, 140), (140, 220), 0.0, 2)
    gt[ink < 0.5] = 0
    return gt, ink


def _shapes(layer: np.ndarray) -> dict[str, int]:
    """Count the hint marks of a layer by shape: 1-px dots, filled squares, strokes (elongated)."""
    import cv2

    mask = (layer[..., 3] > 0).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    out = {"dot": 0, "square": 0, "stroke": 0, "other": 0}
    for i in range(1, n):
        _, _, bw, bh, area = stats[i]
        if area == 1:
            out["dot"] += 1
        elif bw == bh and area == bw * bh and 2 <= bw <= 5:
            out["square"] += 1
        elif max(bw, bh) >= 4:
            out["stroke"] += 1
        else:
            out["other"] += 1
    return out


def test_colorist_hints_mix_dots_squares_strokes_of_the_true_colour():
    from backend.hints import colorist_hints, figure_and_background

    gt, ink = _figure_page()
    layer = colorist_hints(gt, ink, 64, np.random.default_rng(7))
    assert layer.shape == gt.shape[:2] + (4,) and layer.dtype == np.uint8
    hinted = layer[..., 3] > 0
    shapes = _shapes(layer)
    assert shapes["dot"] >= 5 and shapes["square"] >= 5 and shapes["stroke"] >= 5, shapes
    assert (ink[hinted] > 0.75).all()  # never on a line
    assert np.array_equal(layer[hinted][:, :3], gt[hinted])  # the true local colour (flat fills here)
    # Deterministic for a given generator state, different for another.
    assert np.array_equal(layer, colorist_hints(gt, ink, 64, np.random.default_rng(7)))
    assert not np.array_equal(layer, colorist_hints(gt, ink, 64, np.random.default_rng(8)))
    assert not colorist_hints(gt, ink, 0, np.random.default_rng(7))[..., 3].any()
    figure, background = figure_and_background(gt, ink)
    assert figure[80, 100] and background[5, 5] and not background[80, 100]


def test_colorist_hints_put_about_a_tenth_on_the_white_background():
    import cv2
    from backend.hints import colorist_hints, figure_and_background

    gt, ink = _figure_page(400, 400)
    figure, background = figure_and_background(gt, ink)
    on_bg = total = 0
    for seed in range(6):
        layer = colorist_hints(gt, ink, 64, np.random.default_rng(seed))
        n, lab = cv2.connectedComponents((layer[..., 3] > 0).astype(np.uint8), connectivity=8)
        for i in range(1, n):
            ys, xs = np.nonzero(lab == i)
            total += 1
            if background[ys[0], xs[0]]:
                on_bg += 1
                assert (layer[ys, xs, :3] == 255).all()  # white paper gets a white hint
    assert 0.04 <= on_bg / total <= 0.2, (on_bg, total)
    # Without background hints every mark is on the figure.
    layer = colorist_hints(gt, ink, 64, np.random.default_rng(0), background_share=0.0)
    assert not (layer[..., 3] > 0)[background].any()
    # A page with no figure candidates gives its hints to the background, and vice versa.
    blank = np.full_like(gt, 255)
    assert (colorist_hints(blank, np.ones_like(ink), 8, np.random.default_rng(0))[..., 3] > 0).any()


def test_sample_hints_is_unchanged_by_the_colorist_sampler():
    """The current set's sampler keeps its behaviour: same draws as before (1-3 px squares only)."""
    from backend.hints import sample_hints

    gt, ink = _figure_page()
    layer = sample_hints(gt, ink, 16, np.random.default_rng(3))
    shapes = _shapes(layer)
    assert shapes["stroke"] == 0 and sum(shapes.values()) >= 10
    assert np.array_equal(layer, sample_hints(gt, ink, 16, np.random.default_rng(3)))


def test_fills_whitened_keeps_outlines_and_solid_black():
    from backend.bench.data import _fills_whitened

    gt, ink = _figure_page()
    gt[10:30, 10:30] = (20, 20, 20)  # black hair stays black
    lines = _fills_whitened(gt)
    assert lines.dtype == np.float32 and lines.shape == ink.shape
    assert (lines[ink < 0.5] < 0.5).all()
    assert lines[80, 100] == 1.0 and lines[180, 100] == 1.0  # saturated red and blue fills turn white
    assert (lines[12:28, 12:28] == 0.0).all()


def test_extended_case_builders_on_synthetic_pictures():
    from backend.bench.data import FIGURE_HEIGHT, FIGURE_PAGE_HEIGHT, MAX_SIDE, build_extended_case

    gt, ink = _figure_page()
    line = np.clip(ink * 255, 0, 255).astype(np.uint8)
    # Real line art: the page is the line art as it is.
    c = build_extended_case("comicgen/test", "comicgen", "comicgen/pairs/color/test.png", gt, line)
    assert c.ink_kind == "real line art" and np.array_equal(c.ink, line.astype(np.float32) / 255.0)
    assert c.hint_style == "colorist" and sorted(c.hints) == [16, 64] and c.set == "extended"
    assert "Ramya" not in c.attribution and "CC0" in c.attribution
    # A figure placed small on a white page.
    f = build_extended_case("figures/test", "figures", "comicgen/color_recolored/sophie_x.png", gt, None)
    h, w = f.gt.shape[:2]
    assert h == FIGURE_PAGE_HEIGHT and 0.69 * h <= w <= h
    ys, xs = np.nonzero(f.gt.min(-1) < 240)
    assert FIGURE_HEIGHT[0] - 0.02 <= (ys.max() - ys.min() + 1) / h <= FIGURE_HEIGHT[1] + 0.02
    assert (f.gt.min(-1) >= 240).mean() > 0.8  # lots of white paper
    assert f.ink_kind in ("converter", "fills whitened") and f.ink.shape == (h, w)
    assert "Shawf Designs" in f.attribution
    # Deterministic from the case id.
    g = build_extended_case("figures/test", "figures", "comicgen/color_recolored/sophie_x.png", gt, None)
    assert np.array_equal(f.gt, g.gt) and np.array_equal(f.ink, g.ink) and np.array_equal(f.hints[64], g.hints[64])
    # Painted art goes through the converter, downscaled to MAX_SIDE.
    big = np.ascontiguousarray(np.repeat(np.repeat(gt, 7, 0), 7, 1))
    p = build_extended_case("peppercarrot_art/x/full", "peppercarrot_art", "color_pages/peppercarrot_art/x.jpg#full", big, None)
    assert max(p.ink.shape) == MAX_SIDE and p.ink_kind == "converter"


@pytest.mark.skipif(not DATA.is_dir(), reason=f"bench data not found at {DATA} (../shared/data)")
def test_extended_set_sources_are_held_out_and_deterministic(tmp_path):
    from backend.bench.data import NEW_SOURCES, TestSet, extended_candidates
    from backend.split import is_held_out

    ts = TestSet(cache=tmp_path, log=lambda *x: None)
    for s in NEW_SOURCES:
        items = extended_candidates(ts.root, s)
        assert items, s
        for _, spec in items:
            assert is_held_out(ts.root / spec.split("#", 1)[0], ts.root), spec
    refs = ts.select(4, NEW_SOURCES)
    assert [r.source for r in refs] == list(NEW_SOURCES)  # round-robin over the new sources
    again = TestSet(cache=tmp_path / "b", log=lambda *x: None).select(4, NEW_SOURCES)
    for a, b in zip(refs, again):
        ca, cb = TestSet.load(a), TestSet.load(b)
        assert ca.input_digest() == cb.input_digest() and ca.ink_kind == cb.ink_kind and ca.credit == cb.credit
        assert max(ca.ink.shape) <= 1200


def _tiny_case(case_id: str, source: str = "figures"):
    from backend.bench.data import Case
    from backend.hints import colorist_hints

    gt, ink = _figure_page(96, 80)
    hints = {k: colorist_hints(gt, ink, k, np.random.default_rng(k)) for k in (16, 64)}
    return Case(id=case_id, source=source, file="x.png", gt=gt, ink=ink, ref=gt[::2, ::2].copy(), hints=hints,
                hint_style="colorist")


class _Job:
    def __init__(self, id, ink, hints):
        self.id, self.ink, self.hints = id, ink, hints


def test_krita_results_are_looked_up_per_case_and_condition():
    from backend.bench.runner import Results, krita_prepass, run_gt_cases, _baseline

    cases = [_tiny_case("figures/a"), _tiny_case("figures/b"), _tiny_case("figures/c")]
    calls = []

    def fake_run(jobs, log=print):
        calls.append([j.id for j in jobs])
        out = {}
        for j in jobs:
            if j.id == "figures/b@k64":
                continue  # Krita gave nothing for this one
            colour = np.ones(j.ink.shape + (3,), np.float32)
            colour[..., 1:] = 0.5  # a pink wash
            out[j.id] = (colour, baselines.compose(colour, j.ink))
        return out

    kr = krita_prepass(cases, fake_run, _Job, log=lambda *a: None, chunk_pixels=2 * 96 * 80 * 2)
    assert len(calls) == 2 and sum(map(len, calls)) == 6  # batched: 2 Krita sessions for 6 jobs
    assert kr.get("figures/a", 16) is not None and kr.get("figures/b", 64) is None
    assert "no result" in kr.missing[("figures/b", 64)]
    res = Results()
    run_gt_cases(cases, {"none": _baseline("none")}, res, set(), log=lambda *a: None, krita=kr)
    per = res.per_case["gt"]
    assert "krita" in per["figures/a"] and "krita" not in per["figures/b"]
    assert "figures/b" in res.skipped_cases["krita"]
    row = per["figures/a"]["krita"]
    assert set(row) == {"k0", "k16", "k64", "k0+ref", "k16+ref", "k64+ref"}
    assert row["k0"]["delta_e"] == pytest.approx(per["figures/a"]["none"]["k0"]["delta_e"])  # k0: the page uncoloured
    assert row["k16+ref"] == row["k16"] and row["k16"]["delta_e"] != row["k0"]["delta_e"]
    assert row["k16"]["seconds"] is not None and row["k16"]["peak_mb"] is None
    # A session that fails skips its jobs, never the bench.
    def broken(jobs, log=print):
        raise RuntimeError("krita crashed")

    kr2 = krita_prepass(cases[:1], broken, _Job, log=lambda *a: None)
    assert not kr2.composites and "krita crashed" in kr2.missing[("figures/a", 16)]
    res2 = Results()
    run_gt_cases(cases[:1], {"none": _baseline("none")}, res2, set(), log=lambda *a: None, krita=kr2)
    assert "krita" not in res2.per_case["gt"]["figures/a"] and "krita crashed" in res2.skipped_cases["krita"]["figures/a"]


def test_krita_setup_modes(monkeypatch):
    from backend.bench import cli

    assert cli.krita_setup("off")[0] is None
    built = []

    class Fake:
        ok = False

        @staticmethod
        def status():
            return Fake.ok, "Krita 5.2.9 chroot ready" if Fake.ok else "no chroot at /x"

        @staticmethod
        def build_chroot(log=print):
            built.append(1)
            Fake.ok = True

    monkeypatch.setattr(cli, "_krita_module", lambda: (Fake, ""))
    cm, note = cli.krita_setup("auto", log=lambda *a: None)
    assert cm is None and note.startswith("skipped") and "no chroot" in note and not built
    cm, note = cli.krita_setup("build", log=lambda *a: None)
    assert cm is Fake and built == [1]

    def unavailable(log=print):
        raise RuntimeError("no network")

    Fake.ok = False
    monkeypatch.setattr(Fake, "build_chroot", staticmethod(unavailable))
    cm, note = cli.krita_setup("build", log=lambda *a: None)
    assert cm is None and "no network" in note
    monkeypatch.setattr(cli, "_krita_module", lambda: (None, "skipped: driver missing"))
    assert cli.krita_setup("auto") == (None, "skipped: driver missing")


def test_bars_summary():
    from backend.bench.runner import bars_summary

    def row(de, white=1.0, hint=1.0):
        return {c: {"delta_e": de[c.split("+")[0]], "white_preservation": white, "ink_preservation": 1.0,
                    "hint_adherence": None if c.startswith("k0") else hint}
                for c in ("k0", "k16", "k64", "k0+ref", "k16+ref", "k64+ref")}

    per = {
        "a": {"ours": row({"k0": 8, "k16": 4, "k64": 3}, white=0.99), "krita": row({"k0": 10, "k16": 6, "k64": 4}),
              "none": row({"k0": 10, "k16": 10, "k64": 10})},
        "b": {"ours": row({"k0": 9, "k16": 5, "k64": 3}, white=0.95, hint=6.0), "none": row({"k0": 10, "k16": 10, "k64": 10})},
    }
    bars = bars_summary(per, {"a": "extended", "b": "current"})
    ext = bars["extended"]
    assert ext["de_vs_krita_k16"]["ratio"] == pytest.approx(4 / 6) and ext["de_vs_krita_k16"]["pass"]
    assert ext["de_vs_krita_k64"]["ratio"] == pytest.approx(0.75) and ext["de_vs_krita_k64"]["pass"]
    assert ext["white_min"]["pass"] and ext["k0_vs_none"]["ratio"] == pytest.approx(0.8)
    cur = bars["current"]
    assert cur["de_vs_krita_k16"]["pass"] is None  # no Krita on that case
    assert not cur["white_min"]["pass"] and not cur["hint_adherence_max"]["pass"]
    assert bars["all"]["n"] == 2 and bars["all"]["de_vs_krita_k16"]["n"] == 1  # paired on the cases Krita has
    assert bars["all"]["ink_min"]["pass"]


def test_white_preservation_sees_a_flooded_background_on_a_figure_page():
    """The paper around a figure is white truth in a large paper region: kept when the output leaves it,
    lost when colour floods it; coloured fills that are paper in the ink (fills turned white) do not count."""
    from backend.bench.data import _fills_whitened

    gt, _ = _figure_page()
    ink = _fills_whitened(gt)
    region = metrics.gt_white(gt, metrics.white_regions(ink))
    assert region[5, 5] and not region[80, 100] and not region[180, 100]
    good = baselines.compose(gt.astype(np.float32) / 255.0, ink)
    assert metrics.balloon_preservation(good, ink, region) == pytest.approx(1.0)
    flooded = good.copy()
    flooded[region] = (200, 150, 110)  # tan paper, as in issue 10
    assert metrics.balloon_preservation(flooded, ink, region) == pytest.approx(0.0)


def test_compare_runs_pairs_identical_inputs_only():
    from backend.bench.runner import compare_runs

    now = {"a": {"ours": {"k16": {"delta_e": 2.0, "white_preservation": 1.0}}},
           "b": {"ours": {"k16": {"delta_e": 4.0, "white_preservation": 0.5}}}}
    info = [{"id": "a", "set": "current", "input_sha1": "x"}, {"id": "b", "set": "extended", "input_sha1": "y"}]
    old = {"cases": {"gt": [{"id": "a", "input_sha1": "x"}, {"id": "b", "input_sha1": "changed"}]},
           "per_case": {"gt": {"a": {"ours": {"k16": {"delta_e": 3.0, "white_preservation": 0.9}}},
                               "b": {"ours": {"k16": {"delta_e": 1.0, "white_preservation": 1.0}}}}}}
    cmp = compare_runs(now, info, old)
    assert cmp["n"] == 1 and cmp["differing_inputs"] == 1 and "extended" not in cmp
    row = cmp["current"]["conditions"]["k16"]
    assert row["delta_e"] == {"now": 2.0, "then": 3.0} and row["white_preservation"] == {"now": 1.0, "then": 0.9}
