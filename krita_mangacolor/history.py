"""The last few results, kept in memory so that any of them can be put back as the MangaColor layer.

An entry keeps the colour layer as the backend sent it (PNG bytes: a flat-coloured 6000x8500 page is a few
MB, not the 204 MB of its pixels), the selection mask (zlib) and where it belongs (document, ink, region).
At most MAX_ENTRIES entries and MAX_BYTES bytes are kept; the oldest go first. Pure Python.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Optional

MAX_ENTRIES = 5
MAX_BYTES = 256 * 1024 * 1024


@dataclass
class Entry:
    id: int
    document: Any
    doc_name: str
    ink_id: Any
    ink_name: str
    region: Any  # document.Rect
    doc_size: tuple
    color_png: bytes
    width: int
    height: int
    mask_z: Optional[bytes] = None
    model_version: str = ""
    options: dict = field(default_factory=dict)
    seconds: float = 0.0
    created: float = field(default_factory=time.time)

    @property
    def size_bytes(self) -> int:
        return len(self.color_png) + len(self.mask_z or b"")

    @property
    def mask(self) -> Optional[bytes]:
        return zlib.decompress(self.mask_z) if self.mask_z is not None else None

    @property
    def full_page(self) -> bool:
        r = self.region
        return self.mask_z is None and (r.x, r.y, r.width, r.height) == (0, 0, *self.doc_size)

    def label(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.created))
        area = "page" if self.full_page else f"area {self.region.width}x{self.region.height}"
        opts = ", ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"#{self.id} {when}  {self.doc_name} / {self.ink_name}  ({area}{'; ' + opts if opts else ''})"


def compress_mask(mask: Optional[bytes]) -> Optional[bytes]:
    return zlib.compress(mask, 1) if mask is not None else None


class History:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: list[Entry] = []  # oldest first
        self._next_id = 1

    def add(self, **fields: Any) -> Entry:
        entry = Entry(id=self._next_id, **fields)
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

    def forget_document(self, is_open) -> None:
        """Drop entries whose document is no longer open (is_open(doc) -> bool)."""
        self._entries = [e for e in self._entries if is_open(e.document)]

    def __len__(self) -> int:
        return len(self._entries)
