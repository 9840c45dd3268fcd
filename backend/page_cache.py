"""The page analysis that depends only on the ink, kept by the ink's hash (issue 15).

A colorist's common click is a re-run of the same page with the hints moved, or an option changed.
Everything the pipeline derives from the ink alone is computed once per page and reused then: the
line/tone split at full resolution, the working-resolution structure (per working size), the
hint-independent part of the spread (distance to the walls, the open paper seed, the gap-closed
regions, their maps), the speech balloons, and the full-resolution regions the restoration flattens
over. Each part is computed when first asked for, by the same functions an uncached run calls, so
a cached run gives the same bytes as an uncached one; nothing kept here is changed by a run.

Bounded: at most `MAX_PAGES` pages and about `MAX_BYTES` together. A new page evicts the least
recently used ones before it is analysed, so a 64-Mpx page never waits beside another one.
`MANGACOLOR_PAGE_CACHE=0` (or `configure(pages=0)`) turns it off.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict

import numpy as np

from .balloons import Balloon, find_balloons
from .restore import FullRegions, full_regions
from .spread import SpreadPrep, prepare_page_spread
from .structure import Checkpoint, PageStructure, analyse_page, split_line_and_tone

MAX_PAGES = 0 if os.environ.get("MANGACOLOR_PAGE_CACHE", "1") == "0" else 2
MAX_BYTES = 512 * 1024 * 1024
FULL_BYTES_PER_PIXEL = 6  # line + tone (bool) + full-resolution region labels (int32)


def ink_key(ink: np.ndarray) -> str:
    """A fast digest of the ink's pixels and shape (SHA-256: ~2 GB/s with the CPU's SHA instructions)."""
    ink = np.ascontiguousarray(ink)
    digest = hashlib.sha256(f"{ink.shape}{ink.dtype.str}".encode())
    digest.update(memoryview(ink).cast("B"))
    return digest.hexdigest()


class PageAnalysis:
    """What one page's ink gives, each part computed on first use (`checkpoint` may cancel it then;
    a cancelled part is simply not kept)."""

    def __init__(self, ink_shape: tuple[int, int]):
        self.shape = ink_shape
        self._lock = threading.RLock()
        self._line_tone: tuple[np.ndarray, np.ndarray] | None = None
        self._working: dict[int, tuple[PageStructure, SpreadPrep]] = {}
        self._balloons: list[Balloon] | None = None
        self._regions: FullRegions | None = None

    def line_and_tone(self, ink: np.ndarray, checkpoint: Checkpoint | None = None) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if self._line_tone is None:
                self._line_tone = split_line_and_tone(ink, checkpoint)
            return self._line_tone

    def working(self, ink: np.ndarray, working_size: int, checkpoint: Checkpoint | None = None) -> tuple[PageStructure, SpreadPrep]:
        """The page at the working resolution and the hint-independent part of its spread."""
        with self._lock:
            if working_size not in self._working:
                page = analyse_page(ink, working_size, self.line_and_tone(ink, checkpoint), checkpoint)
                if checkpoint is not None:
                    checkpoint()
                self._working[working_size] = (page, prepare_page_spread(page))
            return self._working[working_size]

    def balloons(self, ink: np.ndarray, checkpoint: Checkpoint | None = None) -> list[Balloon]:
        with self._lock:
            if self._balloons is None:
                self._balloons = find_balloons(ink, self.line_and_tone(ink, checkpoint)[1], checkpoint)
            return self._balloons

    def full_regions(self, ink: np.ndarray, checkpoint: Checkpoint | None = None) -> FullRegions:
        with self._lock:
            if self._regions is None:
                self._regions = full_regions(self.line_and_tone(ink, checkpoint)[0], checkpoint)
            return self._regions

    @property
    def nbytes(self) -> int:
        total = sum(a.nbytes for a in self._line_tone) if self._line_tone is not None else 0
        total += sum(p.ink.nbytes * 3 + prep.nbytes for p, prep in self._working.values())
        total += sum(b.filled.nbytes for b in self._balloons or [])
        return total + (self._regions.nbytes if self._regions is not None else 0)


_pages: OrderedDict[str, PageAnalysis] = OrderedDict()
_lock = threading.Lock()


def configure(pages: int = 2, max_bytes: int = MAX_BYTES) -> None:
    """Set the bounds (pages=0: no cache) and forget every page kept."""
    global MAX_PAGES, MAX_BYTES
    with _lock:
        MAX_PAGES, MAX_BYTES = pages, max_bytes
        _pages.clear()


def clear() -> None:
    with _lock:
        _pages.clear()


def analysis(ink: np.ndarray) -> PageAnalysis:
    """The page's analysis: the one kept for this ink, or a new one (kept unless the cache is off)."""
    if MAX_PAGES <= 0:
        return PageAnalysis(ink.shape)
    key = ink_key(ink)
    with _lock:
        found = _pages.get(key)
        if found is not None:
            _pages.move_to_end(key)
            return found
        # Room first: the pages evicted here are freed before the new one is analysed.
        need = ink.size * FULL_BYTES_PER_PIXEL
        while _pages and (len(_pages) >= MAX_PAGES or sum(p.nbytes for p in _pages.values()) + need > MAX_BYTES):
            _pages.popitem(last=False)
        found = PageAnalysis(ink.shape)
        if need <= MAX_BYTES:
            _pages[key] = found
        return found
