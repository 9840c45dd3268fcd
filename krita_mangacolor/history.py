"""The last few results, kept in memory so that any of them can be put back as the MangaColor layer.

An entry keeps the colour layer as the backend sent it (PNG bytes, or zlib BGRA from the frames transport: a
flat-coloured 6000x8500 page is a few MB, not the 204 MB of its pixels), the selection mask (zlib) and where it
belongs (document, ink, region).
At most MAX_ENTRIES entries and MAX_BYTES bytes are kept; the oldest go first. Pure Python.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from .geometry import Target

MAX_ENTRIES = 5
MAX_BYTES = 256 * 1024 * 1024


@dataclass
class Entry:
    id: int
    where: Target  # the result's place, without its mask (kept compressed in mask_z)
    doc_name: str
    color_png: bytes
    mask_z: Optional[bytes] = None
    model_version: str = ""
    options: dict = field(default_factory=dict)
    seconds: float = 0.0
    created: float = field(default_factory=time.time)
    bgra_z: Optional[bytes] = None  # instead of color_png: zlib level 1 of the BGRA (frames results)
    size: tuple = (0, 0)  # width, height of bgra_z

    @property
    def document(self) -> Any:
        return self.where.document

    @property
    def size_bytes(self) -> int:
        return len(self.color_png) + len(self.bgra_z or b"") + len(self.mask_z or b"")

    @property
    def full_page(self) -> bool:
        return self.mask_z is None and self.where.full_page

    def target(self) -> Target:
        """Where to put the result back now: with its mask, and the document's present colour format."""
        doc = self.where.document
        try:
            doc_format = (doc.colorModel(), doc.colorDepth())
        except Exception:  # pragma: no cover - defensive
            doc_format = ("RGBA", "U8")
        mask = zlib.decompress(self.mask_z) if self.mask_z is not None else None
        return replace(self.where, doc_format=doc_format, mask=mask)

    def label(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.created))
        region = self.where.region
        area = "page" if self.full_page else f"area {region.width}x{region.height}"
        opts = ", ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"#{self.id} {when}  {self.doc_name} / {self.where.ink_name}  ({area}{'; ' + opts if opts else ''})"


class History:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: list[Entry] = []  # oldest first
        self._next_id = 1

    def add(self, target: Target, doc_name: str, color_png: bytes, **meta: Any) -> Entry:
        """meta: model_version, options (those changed from the default), seconds; bgra_z and size instead of a PNG."""
        mask_z = zlib.compress(target.mask, 1) if target.mask is not None else None
        entry = Entry(self._next_id, replace(target, mask=None), doc_name, color_png, mask_z, **meta)
        self._next_id += 1
        self._entries.append(entry)
        while len(self._entries) > self.max_entries or (len(self._entries) > 1 and self.total_bytes > self.max_bytes):
            self._entries.pop(0)
        return entry

    @property
    def total_bytes(self) -> int:
        return sum(e.size_bytes for e in self._entries)

    def entries(self) -> list[Entry]:
        """Newest first."""
        return list(reversed(self._entries))

    def get(self, entry_id: int) -> Optional[Entry]:
        for e in self._entries:
            if e.id == entry_id:
                return e
        return None

    def __len__(self) -> int:
        return len(self._entries)
