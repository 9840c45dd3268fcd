"""Which layer plays which role (ink, hints, reference, draft) in a document, remembered in the document itself.

The choice of each role is "auto" (found by name, see below), "none" (hints/reference only: do not use one)
or one layer, identified by its uniqueId (which Krita keeps in the .kra) and, as a fallback, its name.

The choices are stored as a small JSON annotation of the document (Document.setAnnotation, Krita >= 4.4):
Krita 5.1.5 writes it into the .kra (`<image>/annotations/mangacolor-roles`) and reads it back on opening,
checked by the real-Krita test. Where the annotation API is missing, choices are kept for the session only.

Pure Python (no Qt, no Krita): nodes and documents are duck-typed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Optional

from . import doc_store

ROLES = ("ink", "hints", "reference", "draft")
ANNOTATION_TYPE = "mangacolor-roles"
ANNOTATION_DESCRIPTION = "MangaColor: the ink, hint, reference and draft layers chosen in the MangaColor docker"
FORMAT_VERSION = 1

AUTO, NONE, LAYER = "auto", "none", "layer"

# "Ink", "inks", "Inking 2", "Lineart", "line art", "Line-Art", "lines", "Linework": the usual names of a line layer.
_INK_NAME = re.compile(r"^(ink|inks|inking|lineart|line art|linework|line work|lines?|outlines?)(\s*\(.*\)|\s*\d+)?$")


def normalize_name(name: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[_\-.]+", " ", (name or "").strip().lower())).strip()


def looks_like_ink(name: str) -> bool:
    """True for the usual names of a line-art layer ('Ink', 'Lineart', 'line art 2', 'Inking (scan)')."""
    return bool(_INK_NAME.match(normalize_name(name)))


def uid_text(uid: Any) -> str:
    """A node's uniqueId() as a plain lower-case string without braces (QUuid or uuid.UUID)."""
    if uid is None:
        return ""
    text = uid.toString() if hasattr(uid, "toString") else str(uid)
    return text.strip().strip("{}").lower()


def node_uid(node: Any) -> str:
    return uid_text(node.uniqueId())


@dataclass(frozen=True)
class Choice:
    kind: str = AUTO  # AUTO, NONE or LAYER
    uid: str = ""
    name: str = ""

    def to_json(self) -> Any:
        if self.kind == LAYER:
            return {"uuid": self.uid, "name": self.name}
        return self.kind

    @classmethod
    def from_json(cls, value: Any, role: str) -> "Choice":
        if value == NONE and role != "ink":
            return cls(NONE)
        if isinstance(value, dict) and (value.get("uuid") or value.get("name")):
            return cls(LAYER, uid_text(value.get("uuid") or ""), str(value.get("name") or ""))
        return cls(AUTO)

    @classmethod
    def layer(cls, node: Any) -> "Choice":
        return cls(LAYER, node_uid(node), node.name())


def default_choices() -> dict[str, Choice]:
    return {role: Choice() for role in ROLES}


def encode(choices: dict[str, Choice]) -> bytes:
    data = {"version": FORMAT_VERSION}
    for role in ROLES:
        data[role] = choices.get(role, Choice()).to_json()
    return json.dumps(data, sort_keys=True).encode("utf-8")


def decode(raw: Optional[bytes]) -> dict[str, Choice]:
    """Stored bytes -> choices; anything unreadable means 'all auto' (never an error for the user)."""
    choices = default_choices()
    if not raw:
        return choices
    try:
        data = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return choices
    if not isinstance(data, dict):
        return choices
    for role in ROLES:
        if role in data:
            choices[role] = Choice.from_json(data[role], role)
    return choices


# --- storage in the document (doc_store.py: an annotation that travels with the .kra) ------------------


def load(doc: Any) -> dict[str, Choice]:
    return decode(doc_store.load_bytes(doc, ANNOTATION_TYPE))


def save(doc: Any, choices: dict[str, Choice]) -> bool:
    """Store the choices in the document. Returns True when they travel with the .kra."""
    return doc_store.save_bytes(doc, ANNOTATION_TYPE, ANNOTATION_DESCRIPTION, encode(choices))


def set_choice(doc: Any, role: str, choice: Choice) -> dict[str, Choice]:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if role == "ink" and choice.kind == NONE:
        raise ValueError("the ink cannot be 'none'")
    choices = load(doc)
    choices[role] = choice
    save(doc, choices)
    try:
        doc.setModified(True)  # the choice is part of the document: offer to save it
    except Exception:  # pragma: no cover - older API
        pass
    return choices
