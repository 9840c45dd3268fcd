"""One colorization at a time on the device, behind a bounded queue; jobs can be followed and cancelled."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from .pipeline import Cancelled, colorize
from .request import ColorizeRequest, ColorizeResult

JOB_TTL_SECONDS = 600  # finished jobs (and their results) are forgotten after this


class QueueFull(Exception):
    def __init__(self, waiting: int):
        super().__init__(f"busy: {waiting} job(s) already waiting")
        self.waiting = waiting


@dataclass
class Job:
    request: ColorizeRequest
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    status: str = "queued"  # queued | running | done | failed | cancelled
    progress: float = 0.0
    stage: str = "queued"
    error: str | None = None
    result: ColorizeResult | None = None
    finished_at: float | None = None
    cancel_requested: bool = False
    done_event: threading.Event = field(default_factory=threading.Event)


class JobRunner:
    def __init__(self, run: Callable[..., ColorizeResult] = colorize, max_waiting: int = 4):
        self._run = run
        self._max_waiting = max_waiting
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._jobs: dict[str, Job] = {}
        self._order: list[str] = []  # queued job ids, oldest first
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="colorize-worker", daemon=True)
        self._thread.start()

    def submit(self, request: ColorizeRequest) -> Job:
        with self._lock:
            self._forget_old()
            if len(self._order) >= self._max_waiting:
                raise QueueFull(len(self._order))
            job = Job(request=request)
            self._jobs[job.id] = job
            self._order.append(job.id)
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int:
        """0 = running or finished; n = n-th in line."""
        with self._lock:
            return self._order.index(job.id) + 1 if job.id in self._order else 0

    def cancel(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            job.cancel_requested = True
            if job.status == "queued":
                self._order.remove(job.id)
                self._finish(job, "cancelled")
            return job

    def shutdown(self) -> None:
        """Cancel every queued and running job and stop the worker after the current one."""
        with self._lock:
            for job in list(self._jobs.values()):
                if job.status in ("queued", "running"):
                    job.cancel_requested = True
                if job.status == "queued":
                    self._order.remove(job.id)
                    self._finish(job, "cancelled")
        self._queue.put(None)

    def _finish(self, job: Job, status: str, error: str | None = None) -> None:
        job.status = status
        job.error = error
        job.finished_at = time.monotonic()
        job.request = None  # type: ignore[assignment]  # free the page
        job.done_event.set()

    def _forget_old(self) -> None:
        now = time.monotonic()
        for jid in [j for j, job in self._jobs.items() if job.finished_at and now - job.finished_at > JOB_TTL_SECONDS]:
            del self._jobs[jid]

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                if job.status != "queued":
                    continue
                self._order.remove(job.id)
                job.status = "running"
                job.stage = "starting"

            def progress(fraction: float, stage: str, job: Job = job) -> None:
                job.progress, job.stage = fraction, stage

            try:
                result = self._run(job.request, progress=progress, cancelled=lambda job=job: job.cancel_requested)
            except Cancelled:
                with self._lock:
                    self._finish(job, "cancelled")
            except MemoryError:
                with self._lock:
                    self._finish(job, "failed", "out of memory: try a smaller working_size or a smaller selection")
            except Exception as exc:  # a failed job must never take the worker down
                with self._lock:
                    self._finish(job, "failed", f"{exc.__class__.__name__}: {exc}")
            else:
                with self._lock:
                    job.result = result
                    job.progress, job.stage = 1.0, "done"
                    self._finish(job, "done")
