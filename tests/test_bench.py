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


def test_krita_status_is_explained():
    ok, note = baselines.krita_status()
    assert isinstance(ok, bool) and note
    if not ok:
        assert note.startswith("skipped")


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
    assert data["testset"]["n_cases"] == 2 and data["testset"]["n_real_pages"] == 1
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
            assert st["n"] == 2 and math.isfinite(st["mean"]) and 0.0 <= st["better_share"] <= 1.0
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
