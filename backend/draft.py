"""Drafting model: a latent space of blurred colourings (issue 13; Golyadkin & Makarov 2023, sec. 3).

A conditional VAE at 64x64 with a two-level latent, conditioned on the B/W page (and hints):

- ``z_coarse`` (16-d vector): the palette / mood of the whole page; it reaches every decoder scale
  through a small mapping network and FiLM (the StyleGAN role of the style vector);
- ``z_fine`` (4 x 8 x 8 map): where the colours go (which region gets which colour).

Networks (all at 64x64, a page is resized anisotropically to it; the draft is blurred anyway):

- ``page_enc``  E_page(ink, hint colour, hint mask) -> page features + the page's prior
  N(mu, sigma) for each level (the pSp role: the page's own distribution of colourings);
- ``color_enc`` E_color(colour image, ink or blank) -> the posterior (inversion; references);
- ``dec``       D(page features, z_coarse, z_fine) -> draft sRGB in [0, 1].

Variants = samples of the page prior (seeded per variant, so variant i of seed S is the same whatever
n is); hints enter the page encoder, which narrows the prior and makes the decoder copy them, so
variants agree where hints pin colour. Style mixing = take a level from a reference's / chosen
variant's latent and sample the other one. Ink convention as in backend.structure: 1 = paper.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

RES = 64  # draft resolution (square)
FINE = 8  # z_fine spatial size
DEFAULT_CONFIG = {"zc": 16, "zf": 4, "ch": [24, 32, 48, 64, 96], "style": 64}
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "draft.safetensors"
LEVELS = ("coarse", "fine")

# ----------------------------------------------------------------------------- colour (torch)
_M = torch.tensor([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])


def torch_rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] (B, 3, H, W) -> CIE Lab (D65), differentiable; matches backend.color.rgb_to_lab."""
    rgb = rgb.clamp(0.0, 1.0)
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).clamp(min=1e-6) ** 2.4, rgb / 12.92)
    xyz = torch.einsum("ij,bjhw->bihw", _M.to(rgb), lin) / _WHITE.to(rgb).view(1, 3, 1, 1)
    f = torch.where(xyz > 0.008856, xyz.clamp(min=1e-6) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    return torch.stack([116.0 * f[:, 1] - 16.0, 500.0 * (f[:, 0] - f[:, 1]), 200.0 * (f[:, 1] - f[:, 2])], 1)


# ----------------------------------------------------------------------------- networks
def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(min(8, cout // 4), cout), nn.SiLU())


class Encoder(nn.Module):
    """64 -> 32 -> 16 -> 8 -> 4; returns the features at each scale and Gaussian heads for both levels."""

    def __init__(self, cin: int, ch: list[int], zc: int, zf: int):
        super().__init__()
        self.stem = nn.Sequential(_conv(cin, ch[0]), _conv(ch[0], ch[0]))
        self.downs = nn.ModuleList(nn.Sequential(_conv(a, b, 2), _conv(b, b)) for a, b in zip(ch[:-1], ch[1:]))
        self.coarse = nn.Sequential(nn.Linear(2 * ch[-1], 128), nn.SiLU(), nn.Linear(128, 2 * zc))
        self.fine = nn.Sequential(_conv(ch[-2], ch[-2]), nn.Conv2d(ch[-2], 2 * zf, 1))

    def forward(self, x: torch.Tensor):
        feats = [self.stem(x)]
        for d in self.downs:
            feats.append(d(feats[-1]))
        top = feats[-1]
        g = torch.cat([top.mean((2, 3)), top.amax((2, 3))], 1)
        mc, lc = self.coarse(g).chunk(2, 1)
        mf, lf = self.fine(feats[-2]).chunk(2, 1)
        return feats, (mc, lc.clamp(-8, 4)), (mf, lf.clamp(-8, 4))


class Decoder(nn.Module):
    """Page features (U-Net skips) + z_fine at 8x8 + z_coarse as a FiLM style at every scale."""

    def __init__(self, ch: list[int], zc: int, zf: int, style: int):
        super().__init__()
        self.mapping = nn.Sequential(nn.Linear(zc, style), nn.SiLU(), nn.Linear(style, style), nn.SiLU())
        rev = ch[::-1]  # 96, 64, 48, 32, 24
        self.top = _conv(rev[0], rev[0])
        self.ups = nn.ModuleList()
        self.films = nn.ModuleList([nn.Linear(style, 2 * rev[0])])
        for i, (a, b) in enumerate(zip(rev[:-1], rev[1:])):
            extra = zf if i == 0 else 0  # z_fine joins at 8x8
            self.ups.append(nn.Sequential(_conv(a + b + extra, b), _conv(b, b)))
            self.films.append(nn.Linear(style, 2 * b))
        self.out = nn.Conv2d(rev[-1], 3, 3, 1, 1)

    @staticmethod
    def _film(x: torch.Tensor, film: nn.Linear, w: torch.Tensor) -> torch.Tensor:
        s, b = film(w).chunk(2, 1)
        return x * (1 + s[..., None, None]) + b[..., None, None]

    def forward(self, feats: list[torch.Tensor], zc: torch.Tensor, zf: torch.Tensor) -> torch.Tensor:
        w = self.mapping(zc)
        x = self._film(self.top(feats[-1]), self.films[0], w)
        for i, (up, film) in enumerate(zip(self.ups, self.films[1:])):
            skip = feats[-2 - i]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            parts = [x, skip] + ([zf] if i == 0 else [])
            x = self._film(up(torch.cat(parts, 1)), film, w)
        return torch.sigmoid(self.out(x))


class DraftModel(nn.Module):
    def __init__(self, config: dict | None = None):
        super().__init__()
        self.config = dict(DEFAULT_CONFIG, **(config or {}))
        c = self.config
        self.page_enc = Encoder(5, c["ch"], c["zc"], c["zf"])  # ink, hint rgb * mask, hint mask
        self.color_enc = Encoder(4, c["ch"], c["zc"], c["zf"])  # colour rgb, ink (ones = no page)
        self.dec = Decoder(c["ch"], c["zc"], c["zf"], c["style"])
        # Posterior-mean coarse codes of the training pages (filled after training): real palettes to
        # draw variants from (see sample_latents).
        self.register_buffer("bank", torch.zeros(0, c["zc"]))

    def prior(self, cond: torch.Tensor):
        """cond (B, 5, 64, 64) -> page features, (mu, logvar) coarse, (mu, logvar) fine."""
        return self.page_enc(cond)

    def posterior(self, rgb: torch.Tensor, ink: torch.Tensor):
        _, qc, qf = self.color_enc(torch.cat([rgb, ink], 1))
        return qc, qf

    def decode(self, feats, zc: torch.Tensor, zf: torch.Tensor) -> torch.Tensor:
        return self.dec(feats, zc, zf)


def kl_gauss(q: tuple[torch.Tensor, torch.Tensor], p: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """KL(q || p) per dimension for diagonal Gaussians given as (mu, logvar)."""
    (mq, lq), (mp, lp) = q, p
    return 0.5 * (lp - lq + (lq.exp() + (mq - mp) ** 2) / lp.exp() - 1.0)


def save_draft_model(model: DraftModel, path: str | Path, meta: dict | None = None) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"config": json.dumps(model.config), "meta": json.dumps(meta or {})})


def load_draft_model(path: str | Path | None = None, device: str = "cpu") -> DraftModel:
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path or DEFAULT_WEIGHTS)
    with safe_open(str(path), "pt") as f:
        config = json.loads((f.metadata() or {}).get("config", "{}"))
    model = DraftModel(config)
    state = load_file(str(path))
    model.bank = state.pop("bank", model.bank)
    model.load_state_dict(dict(state, bank=model.bank))
    return model.to(device).eval()


# ----------------------------------------------------------------------------- numpy API
@dataclass
class Latent:
    """One point of the colouring space: coarse (zc,) and fine (zf, 8, 8) float32 tensors."""

    coarse: torch.Tensor
    fine: torch.Tensor


def _small(img: np.ndarray) -> np.ndarray:
    return cv2.resize(np.ascontiguousarray(img, np.float32), (RES, RES), interpolation=cv2.INTER_AREA)


def _cond(ink: np.ndarray, hint_rgb: np.ndarray | None, hint_mask: np.ndarray | None) -> torch.Tensor:
    """Page-size ink and hints -> the (1, 5, 64, 64) page-encoder input. A 64x64 cell is hinted if any
    of its pixels is; its colour is the mean of its hinted pixels."""
    x = np.zeros((5, RES, RES), np.float32)
    x[0] = _small(np.clip(ink, 0, 1))
    if hint_mask is not None and hint_rgb is not None and np.any(hint_mask):
        m = np.asarray(hint_mask, np.float32)
        cover = _small(m)
        rgb = _small(np.asarray(hint_rgb, np.float32) * m[..., None]) / np.maximum(cover, 1e-6)[..., None]
        on = cover > 0
        x[1:4] = np.moveaxis(np.clip(rgb, 0, 1) * on[..., None], -1, 0)
        x[4] = on
    return torch.from_numpy(x)[None]


def _to_page(draft: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """(3, 64, 64) -> HxWx3 float32 in [0, 1], smoothly upsampled (cubic, then a cell-sized blur)."""
    img = draft.detach().cpu().permute(1, 2, 0).numpy().astype(np.float32)
    h, w = shape
    up = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)
    sy, sx = 0.5 * h / RES, 0.5 * w / RES
    if min(sy, sx) > 0.5:
        up = cv2.GaussianBlur(up, (0, 0), sigmaX=sx, sigmaY=sy)
    return np.clip(up, 0.0, 1.0).astype(np.float32)


def _gen(seed: int, i: int) -> torch.Generator:
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + i * 7919 + 12345) % (2**63))


