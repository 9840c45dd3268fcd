"""The command line's colour sources: `--reference REF[:WEIGHT]`, `--palette FILE.json`, `--panels
auto|FILE.json` (for `colorize` and `batch`), and `python -m backend palette save`.

A panels file is what `python -m backend panels PAGE --json` writes (`panels.panels_to_json`), and
each panel in it may carry its own colours; paths are relative to the file::

    {"width": 1200, "height": 1700, "panels": [
      {"polygon": [[0, 0], [600, 0], [600, 800], [0, 800]],
       "references": ["hero.png", "hero_coat.png"], "reference_weights": [2, 1],
       "palettes": ["villain.json"]},
      ...]}

A panel without references or palettes uses the page's (`--reference`, `--palette`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .imageio import ImageError, load_hints, load_reference
from .palettes import Palette, PaletteError, load_palette, palette_from_hints, palette_from_json, palette_from_rgba, save_palette
from .panels import PanelsError, panels_from_json
from .request import ColourSources, PanelInput, RequestError
from .userfiles import read_small_text

MAX_PANELS_FILE_BYTES = 4 * 1024 * 1024


def split_reference(text: str) -> tuple[Path, float | None]:
    """`REF[:WEIGHT]` -> (path, weight or None). The part after the last ':' is a weight only when it
    is a number and the whole text is not an existing file (`C:\\refs\\a.png`, `a:2.png` stay paths)."""
    path, sep, tail = text.rpartition(":")
    if sep and path and not Path(text).exists():
        try:
            weight = float(tail)
        except ValueError:
            return Path(text), None
        if not np.isfinite(weight) or weight <= 0:
            raise argparse.ArgumentTypeError(f"reference weight must be a positive number, not {tail!r} (in {text!r})")
        return Path(path), weight
    return Path(text), None


def add_colour_flags(p: argparse.ArgumentParser, what: str = "the page") -> None:
    p.add_argument(
        "--reference", type=split_reference, action="append", default=[], metavar="REF[:WEIGHT]",
        help=f"colour reference image for {what} (repeatable); several are blended by weight (default 1), "
        "Comicolorization's histogram blending",
    )
    p.add_argument(
        "--palette", type=Path, action="append", default=[], metavar="FILE.json",
        help=f"a saved palette (python -m backend palette save) for {what} (repeatable); blended like a reference",
    )


def sources_from_args(references: list[tuple[Path, float | None]], palettes: list[Path]) -> ColourSources:
    """The page's colour sources from `--reference` and `--palette` (raises ImageError, RequestError)."""
    images = [load_reference(path) for path, _ in references]
    weights = [1.0 if w is None else w for _, w in references] if any(w is not None for _, w in references) else None
    return ColourSources(tuple(images), tuple(weights) if weights else None, tuple(_load_palette(p) for p in palettes))


def _load_palette(path: Path) -> Palette:
    try:
        return load_palette(path)
    except PaletteError as exc:
        raise RequestError(str(exc)) from None


def _panel_sources(item: dict[str, Any], folder: Path, where: str) -> ColourSources | None:
    refs = item.get("references", [])
    weights = item.get("reference_weights")
    pals = item.get("palettes", [])
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise RequestError(f"{where}: 'references' is a list of image paths")
    if not isinstance(pals, list):
        raise RequestError(f"{where}: 'palettes' is a list of palette files or palette objects")
    if weights is not None and not isinstance(weights, list):
        raise RequestError(f"{where}: 'reference_weights' is a list of numbers")
    if not refs and not pals:
        if weights:
            raise RequestError(f"{where}: reference_weights without references")
        return None
    palettes = []
    for p in pals:
        try:
            palettes.append(load_palette(folder / p) if isinstance(p, str) else palette_from_json(p))
        except PaletteError as exc:
            raise RequestError(f"{where}: {exc}") from None
    images = [load_reference(folder / r, f"{where} reference {i + 1}") for i, r in enumerate(refs)]
    sources = ColourSources(tuple(images), tuple(weights) if weights is not None else None, tuple(palettes))
    sources.validate(f"{where}: ")
    return sources


def load_panels(spec: str, ink: np.ndarray) -> list[PanelInput]:
    """`--panels auto` (detected on the ink) or a panels file, checked against the page's size."""
    from .colour_features import auto_panels

    if spec == "auto":
        try:
            return auto_panels(ink)
        except (PanelsError, ValueError) as exc:
            raise RequestError(f"panels: {exc}") from None
    path = Path(spec)
    text = read_small_text(path, MAX_PANELS_FILE_BYTES, "panels file", RequestError, " (or use --panels auto)")
    try:
        panels, _ = panels_from_json(text, ink.shape)
    except PanelsError as exc:
        raise RequestError(str(exc)) from None
    items = json.loads(text)["panels"]
    return [
        PanelInput(polygon=list(panel.polygon), colours=_panel_sources(item if isinstance(item, dict) else {}, path.parent,
                                                                        f"panels file: panel {i + 1}"))
        for i, (panel, item) in enumerate(zip(panels, items))
    ]


# ----------------------------------------------------------------------------- palette save


def palette_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m backend palette",
        description="Save the colours of a reference, of hints, or of a selection of a coloured page as a named palette "
        "(swatches and the 216-bin colour feature, a small JSON file), to apply with --palette or the plugin.",
    )
    sub = p.add_subparsers(dest="action", required=True)
    s = sub.add_parser("save", help="save a palette")
    s.add_argument("name", help="the palette's name (the character, the outfit...)")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--from", dest="image", type=Path, help="a colour picture, or a coloured page with --mask; "
                     "transparent pixels are left out")
    src.add_argument("--hints", type=Path, help="a hint layer (RGBA): every painted colour is a swatch")
    s.add_argument("--mask", type=Path, help="with --from: only the pixels white (> 50%%) in this gray image (a selection)")
    s.add_argument("-o", "--output", type=Path, help="the palette file (default NAME.json)")
    return p


def _default_file(name: str) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "palette"
    return Path(stem[:80] + ".json")


def cmd_palette(argv: list[str]) -> int:
    p = palette_parser()
    args = p.parse_args(argv)
    if args.mask is not None and args.image is None:
        p.error("--mask goes with --from")
    out = args.output or _default_file(args.name)
    if out.suffix.lower() != ".json" or out.is_dir():
        p.error(f"-o {out}: a palette is a .json file")
    try:
        if args.hints is not None:
            palette = palette_from_hints(load_hints(args.hints), args.name)
        else:
            rgba = load_hints(args.image, "image")
            source = "reference"
            if args.mask is not None:
                mask = np.asarray(load_hints(args.mask, "mask")[..., :3].mean(-1) > 127)
                if mask.shape != rgba.shape[:2]:
                    raise PaletteError("the mask must be the size of the image")
                rgba = rgba.copy()
                rgba[..., 3] = np.where(mask, rgba[..., 3], 0)
                source = "selection"
            palette = palette_from_rgba(rgba, args.name, source)
        out.parent.mkdir(parents=True, exist_ok=True)
        save_palette(palette, out)
    except (ImageError, PaletteError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    swatches = " ".join("#%02x%02x%02x" % tuple(int(c) for c in s) for s in palette.swatches[:8])
    print(f"wrote {out}: palette {palette.name!r} ({palette.source}), {len(palette.swatches)} swatches {swatches}")
    return 0
