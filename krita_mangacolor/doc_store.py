"""Small JSON values kept inside a document, the way roles.py keeps the role choices: as an annotation of the
document (Document.setAnnotation, Krita >= 4.4), which Krita writes into the .kra (`annotations/<type>`) and
reads back when the file is opened (checked in Krita 5.1.5 and 5.2.9 by the real-Krita test). Where the
annotation API is missing, values live for the session only.

Pure Python (Qt only to wrap bytes): documents are duck-typed, so the tests' mock works.
"""

from __future__ import annotations

import json
from typing import Any

_session: dict[tuple[str, str], bytes] = {}  # (document key, type) -> bytes, without the annotation API


def _key(doc: Any) -> str:
    try:
        return str(doc.fileName() or "") or f"name:{doc.name()}"
    except Exception:  # pragma: no cover - defensive
        return f"id:{id(doc)}"


def _has_annotations(doc: Any) -> bool:
    return hasattr(doc, "setAnnotation") and hasattr(doc, "annotation")


def load_bytes(doc: Any, kind: str) -> bytes:
    if doc is None:
        return b""
    if has_annotations(doc):
        try:
            types = list(doc.annotationTypes()) if hasattr(doc, "annotationTypes") else [kind]
            if kind not in types:
                return b""
            raw = doc.annotation(kind)
            return bytes(raw.data() if hasattr(raw, "data") else raw)
        except Exception:  # a broken annotation must never stop the plugin
            return b""
    return _session.get((_key(doc), kind), b"")


def load_json(doc: Any, kind: str) -> Any:
    """The stored value, or None when there is none or it is unreadable (never an error for the user)."""
    raw = load_bytes(doc, kind)
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def has_annotations(doc: Any) -> bool:
    return _has_annotations(doc)


def save_bytes(doc: Any, kind: str, description: str, raw: bytes) -> bool:
    """Store raw bytes in the document. True when they travel with the .kra (else: this session only)."""
    if has_annotations(doc):
        try:
            payload: Any = raw
            try:
                from .qt import QByteArray

                payload = QByteArray(raw)
            except Exception:  # pragma: no cover - no Qt: the mock takes bytes
                pass
            doc.setAnnotation(kind, description, payload)
            return True
        except Exception:
            pass
    _session[(_key(doc), kind)] = raw
    return False


def save_json(doc: Any, kind: str, description: str, value: Any) -> bool:
    """Store value in the document and mark it modified. True when it travels with the .kra."""
    raw = json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")
    stored = save_bytes(doc, kind, description, raw)
    try:
        doc.setModified(True)  # part of the document: offer to save it
    except Exception:  # pragma: no cover - older API
        pass
    return stored
