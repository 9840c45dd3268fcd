"""Colour art -> synthetic black-and-white manga ink (training pairs and the bench's test pages).

A manga page is not a grayscale photo: it is paper white, black ink lines, solid blacks and
screentone (halftone dots or hatching at a fixed pitch) standing in for mid tones. The converter
mimics that from a colour image:

- lines: colour edges (Canny on Lab, so a red/green boundary of equal lightness is still inked)
  plus xDoG (extended difference of Gaussians, Winnemöller 2012) for painted detail, drawn at a
  varied line weight; or, where a real line-art/colour pair exists, the real line art
  (`manga_from_pair`);
- solid black where the colour is very dark (hair, shadows);
- screentone for mid tones: the lightness is quantised into one to three tone levels, each
  printed as dots at a pitch/angle drawn per page (sometimes hatching, sometimes a continuous
  gradient tone as on painted pages);
- white where the colour is light (skin is usually left white in manga);
- anti-aliasing like a scan at the page resolution, optional paper gray level, noise and JPEG.

Everything random comes from the caller's `numpy.random.Generator`, so the output is
deterministic for a given generator state. `strength` scales how far the style strays from a
canonical look (0 = fixed middle parameters, no scan noise; 1 = the full training variation).
Output ink is float32 HxW in [0, 1] with 1 = paper, the same convention as `structure.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import color

__all__ = ["SynthStyle", "sample_style", "manga_from_color", "manga_from_pair", "to_gray"]


@dataclass
class SynthStyle:
    """The drawing parameters of one synthetic page (pixel sizes at the image's own resolution)."""

    line_width: float  # px; outline weight
    edge_low: float  # Canny thresholds on Lab (scaled to 0..255 per channel)
    edge_high: float
    xdog_amount: float  # 0 = no xDoG detail lines
    xdog_sigma: float
    xdog_eps: float
    white_L: float  # Lab L above which the paper stays white
    black_L: float  # Lab L below which the ink is solid black
    tone_levels: int  # number of flat tone densities (0 = continuous gradient tone)
    tone_min: float  # coverage of the lightest tone
    tone_max: float  # coverage of the darkest tone
    tone_pitch: float  # px between dot centres
    tone_angle: float  # degrees
    hatching: bool  # lines instead of dots
    blur: float  # anti-aliasing sigma (px)
    paper: float  # paper level, 1 = pure white
    noise: float  # gaussian scan noise sigma
    jpeg_quality: int  # 0 = no JPEG round trip


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def sample_style(shape: tuple[int, int], rng: np.random.Generator, strength: float = 1.0) -> SynthStyle:
    """Draw a page style; sizes scale with the image (a 2000-px manga page has ~5 px tone pitch)."""
    s = float(np.clip(strength, 0.0, 1.0))
    scale = max(shape) / 1000.0

    def u(lo: float, hi: float, mid: float | None = None) -> float:
        """Uniform in [lo, hi] at full strength, shrunk toward `mid` as strength drops."""
        mid = (lo + hi) / 2 if mid is None else mid
        return float(_lerp(mid, rng.uniform(lo, hi), s))

    line_width = max(1.0, u(1.2, 3.2, 2.0) * max(scale, 0.5))
    tone_pitch = max(3.0, u(3.5, 7.0, 5.0) * max(scale, 0.6))
    levels_draw = rng.random()
    tone_levels = 2 if s == 0 else (0 if levels_draw < 0.2 else 1 if levels_draw < 0.45 else 2 if levels_draw < 0.8 else 3)
    angle_choices = np.array([45.0, 45.0, 0.0, 30.0, 15.0, 60.0])
    tone_angle = 45.0 if s == 0 else float(angle_choices[rng.integers(len(angle_choices))])
    hatching = bool(rng.random() < 0.15 * s)
    noisy = rng.random() < 0.6 * s
    return SynthStyle(
        line_width=line_width,
        edge_low=u(20.0, 45.0, 30.0),
        edge_high=u(50.0, 110.0, 75.0),
        xdog_amount=u(0.0, 1.0, 0.5) if rng.random() < 0.7 else 0.0,
        xdog_sigma=max(0.6, u(0.7, 1.6, 1.0) * max(scale, 0.5)),
        xdog_eps=u(-0.04, 0.0, -0.02),
        white_L=u(66.0, 86.0, 76.0),
        black_L=u(12.0, 30.0, 22.0),
        tone_levels=tone_levels,
        tone_min=u(0.10, 0.22, 0.15),
        tone_max=u(0.35, 0.6, 0.45),
        tone_pitch=tone_pitch,
        tone_angle=tone_angle + u(-4.0, 4.0, 0.0),
        hatching=hatching,
        blur=u(0.35, 0.9, 0.5) * max(1.0, scale * 0.7),
        paper=u(0.975, 1.0, 1.0) if noisy else 1.0,
        noise=u(0.0, 0.015, 0.0) if noisy else 0.0,
        jpeg_quality=int(rng.integers(55, 96)) if (noisy and rng.random() < 0.7) else 0,
    )


def to_gray(img: np.ndarray) -> np.ndarray:
    """Gray float32 in [0, 1] of a gray or RGB(A) image (uint8 or float)."""
    arr = np.asarray(img)
    arr = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
    if arr.ndim == 3:
        arr = arr[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(arr, 0.0, 1.0)


def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    arr = np.asarray(rgb)
    arr = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, -1)
    return np.clip(arr[..., :3], 0.0, 1.0)


def _disk(width: float) -> np.ndarray | None:
    r = max(0.0, (width - 1.0) / 2.0)
    if r < 0.5:
        return None
    k = int(np.ceil(r)) * 2 + 1
    yy, xx = np.mgrid[:k, :k] - k // 2
    return (np.hypot(yy, xx) <= r + 0.25).astype(np.uint8)


def _thicken(mask: np.ndarray, width: float) -> np.ndarray:
    kernel = _disk(width)
    if kernel is None:
        return mask
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def edge_lines(lab: np.ndarray, style: SynthStyle) -> np.ndarray:
    """Bool map of colour edges (Canny on each Lab channel), drawn at the style's line weight."""
    chans = [lab[..., 0] * 2.55, lab[..., 1] * 1.5 + 128.0, lab[..., 2] * 1.5 + 128.0]
    edges = np.zeros(lab.shape[:2], bool)
    for ch in chans:
        u8 = np.clip(ch, 0, 255).astype(np.uint8)
        u8 = cv2.GaussianBlur(u8, (0, 0), 0.8)
        edges |= cv2.Canny(u8, style.edge_low, style.edge_high, L2gradient=True) > 0
    return _thicken(edges, style.line_width)


def xdog_lines(gray: np.ndarray, style: SynthStyle) -> np.ndarray:
    """Bool map of xDoG detail strokes (thresholded, so they print as ink, not gray)."""
    if style.xdog_amount <= 0:
        return np.zeros(gray.shape, bool)
    g1 = cv2.GaussianBlur(gray, (0, 0), style.xdog_sigma)
    g2 = cv2.GaussianBlur(gray, (0, 0), style.xdog_sigma * 1.6)
    tau = 0.96 + 0.03 * style.xdog_amount
    d = g1 - tau * g2
    return d < style.xdog_eps * (0.5 + style.xdog_amount)


def _screen(shape: tuple[int, int], style: SynthStyle, rng: np.random.Generator) -> np.ndarray:
    """Screen function in [0, 1]: printing a coverage c means ink where screen < c."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    th = np.radians(style.tone_angle)
    off = rng.uniform(0, style.tone_pitch, 2)
    u = (xx * np.cos(th) + yy * np.sin(th) + off[0]) * (2 * np.pi / style.tone_pitch)
    v = (-xx * np.sin(th) + yy * np.cos(th) + off[1]) * (2 * np.pi / style.tone_pitch)
    if style.hatching:
        # Parallel lines: coverage c inks the band |cos| > 1 - 2c roughly.
        return (np.arccos(np.clip(np.cos(u), -1, 1)) / np.pi).astype(np.float32)
    # Round dots (AM halftone); rank-based transform so coverage is close to linear.
    s = 0.5 - 0.25 * (np.cos(u) + np.cos(v))  # 0 at dot centres
    return s.astype(np.float32)


def tone_coverage(L: np.ndarray, style: SynthStyle) -> tuple[np.ndarray, np.ndarray]:
    """Lab lightness -> (desired tone coverage in [0, 1], solid-black mask)."""
    black = L < style.black_L
    mid = np.clip((style.white_L - L) / max(style.white_L - style.black_L, 1e-3), 0.0, 1.0)  # 0 white .. 1 black
    cov = np.zeros_like(L, dtype=np.float32)
    toned = (L < style.white_L) & ~black
    if style.tone_levels == 0:
        cov = np.where(toned, style.tone_min + (style.tone_max - style.tone_min) * mid, 0.0)
    else:
        n = style.tone_levels
        level = np.minimum((mid * n).astype(np.int32), n - 1)
        dens = np.linspace(style.tone_min, style.tone_max, n).astype(np.float32)
        cov = np.where(toned, dens[level], 0.0)
    return cov.astype(np.float32), black


def _adapt_levels(L: np.ndarray, style: SynthStyle) -> SynthStyle:
    """Move the white/black thresholds into a dark painting's own range, so it still gets
    white highlights and solid shadows instead of one tone all over."""
    drawn = L[L < 92.0]
    if drawn.size < 0.05 * L.size or np.median(drawn) > 50.0:
        return style
    lo, hi = np.percentile(drawn, [6.0, 90.0])
    from dataclasses import replace

    black_L = float(min(max(style.black_L, lo), 40.0))
    white_L = float(max(min(style.white_L, hi), black_L + 15.0))
    return replace(style, black_L=black_L, white_L=white_L)


def _finish(dark: np.ndarray, style: SynthStyle, rng: np.random.Generator) -> np.ndarray:
    """Binary-ish darkness -> scanned ink in [0, 1] (1 = paper)."""
    ink = 1.0 - dark.astype(np.float32)
    if style.blur > 0.05:
        ink = cv2.GaussianBlur(ink, (0, 0), style.blur)
    ink = ink * style.paper
    if style.noise > 0:
        ink = ink + rng.normal(0.0, style.noise, ink.shape).astype(np.float32)
    ink = np.clip(ink, 0.0, 1.0)
    if style.jpeg_quality:
        ok, buf = cv2.imencode(".jpg", np.clip(ink * 255 + 0.5, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, style.jpeg_quality])
        if ok:
            ink = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
    return np.ascontiguousarray(ink, dtype=np.float32)


def _tone_and_black(rgb: np.ndarray, style: SynthStyle, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Lab, tone ink bool, solid black bool) of a colour image."""
    lab = color.rgb_to_lab(rgb).astype(np.float32)
    # Smooth the lightness so painted texture gives clean tone areas, not speckle.
    L = cv2.GaussianBlur(lab[..., 0], (0, 0), max(0.8, style.line_width * 0.6))
    L = cv2.medianBlur(np.clip(L * 2.55, 0, 255).astype(np.uint8), 5).astype(np.float32) / 2.55
    style = _adapt_levels(L, style)
    cov, black = tone_coverage(L, style)
    # Remove tiny specks of solid black (anti-aliased edges); keep real dark areas.
    black_u8 = cv2.morphologyEx(black.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    tone = _screen(L.shape, style, rng) < cov
    return lab, tone, black_u8 > 0


def manga_from_color(rgb: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Colour art (float32 HxWx3 in [0, 1]) -> synthetic B/W manga ink (float32 HxW, 1 = paper)."""
    rgb = _as_rgb(rgb)
    style = sample_style(rgb.shape[:2], rng, strength)
    lab, tone, black = _tone_and_black(rgb, style, rng)
    lines = edge_lines(lab, style) | xdog_lines(lab[..., 0] / 100.0, style)
    dark = lines | black | tone
    return _finish(dark, style, rng)


def manga_from_pair(line_art: np.ndarray, rgb: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Real line art (gray or RGB, black lines on white) + its colour version -> manga ink.

    The lines are the artist's own (thresholded so they print as ink, weight varied a little);
    solid blacks and screentone come from the colour as in `manga_from_color`.
    """
    rgb = _as_rgb(rgb)
    gray = to_gray(line_art)
    if gray.shape != rgb.shape[:2]:
        gray = cv2.resize(gray, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_AREA)
    style = sample_style(rgb.shape[:2], rng, strength)
    _, tone, black = _tone_and_black(rgb, style, rng)
    lines = gray < 0.55
    extra = rng.random() < 0.4 * strength
    if extra:  # heavier pen
        lines = _thicken(lines, 2.0 + float(rng.random()) * max(1.0, max(rgb.shape[:2]) / 1000.0))
    # Tone stops at the outlines (artists cut screentone along the lines).
    dark = lines | black | (tone & ~lines)
    return _finish(dark, style, rng)
