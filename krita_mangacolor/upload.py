"""The page's upload (POST /v1/jobs) through Qt networking in a thread of its own.

Qt 5 feeds a request body to its HTTP thread from the thread that made the request, 16 KB at a time, each piece
asked for and handed over through that thread's event loop. From Krita's GUI thread that is one trip through
Krita's event loop per 16 KB: while Krita repaints a big canvas an 8 MB page took over ten seconds to leave. Here
the request is made in a short-lived thread whose own event loop does nothing else, so the body streams at
memory speed; the answer comes back to the GUI thread through a queued signal (worker.Worker). Still Qt
networking, and nothing waits on the GUI thread.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from .qt import QEventLoop, QMetaObject, QNetworkAccessManager, Qt
from .worker import Worker


class ThreadPending:
    """An upload in flight; abort() cancels it without calling its callback (like client.Pending)."""

    def __init__(self) -> None:
        self.aborted = False
        self.finished = False
        self.reply: Any = None  # the QNetworkReply, living in the upload's thread

    def abort(self) -> None:
        if self.finished or self.aborted:
            return
        self.aborted = True
        reply = self.reply
        if reply is not None:
            QMetaObject.invokeMethod(reply, "abort", Qt.QueuedConnection)


def post(worker: Worker, make_request: Callable[[], Any], body: bytes, read: Callable[[Any], Any], callback: Optional[Callable[[Any], None]]) -> ThreadPending:
    """POST body with the QNetworkRequest make_request() gives, in a thread; callback(read(reply)) on the GUI thread."""
    pending = ThreadPending()

    def run() -> Any:
        net = QNetworkAccessManager()
        reply = net.post(make_request(), body)
        pending.reply = reply
        if pending.aborted:
            reply.abort()
        loop = QEventLoop()
        reply.finished.connect(loop.quit)
        if not reply.isFinished():
            loop.exec_() if hasattr(loop, "exec_") else loop.exec()
        pending.reply = None
        try:
            return read(reply)
        finally:
            reply.close()
            del reply, net

    def done(response: Any, error: Optional[BaseException]) -> None:
        pending.finished = True
        if pending.aborted or callback is None:
            return
        if error is not None:
            raise error
        callback(response)

    worker.submit(run, done)
    return pending
