"""Run heavy pure work (PNG encoding/decoding, pixel conversion) off Krita's GUI thread.

The function runs in a Python thread; only Qt image classes and bytes are touched there (no krita objects,
no widgets). Its result (or exception) comes back through a queued Qt signal, so the callback runs on the
GUI thread. PyQt releases the GIL inside Qt calls (QImage.save, convertToFormat...), so Krita keeps
painting while a page is encoded. MANGACOLOR_NO_THREADS=1 runs everything inline (debugging).
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from typing import Any, Callable, Optional

from .qt import QObject, pyqtSignal

Callback = Callable[[Any, Optional[BaseException]], None]


class Worker(QObject):
    _finished = pyqtSignal(int, object, object)

    def __init__(self, parent: Optional[QObject] = None):
        super().__init__(parent)
        self._next = 0
        self._callbacks: dict[int, Callback] = {}
        self._finished.connect(self._deliver)
        self.inline = os.environ.get("MANGACOLOR_NO_THREADS") == "1"

    def submit(self, fn: Callable[[], Any], callback: Callback) -> int:
        self._next += 1
        ticket = self._next
        self._callbacks[ticket] = callback
        if self.inline:
            self._run(ticket, fn)
        else:
            threading.Thread(target=self._run, args=(ticket, fn), name=f"mangacolor-worker-{ticket}", daemon=True).start()
        return ticket

    def _run(self, ticket: int, fn: Callable[[], Any]) -> None:
        try:
            result, error = fn(), None
        except BaseException as exc:  # delivered to the GUI thread, shown to the user there
            if not isinstance(exc, Exception):
                traceback.print_exc(file=sys.stderr)
            result, error = None, exc
        self._finished.emit(ticket, result, error)

    def _deliver(self, ticket: int, result: Any, error: Any) -> None:
        callback = self._callbacks.pop(ticket, None)
        if callback is not None:
            callback(result, error)

    def forget(self, ticket: Optional[int] = None) -> None:
        """Do not call back for this ticket (or any pending one): its run was cancelled."""
        if ticket is None:
            self._callbacks.clear()
        else:
            self._callbacks.pop(ticket, None)

    @property
    def pending(self) -> int:
        return len(self._callbacks)
