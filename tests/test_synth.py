"""Synthetic manga from colour art, and simulated hints: the look and determinism contracts."""

import cv2
import numpy as np
import pytest

from backend.hints import hint_candidates, hint_count, sample_hints
from backend.synth import manga_from_color, manga_from_pair


def toy_art(h: int = 320, w: int = 320) -> np.ndarray:
    """White paper; a light-blue square (light: stays white-ish), a red and a green disc of about equal
    lightness touching each other (an edge only in colour), a mid-gray block (tone) and a near-black
    block (solid black)."""
    img = np.ones((h, w, 3), np.float32)
    img[20:140, 20:140] = (0.75, 0.85, 1.0)
    cv2.circle(img, (210, 80), 50, (0.85, 0.2, 0.2), -1)
    cv2.circle(img, (270, 80), 30, (0.2, 0.55, 0.2), -1)
    img[180:300, 20:140] = (0.5, 0.5, 0.5)
    img[180:300, 180:300] = (0.05, 0.05, 0.08)
    return img


def test_output_is_paper_ink_and_tone():
    ink = manga_from_color(toy_art(), np.random.default_rng(0), strength=0.0)
    assert ink.dtype == np.float32 and ink.shape == (320, 320)
    assert 0.0 <= ink.min() and ink.max() <= 1.0
    # Mostly near-binary, like a scanned B/W page (gray only from anti-aliasing).
    gray = ((ink > 0.2) & (ink < 0.8)).mean()
    assert gray < 0.2, gray
    # White paper stays white; very dark colour becomes solid black.
    assert ink[5:15, 5:315].mean() > 0.97
    assert ink[200:280, 200:280].mean() < 0.1
    # A mid tone is screentone: both ink and paper pixels, neither dominating.
    block = ink[200:280, 40:120]
    assert 0.08 < (block < 0.5).mean() < 0.7
    assert (block > 0.5).mean() > 0.3


def test_lines_follow_colour_edges():
    art = toy_art()
    ink = manga_from_color(art, np.random.default_rng(1), strength=0.0)
    lab = cv2.cvtColor(art, cv2.COLOR_RGB2LAB)
    edge = np.zeros(art.shape[:2], np.uint8)
    for c in range(3):
        edge |= cv2.Canny(np.clip(lab[..., c] * (2.55 if c == 0 else 1) + (0 if c == 0 else 128), 0, 255).astype(np.uint8), 20, 50)
    dark = ink < 0.5
    inked_nearby = cv2.dilate(dark.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    # Nearly every colour edge has ink within 2 px; the flat light-blue inside has none.
    assert inked_nearby[edge > 0].mean() > 0.85
    assert dark[40:120, 40:120].mean() < 0.05
    # The red/green boundary (same lightness, an edge only in colour) is inked too.
    between = dark[60:100, 236:244]
    assert between.any()


def test_deterministic_for_a_given_rng():
    art = toy_art(160, 200)
    a = manga_from_color(art, np.random.default_rng(7))
    b = manga_from_color(art, np.random.default_rng(7))
    c = manga_from_color(art, np.random.default_rng(8))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_pair_uses_the_real_line_art():
    art = toy_art()
    line = np.ones((320, 320), np.float32)
    cv2.rectangle(line, (60, 60), (100, 100), 0.0, 2)  # a line with no colour edge under it
    ink = manga_from_pair(line, art, np.random.default_rng(0), strength=0.0)
    assert ink[60, 60:100].mean() < 0.5
    assert ink.shape == (320, 320) and ink.dtype == np.float32


def test_hints_take_ground_truth_colour_away_from_ink():
    art = toy_art()
    ink = manga_from_color(art, np.random.default_rng(0), strength=0.0)
    layer = sample_hints(art, ink, 16, np.random.default_rng(3))
    again = sample_hints(art, ink, 16, np.random.default_rng(3))
    assert np.array_equal(layer, again)
    assert layer.dtype == np.uint8 and layer.shape == (320, 320, 4)
    ys, xs = np.nonzero(layer[..., 3])
    assert len(ys) >= 16
    # Not on ink, and the colour of the ground truth there.
    assert (ink[ys, xs] > 0.5).all()
    err = np.abs(layer[ys, xs, :3].astype(np.float32) / 255.0 - art[ys, xs]).max()
    assert err < 0.05
    assert sample_hints(art, ink, 0, np.random.default_rng(3))[..., 3].sum() == 0


def test_hint_strokes_and_schedule():
    art = toy_art()
    ink = manga_from_color(art, np.random.default_rng(0), strength=0.0)
    layer = sample_hints(art, ink, 64, np.random.default_rng(4), strokes=True)
    assert (layer[..., 3] > 0).sum() >= 64
    mask, weight = hint_candidates(art, ink)
    assert mask.any() and weight.max() > 1
    counts = [hint_count(np.random.default_rng(i)) for i in range(400)]
    assert min(counts) == 0 and max(counts) >= 64
    assert np.mean([1 <= c <= 15 for c in counts]) > 0.45


def test_real_art_looks_like_manga(shared_data):
    from backend.data import load_picture

    files = sorted((shared_data / "dicebear" / "adventurer").glob("*.png"))[:2]
    if not files:
        pytest.skip("no dicebear pictures")
    for f in files:
        ink = manga_from_color(load_picture(str(f)), np.random.default_rng(0))
        assert ((ink > 0.2) & (ink < 0.8)).mean() < 0.3
        assert (ink > 0.9).mean() > 0.4  # mostly paper
