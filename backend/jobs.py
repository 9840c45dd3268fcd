"""One colorization at a time on the device, behind a bounded queue; jobs can be followed and cancelled.

Memory is bounded: a request is admitted (a queue place reserved) before its images are decoded,
a finished result is kept as PNG bytes rather than arrays, it is dropped once fetched or when its
job is deleted, and the results waiting to be fetched never hold more than `max_result_bytes`.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterator

from .imageio import encode_png
from .pipeline import Cancelled, colorize
from .request import ColorizeRequest, ColorizeResult

JOB_TTL_SECONDS = 600  # finished jobs (and their unfetched results) are forgotten after this
MAX_RESULT_BYTES = 1024 * 1024 * 1024  # encoded results waiting to be fetched, all jobs together
FINAL_STATUSES = ("done", "failed", "cancelled")


class QueueFull(Exception):
    def __init__(self, waiting: int):
        super().__init__(f"busy: {waiting} job(s) already waiting")
        self.waiting = waiting


@dataclass
class StoredResult:
    """A finished colorization as compressed bytes: a 8000x8000 page is ~450 MB of arrays but tens of MB
    of PNG.

    images: the outputs the request asked for, by name ("color_layer", "composite"), as PNG
    (`encoding` "png", the JSON API) or as zlib-compressed BGRA (`encoding` "frames": a frames job's
    blobs, `transport.result_frames`: no PNG filter pass on either side). variants: the extra variants
    (2..N) when there are any, likewise."""

    images: dict[str, bytes]
    width: int
    height: int
    model_version: str
    seconds: dict[str, float]
    encoding: str = "png"
    variants: list[bytes] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(len(data) for data in self.images.values()) + sum(len(data) for data in self.variants)

    @classmethod
    def encode(
        cls, result: ColorizeResult, outputs: tuple[str, ...] = ("color_layer",), cancelled: Callable[[], bool] | None = None,
        encoding: str = "png",
    ) -> "StoredResult":
        h, w = result.color_layer.shape[:2]
        if encoding == "frames":
            from .transport import rgba_bands_zlib as pack
        else:
            pack = encode_png
        images = {}
        for name in outputs:  # only what was asked for: each encode of a full page takes seconds
            if cancelled is not None and cancelled():
                raise Cancelled()
            images[name] = pack(result.color_layer if name == "color_layer" else result.composite)
        variants = []
        for layer in getattr(result, "variants", None) or []:
            if cancelled is not None and cancelled():
                raise Cancelled()
            variants.append(pack(layer))
        return cls(images, w, h, result.model_version, result.seconds, encoding, variants)


@dataclass
class Job:
    request: ColorizeRequest
    outputs: tuple[str, ...] = ("color_layer",)  # the images its result carries
    encoding: str = "png"  # how its result is kept and answered: "png" (JSON) or "frames"
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    status: str = "queued"  # queued | running | cancelling | done | failed | cancelled
    progress: float = 0.0
    stage: str = "queued"
    error: str | None = None
    result: StoredResult | None = None
    result_gone: str | None = None  # why a done job has no result any more (fetched, dropped)
    finished_at: float | None = None
    cancel_requested: bool = False
    done_event: threading.Event = field(default_factory=threading.Event)
    _callbacks: list[Callable[[], None]] = field(default_factory=list)

    def when_done(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the worker thread) when the job finishes; at once if it has."""
        self._callbacks.append(callback)
        if self.done_event.is_set():
            callback()


class Admission:
    """A place in the queue, reserved before the request's images are decoded."""

    def __init__(self, runner: "JobRunner"):
        self._runner = runner
        self.job: Job | None = None

    def submit(self, request: ColorizeRequest, outputs: tuple[str, ...] = ("color_layer",), encoding: str = "png") -> Job:
        self.job = self._runner._enqueue(request, outputs, self, encoding)
        return self.job


