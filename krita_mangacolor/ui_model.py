"""The observable model behind the docker: the state of a run, its status line and progress, with Qt signals;
it ties the connection (connection.py), the backend job (backend_jobs.py) and the document (page_reader.py,
result_layer.py) together.

    Colorize -> read the layers (page_reader.read_inputs, GUI thread) -> frames (worker thread), meanwhile
        connection.ensure(): GET /v1/health, start the server if needed, GET /v1/options
        -> the body (wire.py: frames when the backend speaks them, worker) -> jobs.submit(): POST /v1/jobs,
           poll GET /v1/jobs/{id}, GET .../result
        -> decode (result_reader.py, worker) -> write the result layer (result_layer.apply_result, GUI thread)
        -> remember it (history.py), keep its variants, log where the time went (timing.py)
    Cancel -> DELETE; nothing is written. Restore, pick a variant, keep as draft -> result_actions.py.

Everything runs on Krita's event loop; nothing blocks on the network; pixel work runs in a worker thread. One
job at a time per Krita; every callback carries its run's number, so answers to a cancelled run are ignored.
"""

from __future__ import annotations

import sys
import time
import traceback
from typing import Any, Callable, Optional

from . import api, history, result_actions, roles, timing, wire
from .backend_jobs import POLL_MS, JobHandlers, Jobs
from .all_documents import BatchRun
from .connection import Connection
from .errors import UserError
from .layers import document_is_open, document_title
from .geometry import Target
from .page_reader import Inputs, encode_inputs, read_inputs
from .qt import QObject, QTimer, pyqtSignal
from .result_layer import Applied, apply_result
from .result_reader import Decoded, read_result
from .role_finder import UsedLayers
from .option_values import OptionValues
from .settings import Settings, load_settings
from .worker import Worker

IDLE, PREPARING, CONNECTING, STARTING, SUBMITTING, QUEUED, RUNNING, DOWNLOADING, APPLYING, DONE, ERROR, CANCELLED = (
    "idle", "preparing", "connecting", "starting", "submitting", "queued", "running", "downloading", "applying",
    "done", "error", "cancelled",
)  # fmt: skip
ACTIVE_STATES = (PREPARING, CONNECTING, STARTING, SUBMITTING, QUEUED, RUNNING, DOWNLOADING, APPLYING)
ON_BACKEND_STATES = (SUBMITTING, QUEUED, RUNNING, DOWNLOADING)

