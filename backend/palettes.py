"""Colour features a colorist keeps: named palettes, several weighted references, and Comicolorization's
histogram adjustment.

A *palette* is what the network and the palette stage take from a reference, saved so it can be
applied again without the picture: the 216-bin (6x6x6 RGB) histogram (Comicolorization's colour
feature) and a few swatches (the main colours, for the palette stage and for people). It is saved
from a reference image, from the hints a colorist painted, or from a selection of a page already
coloured, and stored as a small JSON file (or inside a .kra by the plugin) so a character keeps
the same colours across a chapter.

File format (``"format": "mangacolor-palette"``, version 1)::

    {"format": "mangacolor-palette", "version": 1, "name": "Pinoko",
     "source": "reference" | "hints" | "selection",
     "swatches": [{"rgb": "#d8a070", "share": 0.41}, ...],   # at most MAX_SWATCHES
     "histogram": [216 numbers >= 0],                      # renormalised on load
     "weight": 1.0}                                        # optional, > 0: its share when blended with others

Files come from users and other programs: every field is checked, and a bad one is a
`PaletteError` that says what is wrong, never a crash.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import color
from .userfiles import read_small_text
from .reference import SOLID_HINT_ALPHA, reference_colours

FORMAT = "mangacolor-palette"
VERSION = 1
MAX_SWATCHES = 32
MAX_NAME = 80
MAX_FILE_BYTES = 256 * 1024  # a palette is ~5 KB; anything far larger is not one
SOURCES = ("reference", "hints", "selection")
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


class PaletteError(ValueError):
    """A palette that cannot be read or built; the message is meant for the user."""


@dataclass(frozen=True)
class Palette:
    name: str
    histogram: np.ndarray  # float32 (216,), sums to 1
    swatches: np.ndarray  # uint8 (N, 3) sRGB, N <= MAX_SWATCHES, most used first
    shares: np.ndarray  # float32 (N,): each swatch's share of the coloured pixels
    source: str = "reference"
    weight: float = 1.0  # its weight when blended with references and other palettes (> 0)

    def swatches_lab(self) -> np.ndarray:
        """The swatches in CIE Lab, as the palette stage (`reference.match_palette`) takes them."""
        if len(self.swatches) == 0:
            return np.zeros((0, 3))
        return color.rgb_to_lab(self.swatches.astype(np.float64) / 255.0)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "source": self.source,
            "swatches": [
                {"rgb": "#%02x%02x%02x" % tuple(int(c) for c in rgb), "share": round(float(s), 4)}
                for rgb, s in zip(self.swatches, self.shares)
            ],
            "histogram": [round(float(v), 6) for v in self.histogram],
        }
        if self.weight != 1.0:
            out["weight"] = float(self.weight)
        return out


def _normalised(hist: np.ndarray) -> np.ndarray:
    total = float(hist.sum())
    return (hist / total).astype(np.float32) if total > 0 else hist.astype(np.float32)


def _swatches_with_shares(lab_centres: np.ndarray, lab_pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres (Lab) -> sRGB uint8 swatches ordered by how many pixels each one is nearest to."""
    if len(lab_centres) == 0:
        return np.zeros((0, 3), np.uint8), np.zeros(0, np.float32)
    nearest = np.argmin(((lab_pixels[:, None, :] - lab_centres[None]) ** 2).sum(-1), axis=1)
    shares = np.bincount(nearest, minlength=len(lab_centres)).astype(np.float64)
    shares /= max(shares.sum(), 1.0)
    rgb = np.clip(np.round(color.lab_to_rgb(lab_centres) * 255.0), 0, 255).astype(np.uint8)
    rgb, inverse = np.unique(rgb, axis=0, return_inverse=True)  # k-means on few colours repeats a centre
    shares = np.bincount(inverse.ravel(), weights=shares, minlength=len(rgb))
    order = np.argsort(-shares, kind="stable")
    return rgb[order], shares[order].astype(np.float32)


def _checked_name(name: str) -> str:
    name = str(name).strip()
    if not name:
        raise PaletteError("a palette needs a name")
    if len(name) > MAX_NAME:
        raise PaletteError(f"a palette name has at most {MAX_NAME} characters")
    return name


