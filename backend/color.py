"""Colour science shared by the pipeline, training and the bench: sRGB <-> CIE Lab (D65),
CIEDE2000, and Comicolorization's 216-bin (6x6x6 RGB) histogram and palette."""

from __future__ import annotations

import numpy as np

_RGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
    dtype=np.float64,
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_WHITE_D65 = np.array([0.950456, 1.0, 1.088754])

HIST_BINS_PER_CHANNEL = 6
HIST_SIZE = HIST_BINS_PER_CHANNEL**3  # 216


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb, dtype=np.float64)
    return np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0.0, None)
    return np.where(lin > 0.0031308, 1.055 * np.power(lin, 1 / 2.4) - 0.055, 12.92 * lin)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] (..., 3) -> CIE Lab (D65), float64."""
    xyz = srgb_to_linear(rgb) @ _RGB_TO_XYZ.T / _WHITE_D65
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    L = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIE Lab (D65) -> sRGB in [0, 1] (clipped)."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    f = np.stack([fx, fy, fz], axis=-1)
    xyz = np.where(f > 0.206893, f**3, (f - 16.0 / 116.0) / 7.787) * _WHITE_D65
    return np.clip(linear_to_srgb(xyz @ _XYZ_TO_RGB.T), 0.0, 1.0)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray, kL: float = 1.0, kC: float = 1.0, kH: float = 1.0) -> np.ndarray:
    """CIEDE2000 colour difference (Sharma, Wu & Dalal 2005), vectorised over leading axes."""
    lab1 = np.asarray(lab1, dtype=np.float64)
    lab2 = np.asarray(lab2, dtype=np.float64)
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    C1 = np.hypot(a1, b1)
    C2 = np.hypot(a2, b2)
    Cbar7 = ((C1 + C2) / 2.0) ** 7
    G = 0.5 * (1.0 - np.sqrt(Cbar7 / (Cbar7 + 25.0**7)))
    a1p, a2p = (1.0 + G) * a1, (1.0 + G) * a2
    C1p, C2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360.0
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360.0
    h1p = np.where((a1p == 0) & (b1 == 0), 0.0, h1p)
    h2p = np.where((a2p == 0) & (b2 == 0), 0.0, h2p)

    dLp = L2 - L1
    dCp = C2p - C1p
    zero_chroma = (C1p * C2p) == 0
    dh = h2p - h1p
    dh = np.where(dh > 180.0, dh - 360.0, np.where(dh < -180.0, dh + 360.0, dh))
    dh = np.where(zero_chroma, 0.0, dh)
    dHp = 2.0 * np.sqrt(C1p * C2p) * np.sin(np.radians(dh) / 2.0)

    Lbar = (L1 + L2) / 2.0
    Cbar = (C1p + C2p) / 2.0
    hsum = h1p + h2p
    habs = np.abs(h1p - h2p)
    hbar = np.where(habs > 180.0, np.where(hsum < 360.0, (hsum + 360.0) / 2.0, (hsum - 360.0) / 2.0), hsum / 2.0)
    hbar = np.where(zero_chroma, hsum, hbar)

    T = (
        1.0
        - 0.17 * np.cos(np.radians(hbar - 30.0))
        + 0.24 * np.cos(np.radians(2.0 * hbar))
        + 0.32 * np.cos(np.radians(3.0 * hbar + 6.0))
        - 0.20 * np.cos(np.radians(4.0 * hbar - 63.0))
    )
    dtheta = 30.0 * np.exp(-(((hbar - 275.0) / 25.0) ** 2))
    Cbar7p = Cbar**7
    RC = 2.0 * np.sqrt(Cbar7p / (Cbar7p + 25.0**7))
    SL = 1.0 + 0.015 * (Lbar - 50.0) ** 2 / np.sqrt(20.0 + (Lbar - 50.0) ** 2)
    SC = 1.0 + 0.045 * Cbar
    SH = 1.0 + 0.015 * Cbar * T
    RT = -np.sin(np.radians(2.0 * dtheta)) * RC
    tL, tC, tH = dLp / (kL * SL), dCp / (kC * SC), dHp / (kH * SH)
    return np.sqrt(tL**2 + tC**2 + tH**2 + RT * tC * tH)


def histogram216(rgb: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Normalised 6x6x6 RGB histogram of an image (uint8 or float in [0, 1])."""
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8:
        arr = np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)
    q = (arr[..., :3].astype(np.int32) * HIST_BINS_PER_CHANNEL) // 256
    idx = (q[..., 0] * HIST_BINS_PER_CHANNEL + q[..., 1]) * HIST_BINS_PER_CHANNEL + q[..., 2]
    idx = idx[mask] if mask is not None else idx.ravel()
    hist = np.bincount(idx.ravel(), minlength=HIST_SIZE).astype(np.float32)
    total = hist.sum()
    return hist / total if total > 0 else hist


def palette216(hist: np.ndarray, min_share: float = 0.002) -> np.ndarray:
    """Comicolorization's binary palette: which of the 216 bins the reference uses at all."""
    return (np.asarray(hist) >= min_share).astype(np.float32)


def blend_histograms(hists: list[np.ndarray], weights: list[float] | None = None) -> np.ndarray:
    """Blend several references' histograms (Comicolorization's multi-reference blending)."""
    if not hists:
        return np.zeros(HIST_SIZE, np.float32)
    w = np.ones(len(hists)) if weights is None else np.asarray(weights, dtype=np.float64)
    out = sum(wi * h for wi, h in zip(w, hists)) / w.sum()
    return (out / max(out.sum(), 1e-12)).astype(np.float32)


def histogram_intersection(h1: np.ndarray, h2: np.ndarray) -> float:
    return float(np.minimum(h1, h2).sum())
