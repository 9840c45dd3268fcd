"""One contract for the network's inputs: a page's inputs built by the training sampler (from the
page cache) and by the serving pipeline are the same, value for value."""

import cv2
import numpy as np
import pytest

from backend import data, pipeline, sampler
from backend.inputs import (
    DRAFT_MASK,
    DRAFT_RGB,
    HINT_MASK,
    INK,
    PROPAGATED_MASK,
    REGION_AREA,
    REGION_BORDER,
    global_vector,
    page_inputs,
    reference_vector,
)
from backend.request import ColorizeOptions, ColorizeRequest
from backend.structure import PageStructure, resample_hints

SIDE = 160  # below the working size: the page is its own working resolution


def drawn_page() -> tuple[np.ndarray, np.ndarray]:
    """(ink, colour truth): coloured shapes with black outlines (one with a gap), on white. The ink
    is pure black and white without screentone, so the cache's 8-bit planes hold it exactly."""
    gt = np.ones((SIDE, SIDE, 3), np.float32)
    ink = np.ones((SIDE, SIDE), np.float32)
    for (cx, cy), r, colour in (((50, 55), 30, (0.9, 0.3, 0.2)), ((115, 60), 25, (0.2, 0.5, 0.9)), ((80, 120), 28, (0.3, 0.8, 0.3))):
        cv2.circle(gt, (cx, cy), r, colour, -1)
        cv2.circle(ink, (cx, cy), r, 0.0, 2)
    ink[55:60, 135:145] = 1.0  # a gap in the blue circle's outline, onto the paper around
    return ink, gt


@pytest.fixture
def cached_page(tmp_path):
    """The page as the training cache holds it, in a cache folder of its own."""
    ink, gt = drawn_page()
    planes = data.page_planes(ink, gt)
    assert planes.shape[:2] == (SIDE, SIDE)
    np.save(tmp_path / "test__drawn__0__v0.npy", planes)
    np.save(tmp_path / "test__drawn__0__v0.hist.npy", data.reference_hists(planes[..., data.P_GT : data.P_GT + 3], np.random.default_rng(0)))
    return ink, planes, tmp_path


def cache_quantized(x: np.ndarray) -> np.ndarray:
    """Serving inputs with the region maps as the cache stores them (8 bits)."""
    out = x.copy()
    for c in (REGION_AREA, REGION_BORDER):
        out[c] = data.from_uint8(data.to_uint8(x[c]))
    return out


def test_training_sample_is_the_served_input(cached_page, monkeypatch):
    """Sampler.sample (whole page, no augmentation) against colorize's own inputs for the same ink
    and the same hint layer: every channel equal."""
    ink, planes, cache = cached_page
    drawn = []
    real_hints = sampler.sample_hints
    monkeypatch.setattr(sampler, "sample_hints", lambda *a, **kw: drawn.append(real_hints(*a, **kw)) or drawn[-1])
    s = sampler.Sampler(cache, np.random.default_rng(3), p_reference=0.0, p_draft=0.0, p_balloon=0.0, p_gaps=0.0)
    x, g, _, _ = s.sample(SIDE, k=3)  # (seed and k chosen so a hint competes with the paper seed)
    (hints,) = drawn
    assert (hints[..., 3] > 0).sum() >= 3

    served = {}
    real = pipeline.page_inputs

    def spy(*args, **kwargs):
        served["x"], spread = real(*args, **kwargs)
        return served["x"], spread

    monkeypatch.setattr(pipeline, "page_inputs", spy)
    pipeline.colorize(ColorizeRequest(ink=ink, hints=hints, options=ColorizeOptions(working_size=768)))
    expected = cache_quantized(served["x"])
    if not np.array_equal(x[INK], expected[INK]):
        x = x[..., ::-1]  # the sample was flipped
    assert x[PROPAGATED_MASK].sum() > x[HINT_MASK].sum() > 0 and x[REGION_BORDER].min() == 0
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(g, reference_vector([], "histogram"))


def test_training_crop_builder_is_the_page_builder(cached_page):
    """`sampler.example_inputs` (what Sampler.sample builds with) against `inputs.page_inputs` (what
    colorize builds with) on the same cached page, hint layer and colouring draft."""
    _, planes, _ = cached_page
    page = PageStructure(
        ink=data.from_uint8(planes[..., data.P_INK]), line=planes[..., data.P_LINE] > 0, tone=data.from_uint8(planes[..., data.P_TONE])
    )
    rng = np.random.default_rng(1)
    hints = np.zeros((SIDE, SIDE, 4), np.uint8)
    for y, x in ((50, 50), (60, 112), (120, 80)):  # the blue dot competes with the paper seed around
        hints[y : y + 2, x : x + 2] = (*rng.integers(0, 256, 3), 255)
    draft = rng.random((SIDE, SIDE, 3), dtype=np.float32)
    area, border = data.from_uint8(planes[..., data.P_AREA]), data.from_uint8(planes[..., data.P_BORDER])
    trained = sampler.example_inputs(page, area, border, hints, (True,) * 4, (SIDE, SIDE), slice(0, SIDE), slice(0, SIDE), SIDE, draft)
    served, _ = page_inputs(page, *resample_hints(hints, page.shape), draft, np.ones((SIDE, SIDE), bool))
    assert trained[DRAFT_MASK].all() and np.array_equal(trained[DRAFT_RGB], np.moveaxis(draft, -1, 0))
    np.testing.assert_array_equal(trained, cache_quantized(served))


@pytest.mark.parametrize("palette", [False, True])
def test_training_reference_is_the_served_reference(palette):
    """A picture's histogram as the cache keeps it for simulated references, and the same picture
    as a user's reference: the same global vector."""
    picture = np.zeros((64, 64, 3), np.uint8)
    picture[:32, :32], picture[:32, 32:], picture[32:] = (220, 30, 40), (40, 60, 210), (255, 255, 255)
    trained = global_vector(data.reference_hists(picture, np.random.default_rng(0))[0], palette)
    served = reference_vector([picture], "palette" if palette else "histogram")
    np.testing.assert_array_equal(trained, served)
    assert served.sum() > 1


def test_batch_masks_are_its_input_channels(cached_page):
    _, _, cache = cached_page
    b = sampler.Sampler(cache, np.random.default_rng(0), p_draft=1.0).batch(2, 96)
    assert b.x.shape == (2, 17, 96, 96) and b.g.shape == (2, 218) and b.x.dtype == np.float32
    np.testing.assert_array_equal(b.hint[:, 0], b.x[:, HINT_MASK])
    np.testing.assert_array_equal(b.prop[:, 0], b.x[:, PROPAGATED_MASK])
    assert b.x[:, DRAFT_MASK].all()
