"""Palettes: built from a reference, hints or a selection; saved and read back; hostile files refused;
Comicolorization's dominant-bin adjustment and weighted blending."""

import json

import numpy as np
import pytest

from backend import color
from backend.palettes import (
    PaletteError,
    adjust_dominant,
    blend_features,
    load_palette,
    palette_from_hints,
    palette_from_image,
    palette_from_json,
    save_palette,
)


def two_colour_image() -> np.ndarray:
    img = np.zeros((60, 90, 3), np.uint8)
    img[:, :60] = (200, 40, 40)  # red, 2/3 of the picture
    img[:, 60:] = (40, 60, 200)  # blue, 1/3
    return img


def test_palette_from_image_keeps_the_network_feature_and_main_colours():
    img = two_colour_image()
    pal = palette_from_image(img, "Hero")
    np.testing.assert_allclose(pal.histogram, color.histogram216(img))
    # The two colours come back as the two largest swatches, the larger first.
    assert len(pal.swatches) >= 2
    lab = pal.swatches_lab()
    red = color.rgb_to_lab(np.array([200, 40, 40]) / 255.0)
    blue = color.rgb_to_lab(np.array([40, 60, 200]) / 255.0)
    assert color.ciede2000(lab[0], red) < 3.0
    assert min(color.ciede2000(lab[i], blue) for i in range(len(lab))) < 3.0
    assert pal.shares[0] == pytest.approx(2 / 3, abs=0.05)


def test_palette_from_a_selection_only_reads_the_selected_pixels():
    img = two_colour_image()
    mask = np.zeros(img.shape[:2], bool)
    mask[:, 70:] = True
    pal = palette_from_image(img, "Blue coat", mask=mask, source="selection")
    assert pal.histogram.argmax() == color.histogram216(np.array([[[40, 60, 200]]], np.uint8)).argmax()
    assert pal.histogram.max() == pytest.approx(1.0)
    with pytest.raises(PaletteError, match="selection is empty"):
        palette_from_image(img, "x", mask=np.zeros(img.shape[:2], bool))


def test_palette_from_hints_lists_each_painted_colour():
    hints = np.zeros((40, 40, 4), np.uint8)
    hints[2:8, 2:8] = (250, 200, 150, 255)  # 36 px skin
    hints[20:23, 20:23] = (20, 20, 120, 255)  # 9 px navy
    hints[30, 30] = (0, 255, 0, 60)  # a soft brush edge is not a colour the user chose
    pal = palette_from_hints(hints, "Pinoko")
    assert [tuple(s) for s in pal.swatches] == [(250, 200, 150), (20, 20, 120)]
    np.testing.assert_allclose(pal.shares, [0.8, 0.2], atol=1e-6)
    with pytest.raises(PaletteError, match="empty"):
        palette_from_hints(np.zeros((8, 8, 4), np.uint8), "x")


def test_palette_file_round_trip(tmp_path):
    pal = palette_from_image(two_colour_image(), "Hero")
    path = tmp_path / "hero.json"
    save_palette(pal, path)
    back = load_palette(path)
    assert back.name == "Hero" and back.source == "reference"
    np.testing.assert_allclose(back.histogram, pal.histogram, atol=1e-5)
    np.testing.assert_array_equal(back.swatches, pal.swatches)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format": "gimp"}, "not a MangaColor palette"),
        ({"version": 9}, "version"),
        ({"name": ""}, "needs a name"),
        ({"name": "x" * 500}, "at most"),
        ({"histogram": [0.1] * 10}, "216"),
        ({"histogram": [-1.0] + [0.0] * 215}, "non-negative"),
        ({"histogram": ["a"] * 216}, "numbers only"),
        ({"histogram": [0.0] * 216}, "not all zero"),
        ({"swatches": [{"rgb": "red"}]}, "#rrggbb"),
        ({"swatches": [{"rgb": "#ff0000", "share": 7}]}, "between 0 and 1"),
        ({"swatches": [{"rgb": "#ff0000"}] * 100}, "at most"),
        ({"source": "../../etc"}, "source"),
    ],
)
def test_hostile_palettes_are_refused_with_a_reason(change, message):
    value = palette_from_image(two_colour_image(), "Hero").to_json()
    value.update(change)
    with pytest.raises(PaletteError, match=message):
        palette_from_json(value)


def test_unreadable_palette_files_say_why(tmp_path):
    with pytest.raises(PaletteError, match="not found"):
        load_palette(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PaletteError, match="not valid JSON"):
        load_palette(bad)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"pad": "x" * 400_000}))
    with pytest.raises(PaletteError, match="too large"):
        load_palette(big)


def test_dominant_bin_adjustment_shrinks_only_the_largest_colour():
    hist = np.zeros(216, np.float32)
    hist[[3, 50, 100]] = [0.8, 0.15, 0.05]
    out = adjust_dominant(hist, 0.25)
    assert out.sum() == pytest.approx(1.0)
    assert out[3] == pytest.approx(0.2 / 0.4)
    assert out[50] / out[100] == pytest.approx(3.0)  # the others keep their proportions
    np.testing.assert_array_equal(adjust_dominant(hist, 1.0), hist)


def test_weighted_blend_follows_the_weights():
    a = np.zeros(216, np.float32); a[0] = 1
    b = np.zeros(216, np.float32); b[1] = 1
    out = blend_features([a, b], [3.0, 1.0])
    assert out[0] == pytest.approx(0.75) and out[1] == pytest.approx(0.25)
    with pytest.raises(PaletteError, match="positive"):
        blend_features([a, b], [1.0, 0.0])
    with pytest.raises(PaletteError, match="one weight"):
        blend_features([a, b], [1.0])
