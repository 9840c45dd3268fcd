"""Colorize all open documents: which document is next, what became of each, and the summary line.

The model (ui_model.py) runs each document as an ordinary Colorize and reports its outcome here. Pure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .layers import document_title

NO_INK_PREFIX = "No ink layer"  # how role_finder's message for a page without an ink begins


@dataclass
class BatchRun:
    documents: list
    index: int = 0
    done: list = field(default_factory=list)  # titles
    skipped: list = field(default_factory=list)  # (title, why)
    failed: list = field(default_factory=list)  # (title, why)
    started: float = field(default_factory=time.monotonic)

    @property
    def total(self) -> int:
        return len(self.documents)

    def title(self) -> str:
        """The title of the document being colorized."""
        return document_title(self.documents[self.index])

    def next_open(self, is_open: Callable[[Any], bool]) -> Optional[Any]:
        """The next document still open (closed ones are skipped and listed), or None at the end."""
        while self.index < self.total and not is_open(self.documents[self.index]):
            self.skipped.append((self.title(), "closed meanwhile"))
            self.index += 1
        return self.documents[self.index] if self.index < self.total else None

    def record(self, ok: bool, message: str) -> None:
        """The outcome of the current document; moves on to the next."""
        title = self.title()
        if ok:
            self.done.append(title)
        elif message.startswith(NO_INK_PREFIX):
            self.skipped.append((title, "no ink layer"))
        else:
            self.failed.append((title, message.split("\n")[0]))
        self.index += 1

    def summary(self) -> tuple[bool, str, list[str]]:
        """(ok, the final status line, notes to add)."""
        s = "s" if self.total != 1 else ""
        parts = [f"Colorized {len(self.done)} of {self.total} open document{s} in {time.monotonic() - self.started:.1f} s."]
        if self.skipped:
            parts.append("Skipped: " + "; ".join(f"'{t}' ({why})" for t, why in self.skipped) + ".")
        if self.failed:
            parts.append("Failed: " + "; ".join(f"'{t}' ({why})" for t, why in self.failed) + ".")
        notes = []
        if any(why == "no ink layer" for _, why in self.skipped):
            notes.append("name the line-art layer 'Ink' (or choose it in the docker) in the skipped documents")
        return not self.failed and bool(self.done), " ".join(parts), notes

    def cancel_message(self) -> str:
        if self.index >= self.total:
            return "Cancelled."
        return (
            f"Cancelled: {len(self.done)} of {self.total} open documents were colorized before; "
            f"'{self.title()}' and the rest were not changed."
        )
