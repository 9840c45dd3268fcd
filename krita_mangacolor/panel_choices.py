"""What the colorist chose per panel and for the whole page, kept in the document (doc_store.py) as the
annotation `mangacolor-panels`:

    {"version": 1,
     "page_palettes": ["Pinoko", ...],                          # palettes applied to the whole page
     "panels": {"Panel 2": {"kind": "palette", "name": "Pinoko"},
                "Panel 3": {"kind": "reference", "uuid": "...", "name": "Sky photo"}}}

A panel is named by its shape's name in the Panels layer (panels_layer.py); a panel without a choice uses
the page's references and palettes. Pure Python, no Qt, no Krita.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import doc_store
from .roles import node_uid, uid_text

ANNOTATION_TYPE = "mangacolor-panels"
ANNOTATION_DESCRIPTION = "MangaColor: the reference layer or palette chosen for each panel, and the page's palettes"
VERSION = 1
PAGE, REFERENCE, PALETTE = "page", "reference", "palette"


@dataclass(frozen=True)
class PanelChoice:
    kind: str = PAGE  # PAGE (use the page's), REFERENCE (a layer) or PALETTE (a palette of the library)
    name: str = ""  # the layer's or the palette's name
    uid: str = ""  # the reference layer's uniqueId

    def to_json(self) -> dict:
        if self.kind == REFERENCE:
            return {"kind": REFERENCE, "uuid": self.uid, "name": self.name}
        return {"kind": PALETTE, "name": self.name}

    @classmethod
    def from_json(cls, value: Any) -> "PanelChoice":
        if not isinstance(value, dict):
            return cls()
        if value.get("kind") == REFERENCE and (value.get("uuid") or value.get("name")):
            return cls(REFERENCE, str(value.get("name") or ""), uid_text(value.get("uuid") or ""))
        if value.get("kind") == PALETTE and value.get("name"):
            return cls(PALETTE, str(value["name"]))
        return cls()

    @classmethod
    def layer(cls, node: Any) -> "PanelChoice":
        return cls(REFERENCE, node.name(), node_uid(node))

    @classmethod
    def palette(cls, name: str) -> "PanelChoice":
        return cls(PALETTE, name)

    def describe(self) -> str:
        if self.kind == REFERENCE:
            return f"reference layer '{self.name}'"
        if self.kind == PALETTE:
            return f"palette '{self.name}'"
        return "the page's colours"


@dataclass
class Choices:
    page_palettes: list[str] = field(default_factory=list)
    panels: dict[str, PanelChoice] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "version": VERSION,
            "page_palettes": list(self.page_palettes),
            "panels": {k: v.to_json() for k, v in sorted(self.panels.items()) if v.kind != PAGE},
        }

    def of(self, panel_name: str) -> PanelChoice:
        return self.panels.get(panel_name, PanelChoice())


def load(doc: Any) -> Choices:
    data = doc_store.load_json(doc, ANNOTATION_TYPE)
    if not isinstance(data, dict):
        return Choices()
    page = [str(n) for n in data.get("page_palettes") or [] if isinstance(n, str) and n]
    panels = {}
    if isinstance(data.get("panels"), dict):
        for k, v in data["panels"].items():
            c = PanelChoice.from_json(v)
            if c.kind != PAGE:
                panels[str(k)] = c
    return Choices(page, panels)


def save(doc: Any, choices: Choices) -> bool:
    return doc_store.save_json(doc, ANNOTATION_TYPE, ANNOTATION_DESCRIPTION, choices.to_json())


def set_panel(doc: Any, panel_name: str, choice: PanelChoice) -> Choices:
    choices = load(doc)
    if choice.kind == PAGE:
        choices.panels.pop(panel_name, None)
    else:
        choices.panels[panel_name] = choice
    save(doc, choices)
    return choices


def set_page_palettes(doc: Any, names: list[str]) -> Choices:
    choices = load(doc)
    choices.page_palettes = [n for n in dict.fromkeys(names) if n]
    save(doc, choices)
    return choices


def forget_palette(doc: Any, name: str) -> None:
    """A palette removed from the library is no longer applied anywhere."""
    choices = load(doc)
    choices.page_palettes = [n for n in choices.page_palettes if n != name]
    choices.panels = {k: v for k, v in choices.panels.items() if not (v.kind == PALETTE and v.name == name)}
    save(doc, choices)