@torch.no_grad()
def invert(model: DraftModel, color_image: np.ndarray, ink: np.ndarray | None = None) -> Latent:
    """A colour image (HxWx3 float [0, 1], any size) -> its posterior-mean latent. Without ink (a
    reference that is not this page) the encoder sees a blank page and encodes the colours alone."""
    dev = next(model.parameters()).device
    rgb = torch.from_numpy(np.moveaxis(_small(np.clip(color_image[..., :3], 0, 1)), -1, 0))[None]
    k = torch.ones(1, 1, RES, RES) if ink is None else torch.from_numpy(_small(np.clip(ink, 0, 1)))[None, None]
    (mc, _), (mf, _) = model.posterior(rgb.to(dev), k.to(dev))
    return Latent(mc[0].cpu(), mf[0].cpu())


def mix(a: Latent, b: Latent, levels: str | tuple[str, ...] = "coarse") -> Latent:
    """Latent a with the given levels ("coarse", "fine" or both) taken from b."""
    levels = (levels,) if isinstance(levels, str) else tuple(levels)
    bad = set(levels) - set(LEVELS)
    if bad:
        raise ValueError(f"unknown latent levels {sorted(bad)}; use {LEVELS}")
    return Latent(b.coarse if "coarse" in levels else a.coarse, b.fine if "fine" in levels else a.fine)