class ColorizeModel(QObject):
    changed = pyqtSignal()  # state, status, progress or notes changed
    backend_changed = pyqtSignal(str)
    finished = pyqtSignal(bool, str)  # success, final status text (of a run, or of a whole batch)
    options_changed = pyqtSignal()  # the backend's option schema changed
    history_changed = pyqtSignal()
    roles_changed = pyqtSignal()  # a role choice was stored in a document
    variants_changed = pyqtSignal()  # the last run's variants came or went

    def __init__(self, app: Any, settings_loader: Optional[Callable[[], Settings]] = None, poll_ms: int = POLL_MS,
                 parent: Optional[QObject] = None):  # fmt: skip
        super().__init__(parent)
        self.app = app
        loader = settings_loader or (lambda: load_settings(getattr(app, "readSetting", None)))
        self.connection = Connection(loader, self._take_options, parent=self)
        self.connection.backend_changed.connect(self.backend_changed)
        self.connection.server_lost.connect(self._server_lost)
        self.jobs = Jobs(self.connection.client, poll_ms, self)
        self.worker = Worker(self)

        self.state = IDLE
        self.status = "Choose the layers and press Colorize."
        self.progress = 0.0  # 0..1, or -1 while the length of the wait is unknown
        self.notes: list[str] = []
        self.last_result: Optional[Applied] = None
        self.last_options: Optional[dict] = None  # the options sent with the last job
        self.last_roles: Optional[UsedLayers] = None  # the layers the last job used
        self.stats: dict = {}  # seconds of the last run: gui_read, encode, connect, body, server_wait, download, ... total
        self.timings: dict = {}  # the last run's click->layer timings (timing.summarize), also logged on stderr
        self.variants: list = []  # the last run's variants (result_reader.Variant), pickable until the next run
        self.variants_target: Optional[Target] = None
        self.chosen_variant = 1  # the variant in the MangaColor layer
        self.history = history.History()
        self.options = OptionValues(app)
        self.batch: Optional[BatchRun] = None

        self._run = 0
        self._inputs: Optional[Inputs] = None
        self._started_at = 0.0

    # --- the backend (connection.py: its settings, server, health; the docker's Check and Start use it directly) ---

    @property
    def settings(self) -> Settings:
        return self.connection.settings

    def stop_backend(self) -> bool:
        if self.connection.can_stop and self.busy:
            self.cancel()
        return self.connection.stop()

    # --- observable state ---

    @property
    def busy(self) -> bool:
        return self.state in ACTIVE_STATES or self.batch is not None

    def _set(self, state: str, status: Optional[str] = None, progress: Optional[float] = None) -> None:
        self.state = state
        b = self.batch if state in ACTIVE_STATES else None  # a batch's run: "[2/5] page.kra: ...", overall progress
        if status is not None:
            self.status = f"[{b.index + 1}/{b.total}] {b.title()}: {status}" if b and b.index < b.total else status
        if progress is not None:
            self.progress = (b.index + max(0.0, progress)) / b.total if b and b.total else progress
        self.changed.emit()

    def _end(self, ok: bool, state: str, message: str) -> None:
        """Every run ends here: success, error or cancel."""
        self.jobs.forget()
        self.connection.abandon()
        self._inputs = None
        if self.batch is not None and state != CANCELLED:
            self.batch.record(ok, message)
            self._set(self.state, None, 0.0)
            QTimer.singleShot(0, self._batch_next)
            return
        self._set(state, message, 1.0 if ok else 0.0)
        self.finished.emit(ok, message)

    def _fail(self, message: str) -> None:
        self._end(False, ERROR, message)

    def _guarded(self, run: int, fn: Callable[..., None]) -> Callable[..., None]:
        """Wrap a callback: ignore it if its run was cancelled; turn exceptions into a visible error."""

        def call(*args: Any) -> None:
            if run != self._run or not self.busy:
                return
            try:
                fn(*args)
            except UserError as exc:
                self._fail(str(exc))
            except Exception as exc:  # never leave the docker stuck in a busy state
                traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
                self._fail(f"Unexpected error in the MangaColor plugin: {exc.__class__.__name__}: {exc}")

        return call

    def _in_worker(self, run: int, fn: Callable[[], Any], then: Callable[[Any], None], stat: str) -> None:
        """Run fn in the worker thread, then `then(result)` on the GUI thread (if the run still lives)."""
        started = time.monotonic()

        def done(result: Any, error: Optional[BaseException]) -> None:
            self.stats[stat] = round(time.monotonic() - started, 3)

            def deliver() -> None:
                if error is not None:
                    raise error
                then(result)

            self._guarded(run, deliver)()

        self.worker.submit(fn, done)

    def report(self, ok: bool, message: str, notes: Optional[list] = None) -> None:
        """Show the outcome of a quick action (new hint layer, colorize mask) in the status line."""
        if self.busy:
            return
        self.notes = list(notes or [])
        self._set(DONE if ok else ERROR, message, 1.0 if ok else 0.0)

    # --- roles (stored in each document) ---

    def set_role(self, role: str, choice: roles.Choice, doc: Any) -> None:
        """Store a role choice in the document (it travels with the .kra)."""
        roles.set_choice(doc, role, choice)
        self.roles_changed.emit()

    # --- options (from the backend; option_values.py) ---

    def reset_options(self) -> None:
        self.options.reset()
        self.options_changed.emit()

    def _take_options(self, r: Any) -> None:
        if r.ok and self.options.take_schema(r.data):
            self.options_changed.emit()

    # --- a run ---

    def _begin(self) -> int:
        self._run += 1
        self.jobs.job_id = None
        self.notes = []
        self._inputs, self._connected = None, False
        self.stats = {}
        self._started_at = self._mark = time.monotonic()
        return self._run

    def _lap(self, name: str) -> None:  # stats[name] = seconds since the previous lap (or the run's start)
        now = time.monotonic()
        self.stats[name], self._mark = round(now - self._mark, 3), now

    def colorize(self, doc: Any = None) -> None:
        if self.busy:
            return
        self._colorize(doc, use_active=True)

    def _colorize(self, doc: Any, use_active: bool) -> None:
        run = self._begin()
        if self.variants:  # a new run: the last run's variants are no longer offered
            self.variants, self.variants_target = [], None
            self.variants_changed.emit()
        settings = self.connection.reload_settings()
        self._set(PREPARING, "Reading the layers...", -1)
        t0 = time.monotonic()
        try:
            raw = read_inputs(self.app, doc, None, settings.hint_layer, settings.reference_layer, use_active)
        except UserError as exc:
            self._fail(str(exc))
            return
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self._fail(f"Unexpected error while reading the layers: {exc.__class__.__name__}: {exc}")
            return
        self.stats["gui_read"] = round(time.monotonic() - t0, 3)
        self.notes = list(settings.notes) + list(raw.notes)
        # Encode (always frames: PNGs at upload for a backend without them) while the backend is found; upload then.
        self._connected = False
        self._set(CONNECTING, f"Preparing the page; connecting to the backend at {self.settings.url}...", -1)
        self._in_worker(run, lambda: encode_inputs(raw, True), lambda inputs: self._encoded(run, inputs), "encode")
        self.connection.ensure(
            ready=self._guarded(run, lambda: self._connected_now(run)),
            fail=self._guarded(run, self._fail),
            starting=self._guarded(run, lambda: self._set(STARTING, "Starting the MangaColor backend (the first start can take a minute)...", -1)),
        )

    def _encoded(self, run: int, inputs: Inputs) -> None:
        self._inputs, self.last_roles, self._mark = inputs, inputs.used, time.monotonic()
        self.notes = list(self.settings.notes) + list(inputs.notes)
        if self._connected:
            self._submit(run)
        elif self.state != STARTING:
            self._set(CONNECTING, f"Connecting to the backend at {self.settings.url}...", -1)

    def _connected_now(self, run: int) -> None:
        self._connected = True
        if self._inputs is not None:
            self._submit(run)

    def _submit(self, run: int) -> None:
        self._lap("connect")  # the wait for the backend after the page was ready (0 when it answered first)
        inputs = self._inputs
        assert inputs is not None and inputs.request is not None
        opts = self.options.job_options()
        self.last_options = dict(opts)
        request, speaks = inputs.request, bool((self.connection.info or {}).get("frames"))
        request.options = opts
        inputs.request = None  # the page is sent once: drop the encoded copies (the target stays for the result)
        self._lap("gui_submit")
        self._in_worker(run, lambda: wire.encode_body(request, speaks, self.settings.url), lambda body: self._send(run, inputs.target, body), "body")

    def _send(self, run: int, target: Target, body: wire.Body) -> None:
        self.stats["bytes_up"] = len(body.data)
        self._mark = time.monotonic()
        self._set(SUBMITTING, "Sending the page to the backend...", -1)
        self.jobs.submit(
            body.data,
            JobHandlers(
                update=lambda job: self._job_update(job),
                result=lambda raw: self._decode(run, target, raw),
                fail=self._fail,
                lost=lambda r: self._fail(self.connection.lost(r)),
                cancelled=lambda: self._end(False, CANCELLED, "The job was cancelled on the backend."),
                guard=lambda fn: self._guarded(run, fn),
            ),
            body.content_type,
        )

    def _job_update(self, job: api.JobState) -> None:
        if job.status == "queued":
            self._set(QUEUED, api.describe_job(job), 0.0)
        elif job.status == "running":
            self._set(RUNNING, api.describe_job(job), job.progress)
        elif job.status == "done":
            self._lap("server_wait")
            self._set(DOWNLOADING, "Receiving the result...", 1.0)

    def _decode(self, run: int, target: Target, data: bytes) -> None:
        self._lap("download")
        self.stats["bytes_down"] = len(data)
        self._set(DOWNLOADING, "Decoding the result...", 1.0)
        self._in_worker(run, lambda: read_result(target, data), lambda out: self._apply(target, out), "decode")

    def _apply(self, target: Target, result: Decoded) -> None:
        self._set(APPLYING, "Adding the colour layer...", 1.0)
        t0 = time.monotonic()
        applied = apply_result(self.app, target, result.prepared)
        self.stats["gui_apply"] = round(time.monotonic() - t0, 3)
        self.stats.update({f"apply_{k}": v for k, v in applied.timings.items()})
        self.last_result = applied
        self.notes += applied.notes + result.notes
        seconds = time.monotonic() - self._started_at
        self.stats["total"] = round(seconds, 3)
        self.timings = timing.summarize(self.stats, result.seconds, result.transport, self.stats.get("bytes_up", 0), self.stats.get("bytes_down", 0))
        timing.log(self.timings)
        entry = self.history.add(
            target, document_title(target.document), result.png, model_version=result.model_version,
            options=self.options.changed_from_default(self.last_options or {}), seconds=seconds,
            bgra_z=result.bgra_z, size=(result.width, result.height),
        )  # fmt: skip
        self.variants, self.variants_target, self.chosen_variant = list(result.variants), target, 1
        self.history_changed.emit()
        self.variants_changed.emit()
        self._end(True, DONE, applied.describe(target, f"Model {result.model_version}; result #{entry.id} in the history.", seconds))

    def _server_lost(self, message: str) -> None:
        if self.state in ON_BACKEND_STATES:  # our server died under a running job: say so now, not at the next poll
            self.jobs.abort()
            self._fail(message)

    # --- the history ---

    def restore(self, entry_id: int) -> None:
        """Put a result from the history back as the MangaColor layer of its document."""
        result_actions.restore(self, entry_id)

    # --- the last run's variants (issue 13) ---

    def pick_variant(self, number: int) -> None:
        """Variant `number` of the last run becomes the MangaColor layer (one undoable change, like a result)."""
        result_actions.pick_variant(self, number)

    def keep_as_draft(self, number: int) -> None:
        """Variant `number` becomes the Draft layer (draft_layer.py)."""
        result_actions.keep_as_draft(self, number)

    # --- all open documents ---

    def colorize_all(self) -> None:
        """Colorize every open document, one after the other, each with its own role choices."""
        if self.busy:
            return
        docs = list(self.app.documents())
        if not docs:
            self._begin()
            self._fail("No document is open.")
            return
        self.batch = BatchRun(docs)
        self.notes = []
        self._batch_next()

    def _batch_next(self) -> None:
        b = self.batch
        if b is None:
            return
        doc = b.next_open(lambda d: document_is_open(self.app, d))
        if doc is not None:
            self._colorize(doc, use_active=False)
            return
        self.batch = None
        ok, message, notes = b.summary()
        self.notes += notes
        self._set(DONE if ok else ERROR, message, 1.0 if ok else 0.0)
        self.finished.emit(ok, message)

    # --- cancel and shutdown ---

    def cancel(self) -> None:
        if not self.busy:
            return
        state = self.state
        self._run += 1  # every answer still on its way now belongs to a dead run
        self.jobs.cancel()
        message = "Cancelled: nothing was changed."
        if state == STARTING:
            message += " The backend keeps starting in the background."
        b = self.batch
        if b is not None:
            message = b.cancel_message()
            self.batch = None
        self._end(False, CANCELLED, message)

    def shutdown(self) -> None:
        """Krita is closing: stop polling, and stop the server if this plugin started it."""
        if self.busy:
            self.cancel()
        self.worker.forget()
        self.connection.shutdown()


_instance: Optional[ColorizeModel] = None


def instance(app: Any = None) -> ColorizeModel:
    """The one model of this Krita (shared by every window's docker and the actions)."""
    global _instance
    if _instance is None:
        if app is None:
            from krita import Krita  # only inside Krita (or with the test's mock module)

            app = Krita.instance()
        _instance = ColorizeModel(app)
    return _instance
