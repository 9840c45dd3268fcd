"""A job on the backend: submit, poll, cancel, download (POST /v1/jobs, GET /v1/jobs/{id}, DELETE, .../result).

One job at a time. Jobs only speaks HTTP (through client.py) and reports to the handlers of the job it runs;
the model (ui_model.py) decides what the answers mean for the docker. Handlers of a job that was cancelled or
forgotten are never called; a job the backend created from an upload that finished after Cancel is deleted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from . import api
from .client import Client, Response
from .qt import QObject, QTimer
from .settings import token_path

POLL_MS = 500
FAST_POLL_MS = 40  # the first polls come quickly: a job waits at most ~10 % of its time for the poll that sees it done
FRAMES = "application/x-mangacolor-frames"


@dataclass
class JobHandlers:
    update: Callable[[api.JobState], None]  # queued, running (progress, stage, position), or done (downloading)
    result: Callable[[bytes], None]  # the body of GET /v1/jobs/{id}/result, unparsed (parse it off the GUI thread)
    fail: Callable[[str], None]  # the message for the user
    lost: Callable[[Response], None]  # no answer: the backend is gone
    cancelled: Callable[[], None]  # cancelled on the backend (not by us)
    # wraps every answer: drops it if the run is over, turns an exception into a visible error (ui_model._guarded)
    guard: Callable[[Callable[..., None]], Callable[..., None]] = lambda fn: fn


def http_error(r: Response, doing: str) -> str:
    if r.unreachable:
        return r.error
    if r.status == 401:
        return f"The backend refused the access token ({r.error}). The token is read from {token_path()}."
    if r.status == 503:
        return f"The backend is busy: {r.error}"
    return f"The backend could not {doing}: {r.error}"


def _refused(handlers: JobHandlers, r: Response, doing: str) -> None:
    """An upload or download that failed: no answer at all means the backend is gone (a timeout does not:
    a large page may just be slow), anything else is the backend's own message."""
    if r.unreachable and not r.timed_out:
        handlers.lost(r)
    else:
        handlers.fail(http_error(r, doing))


class Jobs(QObject):
    def __init__(self, client: Client, poll_ms: int = POLL_MS, parent: Optional[QObject] = None):
        super().__init__(parent)
        self.client = client
        self.poll_ms = poll_ms
        self.job_id: Optional[str] = None  # of the last job submitted
        self._handlers: Optional[JobHandlers] = None
        self._pending: Any = None
        self._submitting = False
        self._frames = False  # the job went up as frames: ask for its result as frames
        self._since = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._poll)

    def submit(self, body: bytes, handlers: JobHandlers, content_type: str = "application/json") -> None:
        self.forget()
        self.job_id = None
        self._handlers = handlers
        self._submitting = True
        self._frames = content_type == FRAMES
        self._since = time.monotonic()

        def answer(r: Response) -> None:
            if handlers is not self._handlers:
                # Cancelled while the page was uploading: the backend may have made the job anyway.
                if r.ok and isinstance(r.data, dict) and r.data.get("id"):
                    self.client.cancel(str(r.data["id"]))
                return
            self._submitting = False
            handlers.guard(self._submitted)(handlers, r)

        self._pending = self.client.submit(body, answer, content_type)

    def _submitted(self, handlers: JobHandlers, r: Response) -> None:
        if not r.ok:
            _refused(handlers, r, "take this page")
            return
        job = api.parse_job(r.data)
        self.job_id = job.id
        self._update(handlers, job)

    def _update(self, handlers: JobHandlers, job: api.JobState) -> None:
        if job.status == "done":
            handlers.update(job)
            self._download(handlers)
        elif job.status == "failed":
            handlers.fail(f"The backend failed: {job.error or 'no reason given'}")
        elif job.status == "cancelled":
            handlers.cancelled()
        else:
            handlers.update(job)
            if handlers is self._handlers:
                waited_ms = (time.monotonic() - self._since) * 1000
                self._timer.start(int(min(self.poll_ms, max(FAST_POLL_MS, waited_ms * 0.1))))

    def _poll(self) -> None:
        handlers = self._handlers
        if handlers is None or not self.job_id:
            return

        def answer(r: Response) -> None:
            if handlers is not self._handlers:
                return
            if not r.ok:
                if r.unreachable:
                    handlers.lost(r)
                elif r.status == 404:
                    handlers.fail(f"The backend no longer knows this job (was it restarted?): {r.error}")
                else:
                    handlers.fail(http_error(r, "report on the job"))
                return
            self._update(handlers, api.parse_job(r.data))

        self._pending = self.client.job(self.job_id, handlers.guard(answer))

    def _download(self, handlers: JobHandlers) -> None:
        def answer(r: Response) -> None:
            if handlers is not self._handlers:
                return
            self._handlers = None  # the job is over on the backend's side
            self._pending = None
            if not r.ok:
                _refused(handlers, r, "send the result")
                return
            handlers.result(r.raw)

        self._pending = self.client.result(self.job_id, handlers.guard(answer), raw=True, frames=self._frames)

    def forget(self) -> None:
        """Stop polling and call none of the current job's handlers again (the run ended)."""
        self._timer.stop()
        self._handlers = None
        self._pending = None

    def abort(self) -> None:
        """Abort the request in flight (the backend died) and forget the job."""
        if self._pending is not None:
            self._pending.abort()
        self.forget()

    def cancel(self) -> None:
        """Cancel the job: abort the request in flight (but let a page upload finish: its answer deletes the
        job the backend made from it) and DELETE the job if the backend gave it an id."""
        if self._pending is not None and not self._submitting:
            self._pending.abort()
        self.forget()
        self._submitting = False
        if self.job_id:
            self.client.cancel(self.job_id)
