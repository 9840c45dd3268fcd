"""The page analysis kept by the ink's hash: a re-run with other hints or options gives the same bytes as
an uncached run, the cache is hit, and it stays bounded."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend import page_cache
from backend.pipeline import colorize
from backend.request import ColorizeOptions, ColorizeRequest

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "blackjack_p007.jpg"


@pytest.fixture(autouse=True)
def fresh_cache():
    page_cache.configure(pages=2)
    yield
    page_cache.configure(pages=2)


def sample_crop() -> np.ndarray:
    ink = np.asarray(Image.open(SAMPLE).convert("L"))[300:900, 200:800]
    return ink.astype(np.float32) / np.float32(255)


def dots(shape, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hints = np.zeros(shape + (4,), np.uint8)
    for _ in range(8):
        y, x = rng.integers(0, shape[0] - 3), rng.integers(0, shape[1] - 3)
        hints[y : y + 3, x : x + 3] = list(rng.integers(0, 256, 3)) + [255]
    return hints


RUNS = [
    (1, ColorizeOptions(working_size=384)),
    (2, ColorizeOptions(working_size=384, flat_regions=0.3)),
    (3, ColorizeOptions(working_size=256, keep_white=False)),
    (4, ColorizeOptions(working_size=384)),
]


def test_cached_reruns_are_byte_identical_to_uncached_runs():
    ink = sample_crop()
    page_cache.configure(pages=0)
    uncached = [colorize(ColorizeRequest(ink=ink.copy(), hints=dots(ink.shape, s), options=o)).color_layer for s, o in RUNS]
    page_cache.configure(pages=2)
    cached = [colorize(ColorizeRequest(ink=ink.copy(), hints=dots(ink.shape, s), options=o)).color_layer for s, o in RUNS]
    assert len(page_cache._pages) == 1  # one page, analysed once, reused by every run
    for a, b in zip(uncached, cached):
        np.testing.assert_array_equal(a, b)


def test_the_cache_is_bounded_in_pages_and_bytes():
    ink = sample_crop()[:200, :200]
    first = page_cache.analysis(ink)
    assert page_cache.analysis(ink.copy()) is first
    for i in range(3):
        other = ink.copy()
        other[0, i] = 0.5
        page_cache.analysis(other)
    assert len(page_cache._pages) == 2 and first not in page_cache._pages.values()
    page_cache.configure(pages=2, max_bytes=200 * 200 * page_cache.FULL_BYTES_PER_PIXEL - 1)
    page_cache.analysis(ink)
    assert len(page_cache._pages) == 0  # a page larger than the budget is analysed but not kept
