"""Non-blocking HTTP client for the backend, on Qt's QNetworkAccessManager.

Krita's Python has no `requests` (and no third-party packages may be used inside Krita); Qt networking
runs on Krita's event loop, so the GUI never waits on the network. Every call takes a callback that
receives one Response; a deliberately aborted request calls nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from .qt import QNetworkAccessManager, QNetworkReply, QNetworkRequest, QObject, QTimer, QUrl, qbytes

from . import api, upload
from .settings import normalize_url
from .worker import Worker

JSON = "application/json"
FRAMES_ACCEPT = "application/x-mangacolor-frames, application/json;q=0.5"  # errors still come as JSON
HEALTH_TIMEOUT_MS = 3000
TRANSFER_TIMEOUT_MS = 120_000  # no bytes moving for this long = the backend is stuck


@dataclass
class Response:
    ok: bool
    status: int  # HTTP status, 0 when no HTTP answer came back
    data: Any = None  # parsed JSON body, None if none
    error: str = ""  # for the user: the server's own message verbatim, or why it could not be reached
    unreachable: bool = False  # no HTTP answer at all (not running, wrong URL, timed out)
    timed_out: bool = False
    raw: bytes = b""  # the body itself, for requests made with raw=True (parsed later, off the GUI thread)


Callback = Callable[[Response], None]


class Pending:
    """A request in flight; abort() cancels it without calling its callback."""

    def __init__(self, reply: QNetworkReply, timer: Optional[QTimer]):
        self.reply = reply
        self.timer = timer
        self.aborted = False
        self.timed_out = False
        self.finished = False

    def abort(self) -> None:
        if self.finished or self.aborted:
            return
        self.aborted = True
        if self.timer is not None:
            self.timer.stop()
        self.reply.abort()

    def _timeout(self) -> None:
        if not self.finished:
            self.timed_out = True
            self.reply.abort()


class Client(QObject):
    def __init__(self, url: Callable[[], str], token: Callable[[], Optional[str]], parent: QObject | None = None):
        super().__init__(parent)
        self._url = url
        self._token = token
        self._net: QNetworkAccessManager | None = None
        self._pending: set[Pending] = set()
        self._uploads = Worker(self)  # the page's upload runs in a thread of its own (upload.py)

    @property
    def base_url(self) -> str:
        return normalize_url(self._url())

    def _manager(self) -> QNetworkAccessManager:
        if self._net is None:  # created lazily, on Krita's main thread, after the application exists
            self._net = QNetworkAccessManager(self)
        return self._net

    def _request(self, path: str, timeout_ms: int | None, auth: bool, content_type: str = JSON, accept: str = JSON) -> QNetworkRequest:
        req = QNetworkRequest(QUrl(self.base_url + path))
        req.setHeader(QNetworkRequest.ContentTypeHeader, content_type)
        req.setRawHeader(b"Accept", accept.encode("ascii"))
        if auth:
            token = self._token()
            if token:
                req.setRawHeader(b"Authorization", b"Bearer " + token.encode("utf-8"))
        if timeout_ms is None and hasattr(req, "setTransferTimeout"):
            req.setTransferTimeout(TRANSFER_TIMEOUT_MS)
        return req

    def _send(
        self, method: str, path: str, body: bytes | None, callback: Callback | None, timeout_ms: int | None,
        raw: bool = False, content_type: str = JSON, accept: str = JSON,
    ) -> Pending:
        req = self._request(path, timeout_ms, path != api.HEALTH, content_type, accept)
        net = self._manager()
        if method == "GET":
            reply = net.get(req)
        elif method == "POST":
            reply = net.post(req, body or b"")
        elif method == "DELETE":
            reply = net.deleteResource(req)
        else:  # pragma: no cover - programming error
            raise ValueError(method)
        timer = None
        if timeout_ms is not None:
            timer = QTimer(self)
            timer.setSingleShot(True)
        pending = Pending(reply, timer)
        if timer is not None:
            timer.timeout.connect(pending._timeout)
            timer.start(timeout_ms)
        self._pending.add(pending)
        reply.finished.connect(lambda: self._finished(pending, callback, raw))
        return pending

    def _finished(self, pending: Pending, callback: Callback | None, raw: bool = False) -> None:
        pending.finished = True
        self._pending.discard(pending)
        if pending.timer is not None:
            pending.timer.stop()
            pending.timer.deleteLater()
        reply = pending.reply
        try:
            if pending.aborted:
                return
            response = self.read_reply(reply, pending.timed_out, raw)
        finally:
            reply.deleteLater()
        if callback is not None:
            callback(response)

    def read_reply(self, reply: QNetworkReply, timed_out: bool = False, raw: bool = False) -> Response:
        status = reply.attribute(QNetworkRequest.HttpStatusCodeAttribute)
        data = qbytes(reply.readAll())
        if status is None or timed_out:
            if timed_out or reply.error() in (QNetworkReply.OperationCanceledError, QNetworkReply.TimeoutError):
                why = "it did not answer in time"
                timed_out = True
            else:
                why = reply.errorString()
            return Response(False, 0, None, f"cannot reach the MangaColor backend at {self.base_url}: {why}", unreachable=True, timed_out=timed_out)
        status = int(status)
        if raw and 200 <= status < 300:
            return Response(True, status, None, raw=data)
        value = api.parse_json(data)
        if 200 <= status < 300:
            return Response(True, status, value)
        return Response(False, status, value, api.server_error_text(status, data))

    # --- the API ---

    def health(self, callback: Callback) -> Pending:
        return self._send("GET", api.HEALTH, None, callback, HEALTH_TIMEOUT_MS)

    def options(self, callback: Callback) -> Pending:
        return self._send("GET", api.OPTIONS, None, callback, None)

    def submit(self, body: bytes, callback: Callback, content_type: str = JSON) -> Any:
        """body: wire.encode_body(): JSON (request.ColorizeRequest.encode()) or frames (content_type FRAMES).
        Uploaded from a thread of its own (upload.py): Krita's busy event loop does not pace it."""
        if self._uploads.inline:  # MANGACOLOR_NO_THREADS=1 (debugging): from the GUI thread, as any request
            return self._send("POST", api.JOBS, body, callback, None, content_type=content_type)
        req = self._request(api.JOBS, None, True, content_type)  # made here: settings and token are read on the GUI thread
        return upload.post(self._uploads, lambda: req, body, self.read_reply, callback)

    def job(self, job_id: str, callback: Callback) -> Pending:
        return self._send("GET", api.job_path(job_id), None, callback, None)

    def result(self, job_id: str, callback: Callback, raw: bool = False, frames: bool = False) -> Pending:
        """frames: ask for the lean result (frames.py) of a backend that speaks it; JSON otherwise."""
        return self._send("GET", api.result_path(job_id), None, callback, None, raw, accept=FRAMES_ACCEPT if frames else JSON)

    def cancel(self, job_id: str, callback: Callback | None = None) -> Pending:
        return self._send("DELETE", api.job_path(job_id), None, callback, None)

    def abort_all(self) -> None:
        for pending in list(self._pending):
            pending.abort()