def palette_from_image(rgb: np.ndarray, name: str, mask: np.ndarray | None = None, source: str = "reference") -> Palette:
    """A reference picture (uint8 HxWx3) or the coloured pixels under `mask` (a selection of a page
    already coloured): its histogram, exactly as the network reads that picture as a reference,
    and its main colours."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.size == 0 or rgb.dtype != np.uint8:
        raise PaletteError("a palette is taken from a non-empty 8-bit RGB image")
    rgb = rgb[..., :3]
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != rgb.shape[:2]:
            raise PaletteError("the selection must be the size of the image")
        if not mask.any():
            raise PaletteError("the selection is empty: select the part whose colours to keep")
        pixels = rgb[mask][None]  # 1 x N x 3: an image of the selected pixels only
    else:
        pixels = rgb
    hist = color.histogram216(pixels)
    centres = reference_colours([pixels])
    lab = color.rgb_to_lab(pixels.reshape(-1, 3)[:: max(1, pixels.size // 3 // 20000)].astype(np.float64) / 255.0)
    swatches, shares = _swatches_with_shares(centres, lab)
    return Palette(_checked_name(name), hist, swatches, shares, source)


def palette_from_rgba(rgba: np.ndarray, name: str, source: str = "reference") -> Palette:
    """An RGBA image as the plugin sends it (a reference layer, a selection of a coloured page with
    everything outside it transparent, or a hint layer): transparent pixels are not part of it."""
    rgba = np.asarray(rgba)
    if source not in SOURCES:
        raise PaletteError(f"palette source must be one of {', '.join(SOURCES)}")
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8 or rgba.size == 0:
        raise PaletteError("a palette is taken from a non-empty 8-bit RGBA image")
    if source == "hints":
        return palette_from_hints(rgba, name)
    alpha = rgba[..., 3] > 0
    if not alpha.any():
        raise PaletteError("the image is fully transparent: nothing to take colours from")
    return palette_from_image(np.ascontiguousarray(rgba[..., :3]), name, None if alpha.all() else alpha, source)


def palette_from_hints(hints: np.ndarray, name: str) -> Palette:
    """The colours a colorist painted on a hint layer (uint8 HxWx4, alpha > 0 = hint): every
    distinct solid colour is a swatch (the most used first), the histogram counts hint pixels."""
    hints = np.asarray(hints)
    if hints.ndim != 3 or hints.shape[2] != 4 or hints.dtype != np.uint8:
        raise PaletteError("hints must be an 8-bit RGBA image")
    solid = hints[..., 3] >= SOLID_HINT_ALPHA
    if not solid.any():
        raise PaletteError("the hint layer is empty: paint the character's colours on it first")
    pixels = hints[..., :3][solid]
    unique, counts = np.unique(pixels, axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:MAX_SWATCHES]
    shares = (counts[order] / counts[order].sum()).astype(np.float32)
    return Palette(_checked_name(name), color.histogram216(pixels[None]), unique[order].astype(np.uint8), shares, "hints")


def palette_from_json(value: Any) -> Palette:
    """A parsed palette file -> Palette, every field checked."""
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise PaletteError(f'not a MangaColor palette (expected "format": "{FORMAT}")')
    if value.get("version") != VERSION:
        raise PaletteError(f"palette version {value.get('version')!r} is not supported (this backend reads {VERSION})")
    name = _checked_name(value.get("name", ""))
    source = value.get("source", "reference")
    if source not in SOURCES:
        raise PaletteError(f"palette source must be one of {', '.join(SOURCES)}")
    hist = value.get("histogram")
    if not isinstance(hist, list) or len(hist) != color.HIST_SIZE:
        raise PaletteError(f"a palette's histogram has {color.HIST_SIZE} numbers")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in hist):
        raise PaletteError("a palette's histogram holds numbers only")
    hist_arr = np.asarray(hist, np.float64)
    if not np.all(np.isfinite(hist_arr)) or (hist_arr < 0).any() or hist_arr.sum() <= 0:
        raise PaletteError("a palette's histogram must be finite, non-negative and not all zero")
    swatches = value.get("swatches", [])
    if not isinstance(swatches, list) or len(swatches) > MAX_SWATCHES:
        raise PaletteError(f"a palette has a list of at most {MAX_SWATCHES} swatches")
    rgbs, shares = [], []
    for s in swatches:
        hex_rgb = s.get("rgb") if isinstance(s, dict) else None
        share = s.get("share", 0.0) if isinstance(s, dict) else None
        if not isinstance(hex_rgb, str) or not _HEX.match(hex_rgb):
            raise PaletteError('each swatch is {"rgb": "#rrggbb", "share": number}')
        if not isinstance(share, (int, float)) or isinstance(share, bool) or not 0.0 <= share <= 1.0:
            raise PaletteError("a swatch's share is a number between 0 and 1")
        rgbs.append([int(hex_rgb[i : i + 2], 16) for i in (1, 3, 5)])
        shares.append(float(share))
    weight = value.get("weight", 1.0)
    if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not np.isfinite(weight) or weight <= 0:
        raise PaletteError("a palette's weight is a positive number")
    return Palette(
        name,
        _normalised(hist_arr),
        np.asarray(rgbs, np.uint8).reshape(-1, 3),
        np.asarray(shares, np.float32),
        source,
        float(weight),
    )


def load_palette(path: Path) -> Palette:
    path = Path(path)
    text = read_small_text(path, MAX_FILE_BYTES, "palette file", PaletteError)
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise PaletteError(f"{path.name} is not valid JSON: {exc}") from None
    return palette_from_json(value)


def save_palette(palette: Palette, path: Path) -> None:
    Path(path).write_text(json.dumps(palette.to_json(), indent=1) + "\n", encoding="utf-8")


def adjust_dominant(hist: np.ndarray, scale: float) -> np.ndarray:
    """Comicolorization's histogram adjustment: scale the dominant bin by `scale` (0..1; 1 = as is)
    and renormalise, so a reference's largest colour (often its background) does not flood the page
    while the rest keep their proportions."""
    hist = np.asarray(hist, np.float32)
    if scale >= 1.0 or hist.sum() <= 0:
        return hist
    out = hist.copy()
    out[int(np.argmax(out))] *= max(0.0, float(scale))
    return _normalised(out) if out.sum() > 0 else hist


def blend_features(histograms: list[np.ndarray], weights: list[float] | None = None) -> np.ndarray:
    """Several references (or palettes) as one colour feature: their histograms blended by weight,
    Comicolorization's multi-reference blending. Weights must be > 0."""
    if weights is not None:
        if len(weights) != len(histograms):
            raise PaletteError("one weight per reference")
        if any(not np.isfinite(w) or w <= 0 for w in weights):
            raise PaletteError("reference weights must be positive numbers")
    return color.blend_histograms(histograms, weights)
