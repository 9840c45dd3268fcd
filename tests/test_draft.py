"""Drafting model (backend/draft.py): API shapes, determinism, hints, inversion, mixing, a training step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend import color
from backend.draft import DEFAULT_WEIGHTS, RES, DraftModel, Latent, decode, draft_from_color, invert, load_draft_model, mix, sample_drafts, sample_latents

torch.set_num_threads(1)
SHIPPED = DEFAULT_WEIGHTS.exists()


def page(h: int = 150, w: int = 110) -> np.ndarray:
    """A B/W page: two outlined shapes on paper (1 = paper)."""
    import cv2

    ink = np.ones((h, w), np.float32)
    cv2.circle(ink, (w // 3, h // 3), min(h, w) // 5, 0.0, 2)
    cv2.rectangle(ink, (w // 2, h // 2), (w - 10, h - 10), 0.0, 2)
    return ink


def de(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return color.ciede2000(color.rgb_to_lab(a), color.rgb_to_lab(b))


@pytest.fixture(scope="module")
def model() -> DraftModel:
    if SHIPPED:
        return load_draft_model()
    torch.manual_seed(0)
    return DraftModel().eval()


def test_shapes_range_and_determinism(model):
    ink = page()
    a = sample_drafts(model, ink, n=3, seed=7)
    b = sample_drafts(model, ink, n=3, seed=7)
    assert len(a) == 3
    for x, y in zip(a, b):
        assert x.shape == (150, 110, 3) and x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
        np.testing.assert_array_equal(x, y)
    # Variant i depends on (seed, i) only, not on n.
    np.testing.assert_allclose(sample_drafts(model, ink, n=1, seed=7)[0], a[0], atol=1e-5)
    assert not np.allclose(sample_drafts(model, ink, n=1, seed=8)[0], a[0])


def test_include_mean_is_the_prior_mean(model):
    ink = page()
    z = sample_latents(model, ink, n=2, seed=3, include_mean=True)
    z0 = sample_latents(model, ink, n=1, seed=99, include_mean=True)[0]
    torch.testing.assert_close(z[0].coarse, z0.coarse)
    torch.testing.assert_close(z[0].fine, z0.fine)


def test_mix_keeps_levels(model):
    ink = page()
    a, b = sample_latents(model, ink, n=2, seed=1)
    m = mix(a, b, "coarse")
    assert torch.equal(m.coarse, b.coarse) and torch.equal(m.fine, a.fine)
    m = mix(a, b, ("coarse", "fine"))
    assert torch.equal(m.coarse, b.coarse) and torch.equal(m.fine, b.fine)
    with pytest.raises(ValueError):
        mix(a, b, "middle")
    # A reference latent fixes the coarse level of every variant; the fine level is still sampled.
    ref = Latent(torch.zeros_like(a.coarse), torch.zeros_like(a.fine))
    zs = [mix(z, ref, "coarse") for z in sample_latents(model, ink, n=2, seed=1)]
    assert all(torch.equal(z.coarse, ref.coarse) for z in zs)
    out = sample_drafts(model, ink, n=2, seed=1, reference=ref)
    np.testing.assert_allclose(out[0], decode(model, ink, zs[0])[0], atol=1e-5)
    img = np.full((40, 60, 3), (0.9, 0.3, 0.2), np.float32)
    assert len(sample_drafts(model, ink, n=2, seed=1, reference=img, mix="coarse")) == 2


def test_palette_bank_draws():
    torch.manual_seed(0)
    m = DraftModel().eval()
    ink = page()
    with pytest.raises(ValueError):
        sample_latents(m, ink, n=1, coarse="bank")
    m.bank = torch.randn(5, m.config["zc"])
    zs = sample_latents(m, ink, n=4, seed=2, include_mean=True)  # auto: the bank when there is one
    assert all(any(torch.equal(z.coarse, row) for row in m.bank) for z in zs[1:])
    assert not any(torch.equal(zs[0].coarse, row) for row in m.bank)  # the mean stays the prior mean
    prior = sample_latents(m, ink, n=2, seed=2, coarse="prior")
    assert not any(torch.equal(prior[1].coarse, row) for row in m.bank)


def test_bank_survives_save_and_load(tmp_path):
    from backend.draft import save_draft_model

    m = DraftModel({"ch": [8, 8, 8, 8, 8], "style": 8})
    m.bank = torch.randn(3, m.config["zc"])
    save_draft_model(m, tmp_path / "d.safetensors")
    back = load_draft_model(tmp_path / "d.safetensors")
    torch.testing.assert_close(back.bank, m.bank)
    assert back.config["ch"] == [8, 8, 8, 8, 8]


def test_invert_latent_shapes(model):
    z = invert(model, np.random.default_rng(0).random((80, 90, 3)).astype(np.float32))
    c = model.config
    assert z.coarse.shape == (c["zc"],) and z.fine.shape == (c["zf"], 8, 8)


def test_training_step_is_finite():
    from backend.train_draft import losses

    torch.manual_seed(0)
    m = DraftModel({"ch": [8, 8, 8, 8, 8], "style": 8})
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    b = 4
    ink = torch.rand(b, 1, RES, RES)
    hmask = (torch.rand(b, 1, RES, RES) > 0.995).float()
    gt = torch.rand(b, 3, RES, RES)
    cond = torch.cat([ink, gt * hmask, hmask], 1)
    loss, logs = losses(m, cond, gt, ink, hmask, torch.tensor([True, False, False, True]))
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and all(np.isfinite(v) for v in logs.values())


@pytest.mark.skipif(not SHIPPED, reason="no shipped drafting weights")
def test_variants_differ_without_hints(model):
    ink = page(192, 160)
    d = sample_drafts(model, ink, n=4, seed=0)
    pair = np.mean([de(d[i], d[j]).mean() for i in range(4) for j in range(i + 1, 4)])
    assert pair > 4.0, pair


@pytest.mark.skipif(not SHIPPED, reason="no shipped drafting weights")
def test_variants_agree_near_hints(model):
    ink = page(192, 160)
    hint_rgb = np.zeros((192, 160, 3), np.float32)
    hint_mask = np.zeros((192, 160), bool)
    spots = [((60, 50), (0.85, 0.15, 0.15)), ((140, 120), (0.15, 0.35, 0.85)), ((30, 130), (0.2, 0.7, 0.25))]
    for (y, x), c in spots:
        hint_mask[y - 3 : y + 4, x - 3 : x + 4] = True
        hint_rgb[y - 3 : y + 4, x - 3 : x + 4] = c
    free = sample_drafts(model, ink, n=4, seed=0)
    pinned = sample_drafts(model, ink, hint_rgb, hint_mask, n=4, seed=0)
    ys, xs = zip(*[p for p, _ in spots])
    ys, xs = np.array(ys), np.array(xs)
    spread = lambda d: np.mean([de(d[i][ys, xs], d[j][ys, xs]).mean() for i in range(4) for j in range(i + 1, 4)])
    assert spread(pinned) < spread(free)
    err = np.mean([de(d[ys, xs], hint_rgb[ys, xs]).mean() for d in pinned])
    assert err < 20.0, err


@pytest.mark.skipif(not SHIPPED, reason="no shipped drafting weights")
def test_invert_decode_reconstructs_flat_colours(model):
    """Flat colours inside the page's outlines, paper elsewhere: encode + decode keeps the layout and
    the hues (the lightness follows the page's ink, so a light page gives lighter colours)."""
    import cv2

    h, w = 150, 110
    ink = page(h, w)
    img = np.ones((h, w, 3), np.float32)
    cv2.circle(img, (w // 3, h // 3), min(h, w) // 5, (0.85, 0.2, 0.2), -1)
    cv2.rectangle(img, (w // 2, h // 2), (w - 10, h - 10), (0.2, 0.4, 0.85), -1)
    out = draft_from_color(model, img, ink)
    assert out.shape == img.shape
    assert de(out, img).mean() < 12.0
    red, blue = out[h // 3, w // 3], out[3 * h // 4, 3 * w // 4]
    assert red[0] > red[1] + 0.2 and red[0] > red[2] + 0.2, red
    assert blue[2] > blue[0] + 0.15, blue
    assert out[5, 5].min() > 0.85  # paper stays near white