_mix = mix  # sample_drafts has a parameter of that name


@torch.no_grad()
def sample_latents(
    model: DraftModel,
    ink: np.ndarray,
    hint_rgb=None,
    hint_mask=None,
    n: int = 4,
    seed: int = 0,
    temperature: float = 1.0,
    include_mean: bool = False,
    coarse: str = "auto",
) -> list[Latent]:
    """n latents for a page. Variant i depends only on (seed, i), not on n; with include_mean,
    variant 0 is the prior mean (the single most likely draft). The coarse level comes from the
    page's prior ("prior") or from the bank of training palettes, drawn with probability proportional
    to the page prior's density at each, tempered ("bank"; "auto": bank when the weights have one)."""
    _, (mc, lc), (mf, lf) = model.prior(_cond(ink, hint_rgb, hint_mask).to(next(model.parameters()).device))
    mc, sc, mf, sf = mc[0].cpu(), (0.5 * lc[0]).exp().cpu(), mf[0].cpu(), (0.5 * lf[0]).exp().cpu()
    bank = model.bank.cpu()
    use_bank = coarse == "bank" or (coarse == "auto" and len(bank) > 0)
    if use_bank and len(bank) == 0:
        raise ValueError("these drafting weights have no palette bank")
    if use_bank:  # log prior density of each bank code, flattened by a temperature of 3 (diversity)
        logp = -0.5 * (((bank - mc) / sc) ** 2).sum(1) / 9.0
        probs = torch.softmax(logp - logp.max(), 0)
    out = []
    for i in range(n):
        t = 0.0 if include_mean and i == 0 else temperature
        g = _gen(seed, i)
        ec, ef = torch.randn(mc.shape, generator=g), torch.randn(mf.shape, generator=g)
        zc = mc + t * sc * ec
        if use_bank and t > 0:
            zc = bank[int(torch.multinomial(probs, 1, generator=g))]
        out.append(Latent(zc, mf + t * sf * ef))
    return out


@torch.no_grad()
def decode(model: DraftModel, ink: np.ndarray, latents: Latent | list[Latent], hint_rgb=None, hint_mask=None, shape=None) -> list[np.ndarray]:
    """Latents -> drafts at the page's size (or `shape`), one batched decoder pass."""
    latents = [latents] if isinstance(latents, Latent) else list(latents)
    dev = next(model.parameters()).device
    feats, _, _ = model.prior(_cond(ink, hint_rgb, hint_mask).to(dev))
    n = len(latents)
    feats = [f.expand(n, -1, -1, -1) for f in feats]
    zc = torch.stack([z.coarse for z in latents]).to(dev)
    zf = torch.stack([z.fine for z in latents]).to(dev)
    out = model.decode(feats, zc, zf)
    return [_to_page(d, tuple(shape or ink.shape[:2])) for d in out]


def sample_drafts(
    model: DraftModel,
    ink: np.ndarray,
    hint_rgb: np.ndarray | None = None,
    hint_mask: np.ndarray | None = None,
    n: int = 4,
    seed: int = 0,
    reference: np.ndarray | Latent | None = None,
    mix: str | tuple[str, ...] = "coarse",
    temperature: float = 1.0,
    include_mean: bool = False,
    coarse: str = "auto",
) -> list[np.ndarray]:
    """n draft colourings (HxWx3 float32 in [0, 1] at the ink's size) for a page, deterministic given
    seed. A reference (a colour image, inverted without the page, or a chosen variant's Latent) fixes
    the `mix` levels of every variant; the other levels are sampled."""
    zs = sample_latents(model, ink, hint_rgb, hint_mask, n, seed, temperature, include_mean, coarse)
    if reference is not None:
        ref = reference if isinstance(reference, Latent) else invert(model, reference)
        zs = [_mix(z, ref, mix) for z in zs]
    return decode(model, ink, zs, hint_rgb, hint_mask)


def draft_from_color(model: DraftModel, color_image: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Encode a colour image with the page and decode it: the draft that image implies for this page."""
    return decode(model, ink, invert(model, color_image, ink))[0]