class JobRunner:
    def __init__(
        self,
        run: Callable[..., ColorizeResult] = colorize,
        max_waiting: int = 4,
        max_result_bytes: int = MAX_RESULT_BYTES,
    ):
        self._run = run
        self._max_waiting = max_waiting
        self._max_result_bytes = max_result_bytes
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._jobs: dict[str, Job] = {}
        self._order: list[str] = []  # queued job ids, oldest first
        self._reserved = 0  # admitted requests still being decoded
        self._running: Job | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="colorize-worker", daemon=True)
        self._thread.start()

    # --- admission and submission ---

    def _check_room(self) -> None:
        # The running job takes no place in the queue; while nothing runs, one more may come in.
        room = self._max_waiting + (0 if self._running is not None else 1)
        if len(self._order) + self._reserved >= room:
            raise QueueFull(len(self._order) + self._reserved)

    @contextlib.contextmanager
    def admit(self) -> Iterator[Admission]:
        """Reserve a queue place (or raise QueueFull) before the costly decoding; the place is
        given back if the request turns out bad."""
        with self._lock:
            self._forget_old()
            self._check_room()
            self._reserved += 1
        admission = Admission(self)
        try:
            yield admission
        finally:
            if admission.job is None:
                with self._lock:
                    self._reserved -= 1

    def _enqueue(
        self, request: ColorizeRequest, outputs: tuple[str, ...], admission: Admission | None, encoding: str = "png"
    ) -> Job:
        with self._lock:
            if admission is not None:
                self._reserved -= 1
            else:
                self._forget_old()
                self._check_room()
            job = Job(request=request, outputs=outputs, encoding=encoding)
            self._jobs[job.id] = job
            self._order.append(job.id)
        self._queue.put(job)
        return job

    def submit(self, request: ColorizeRequest, outputs: tuple[str, ...] = ("color_layer",)) -> Job:
        return self._enqueue(request, outputs, None)

    # --- queries ---

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int:
        """0 = running or finished; n = n-th in line."""
        with self._lock:
            return self._order.index(job.id) + 1 if job.id in self._order else 0

    def held_result_bytes(self) -> int:
        with self._lock:
            return sum(job.result.nbytes for job in self._jobs.values() if job.result is not None)

    def take_result(self, job_id: str) -> StoredResult | None:
        """The result, handed out once: a fetched result is not kept."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.result is None:
                return None
            result, job.result, job.result_gone = job.result, None, "the result was already fetched"
            return result

    # --- cancel and delete ---

    def cancel(self, job_id: str, wait: float = 0.0) -> Job | None:
        """Cancel a queued or running job; delete a finished one (and its result).

        A running job stops at the pipeline's next cancellation check: wait up to `wait` seconds
        for it, so the answer says 'cancelled' when it did stop, and 'cancelling' while it has not."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.status in FINAL_STATUSES:
                del self._jobs[job_id]
                job.result = None
                return job
            job.cancel_requested = True
            if job.status == "queued":
                self._order.remove(job.id)
                self._finish(job, "cancelled")
                return job
            job.status = "cancelling"
        job.done_event.wait(wait)
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

    # --- bookkeeping ---

    def _finish(self, job: Job, status: str, error: str | None = None) -> None:
        job.status = status
        job.error = error
        job.finished_at = time.monotonic()
        job.request = None  # type: ignore[assignment]  # free the page
        job.done_event.set()
        for callback in job._callbacks:
            with contextlib.suppress(Exception):  # e.g. the event loop of a client's request already closed
                callback()
        job._callbacks.clear()

    def _forget_old(self) -> None:
        now = time.monotonic()
        for jid in [j for j, job in self._jobs.items() if job.finished_at and now - job.finished_at > JOB_TTL_SECONDS]:
            del self._jobs[jid]

    def _bound_results(self) -> None:
        """Drop the oldest unfetched results until those held fit in max_result_bytes (the newest
        is always kept, however large: its client is probably polling for it right now)."""
        held = sorted((job for job in self._jobs.values() if job.result is not None), key=lambda j: j.finished_at or 0.0)
        total = sum(job.result.nbytes for job in held)  # type: ignore[union-attr]
        for job in held[:-1]:
            if total <= self._max_result_bytes:
                break
            total -= job.result.nbytes  # type: ignore[union-attr]
            job.result = None
            job.result_gone = (
                "the result was dropped because newer results filled the server's result memory "
                f"({self._max_result_bytes // (1024 * 1024)} MB); fetch results sooner or colorize again"
            )

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
                self._running = job

            def progress(fraction: float, stage: str, job: Job = job) -> None:
                job.progress, job.stage = fraction, stage

            try:
                cancelled = lambda job=job: job.cancel_requested  # noqa: E731
                result = self._run(job.request, progress=progress, cancelled=cancelled)
                stored = None if job.cancel_requested else StoredResult.encode(result, job.outputs, cancelled, job.encoding)
                del result  # the arrays: only the PNG bytes are kept
            except Cancelled:
                stored = None
            except MemoryError:
                with self._lock:
                    self._running = None
                    self._finish(job, "failed", "out of memory: try a smaller working_size or a smaller selection")
                continue
            except Exception as exc:  # a failed job must never take the worker down
                with self._lock:
                    self._running = None
                    self._finish(job, "failed", f"{exc.__class__.__name__}: {exc}")
                continue
            with self._lock:
                self._running = None
                if stored is None or job.cancel_requested:
                    self._finish(job, "cancelled")
                elif job.id not in self._jobs:
                    self._finish(job, "done")  # deleted meanwhile: nobody can fetch it
                else:
                    job.result = stored
                    job.progress, job.stage = 1.0, "done"
                    self._finish(job, "done")
                    self._bound_results()
