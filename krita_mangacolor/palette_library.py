"""The palette library of a document: named palettes (the backend's `mangacolor-palette` JSON, see
backend/palettes.py) kept inside the .kra so they travel with the document, and exported to / imported from
.json files so a character keeps its colours across a chapter.

Stored as the document annotation `mangacolor-palettes` (doc_store.py):
    {"format": "mangacolor-palette-library", "version": 1, "palettes": [palette, ...]}   (in saving order)
A file holds one palette (the backend's own format, what `python -m backend palette save` writes and
`colorize --palette` reads) or a library (several). Files come from users: every palette is checked here the
way the backend checks it (format, name, 216-bin histogram, #rrggbb swatches) and a bad one is a UserError.

Pure Python, no Qt, no Krita.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional

from . import doc_store
from .errors import UserError

ANNOTATION_TYPE = "mangacolor-palettes"
ANNOTATION_DESCRIPTION = "MangaColor: the document's palette library (named palettes)"
PALETTE_FORMAT = "mangacolor-palette"
LIBRARY_FORMAT = "mangacolor-palette-library"
VERSION = 1
HISTOGRAM_BINS = 216
MAX_NAME = 80
MAX_FILE_BYTES = 4 * 1024 * 1024
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def check_palette(value: Any, where: str = "the palette") -> dict:
    """A palette JSON object, checked; returns a clean copy. Raises UserError saying what is wrong."""
    if not isinstance(value, dict) or value.get("format") != PALETTE_FORMAT:
        raise UserError(f"{where} is not a MangaColor palette (\"format\": \"{PALETTE_FORMAT}\" is missing)")
    name = str(value.get("name") or "").strip()
    if not name or len(name) > MAX_NAME:
        raise UserError(f"{where} has no name (or one longer than {MAX_NAME} characters)")
    hist = value.get("histogram")
    if not isinstance(hist, list) or len(hist) != HISTOGRAM_BINS:
        raise UserError(f"the palette '{name}' has no {HISTOGRAM_BINS}-bin histogram")
    try:
        hist = [float(v) for v in hist]
    except (TypeError, ValueError):
        raise UserError(f"the palette '{name}' has a histogram that is not numbers") from None
    if any(v < 0 or v != v for v in hist) or sum(hist) <= 0:
        raise UserError(f"the palette '{name}' has an empty or negative histogram")
    swatches = value.get("swatches") or []
    if not isinstance(swatches, list):
        raise UserError(f"the palette '{name}' has swatches that are not a list")
    for s in swatches:
        if not isinstance(s, dict) or not _HEX.match(str(s.get("rgb", ""))):
            raise UserError(f"the palette '{name}' has a swatch that is not {{\"rgb\": \"#rrggbb\"}}: {str(s)[:60]}")
    out = dict(value)
    out["name"] = name
    return out


def swatch_colours(palette: dict) -> list[tuple[int, int, int]]:
    """The palette's swatches as (r, g, b), most used first (for the docker's preview)."""
    out = []
    for s in palette.get("swatches") or []:
        text = str(s.get("rgb", ""))
        if _HEX.match(text):
            out.append((int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)))
    return out


# --- the library inside a document ---------------------------------------------------------------------


def load(doc: Any) -> list[dict]:
    """The document's palettes, in their order; unreadable entries are left out (never an error)."""
    data = doc_store.load_json(doc, ANNOTATION_TYPE)
    if not isinstance(data, dict) or not isinstance(data.get("palettes"), list):
        return []
    out = []
    for p in data["palettes"]:
        try:
            out.append(check_palette(p))
        except UserError:
            continue
    return out


def names(doc: Any) -> list[str]:
    return [p["name"] for p in load(doc)]


def get(doc: Any, name: str) -> Optional[dict]:
    for p in load(doc):
        if p["name"] == name:
            return p
    return None


def save(doc: Any, palettes: list[dict]) -> bool:
    value = {"format": LIBRARY_FORMAT, "version": VERSION, "palettes": [check_palette(p) for p in palettes]}
    return doc_store.save_json(doc, ANNOTATION_TYPE, ANNOTATION_DESCRIPTION, value)


def add(doc: Any, palette: dict) -> dict:
    """Add (or replace, by name) a palette in the document's library. Returns the stored palette."""
    palette = check_palette(palette)
    kept = [p for p in load(doc) if p["name"] != palette["name"]]
    save(doc, kept + [palette])
    return palette


def remove(doc: Any, name: str) -> bool:
    palettes = load(doc)
    kept = [p for p in palettes if p["name"] != name]
    if len(kept) == len(palettes):
        return False
    save(doc, kept)
    return True


def rename(palette: dict, name: str) -> dict:
    out = dict(palette)
    out["name"] = (name or "").strip() or palette.get("name", "")
    return check_palette(out)


# --- files ---------------------------------------------------------------------------------------------


def export_file(path: str, palettes: list[dict]) -> None:
    """One palette: the backend's own file format; several: a library file."""
    if not palettes:
        raise UserError("There is no palette to export.")
    value: Any = check_palette(palettes[0]) if len(palettes) == 1 else {
        "format": LIBRARY_FORMAT, "version": VERSION, "palettes": [check_palette(p) for p in palettes]
    }
    try:
        Path(path).write_text(json.dumps(value, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"Could not write {path}: {exc.strerror or exc}") from None


def import_file(path: str) -> list[dict]:
    """The palettes of a file (one palette or a library). Raises UserError for anything else."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise UserError(f"{p.name} is too large to be a palette file")
        value = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"Could not read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError):
        raise UserError(f"{p.name} is not a JSON palette file") from None
    if isinstance(value, dict) and value.get("format") == LIBRARY_FORMAT:
        items = value.get("palettes")
        if not isinstance(items, list) or not items:
            raise UserError(f"{p.name} holds no palettes")
        return [check_palette(v, f"palette {i + 1} of {p.name}") for i, v in enumerate(items)]
    return [check_palette(value, p.name)]
