"""Observable state of the plugin and the lifecycle of one colorization job, with Qt signals.

    Colorize -> read layers (document.py) -> GET /v1/health
        -> not reachable: start the server (server.py) if a command is configured, poll health
        -> POST /v1/jobs -> poll GET /v1/jobs/{id} with a QTimer (progress, stage, queue position)
        -> GET /v1/jobs/{id}/result -> write the result layer (document.py)
    Cancel -> DELETE /v1/jobs/{id}; nothing is written to the document.

Everything runs on Krita's event loop; nothing blocks on the network. One job at a time per Krita.
Every callback carries the number of the run it belongs to, so answers to a cancelled run are ignored
(apart from cancelling a job the backend created after all).
"""

from __future__ import annotations

import sys
import time
import traceback
from typing import Any, Callable, Optional

from PyQt5.QtCore import QObject, QTimer, pyqtSignal

from . import api, document, imaging
from .client import Client, Response
from .config import Settings, load_settings, manual_start_hint, read_token, token_path
from .errors import UserError
from .server import ServerProcess

IDLE, PREPARING, CONNECTING, STARTING, SUBMITTING, QUEUED, RUNNING, DOWNLOADING, APPLYING, DONE, ERROR, CANCELLED = (
    "idle",
    "preparing",
    "connecting",
    "starting",
    "submitting",
    "queued",
    "running",
    "downloading",
    "applying",
    "done",
    "error",
    "cancelled",
)
ACTIVE_STATES = (PREPARING, CONNECTING, STARTING, SUBMITTING, QUEUED, RUNNING, DOWNLOADING, APPLYING)

POLL_MS = 500
HEALTH_RETRY_MS = 1000


def not_running_message(settings: Settings) -> str:
    source = " (set by the MANGACOLOR_URL environment variable)" if settings.url_from_env else ""
    return (
        f"The MangaColor backend is not running at {settings.url}{source}, and no server command is "
        "configured to start it. Start it in a terminal:\n"
        f"    {manual_start_hint(settings.url)}\n"
        "or enter the server command under Backend settings in this docker."
    )


def could_not_start_message(settings: Settings, why: str) -> str:
    return (
        f"Could not start the MangaColor backend: {why}.\n"
        f"Command: {settings.command_text() or '(none)'}\n"
        f"Start it by hand:\n    {manual_start_hint(settings.url)}"
    )


class ColorizeModel(QObject):
    changed = pyqtSignal()  # state, status, progress or notes changed
    backend_changed = pyqtSignal(str)
    finished = pyqtSignal(bool, str)  # success, final status text

    def __init__(
        self,
        app: Any,
        settings_loader: Optional[Callable[[], Settings]] = None,
        client: Optional[Client] = None,
        server: Optional[ServerProcess] = None,
        poll_ms: int = POLL_MS,
        parent: Optional[QObject] = None,
    ):
        super().__init__(parent)
        self.app = app
        self._load_settings = settings_loader or (lambda: load_settings(getattr(app, "readSetting", None)))
        self.settings = self._load_settings()
        self.client = client or Client(lambda: self.settings.url, read_token, self)
        self.server = server or ServerProcess(self)
        self.server.exited.connect(self._server_exited)
        self.poll_ms = poll_ms

        self.state = IDLE
        self.status = "Select the ink layer and press Colorize."
        self.progress = 0.0  # 0..1, or -1 while the length of the wait is unknown
        self.notes: list[str] = []
        self.backend_status = "Backend: not checked yet"
        self.job_id: Optional[str] = None
        self.last_result: Optional[document.Applied] = None

        self._run = 0
        self._inputs: Optional[document.Inputs] = None
        self._body: Optional[dict] = None
        self._pending = None
        self._started_at = 0.0
        self._start_deadline = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._tick)
        self._tick_action: Optional[Callable[[], None]] = None

    # --- observable state ---

    @property
    def busy(self) -> bool:
        return self.state in ACTIVE_STATES

    def _set(self, state: str, status: Optional[str] = None, progress: Optional[float] = None) -> None:
        self.state = state
        if status is not None:
            self.status = status
        if progress is not None:
            self.progress = progress
        self.changed.emit()

    def _set_backend(self, text: str) -> None:
        self.backend_status = text
        self.backend_changed.emit(text)

    def _fail(self, message: str) -> None:
        self._stop_timer()
        self._set(ERROR, message, 0.0)
        self.finished.emit(False, message)

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
                traceback.print_exc(file=sys.stderr)
                self._fail(f"Unexpected error in the MangaColor plugin: {exc.__class__.__name__}: {exc}")

        return call

    def _schedule(self, ms: int, action: Callable[[], None]) -> None:
        self._tick_action = action
        self._timer.start(ms)

    def _tick(self) -> None:
        action, self._tick_action = self._tick_action, None
        if action is not None:
            action()

    def _stop_timer(self) -> None:
        self._timer.stop()
        self._tick_action = None

    # --- settings ---

    def reload_settings(self) -> Settings:
        self.settings = self._load_settings()
        return self.settings

    # --- backend status (no job) ---

    def check_backend(self) -> None:
        """Ask /v1/health and update the backend line; never starts anything."""
        settings = self.reload_settings()

        def done(r: Response) -> None:
            if r.ok:
                ok, why = api.health_is_compatible(r.data)
                self._set_backend(f"Backend: {api.describe_health(r.data)} at {settings.url}" if ok else f"Backend: {why}")
            elif r.unreachable:
                if self.server.running:
                    self._set_backend(f"Backend: starting ({self.server.describe()})")
                elif settings.can_start_server:
                    self._set_backend(f"Backend: not running at {settings.url}; Colorize will start it")
                else:
                    self._set_backend(f"Backend: not running at {settings.url}; start it: {manual_start_hint(settings.url)}")
            else:
                self._set_backend(f"Backend: {settings.url} answered: {r.error}")

        self.client.health(done)

    # --- the job ---

    def colorize(self) -> None:
        if self.busy:
            return
        self._run += 1
        run = self._run
        self.job_id = None
        self.notes = []
        self._inputs = None
        self._body = None
        settings = self.reload_settings()
        self._started_at = time.monotonic()
        self._set(PREPARING, "Reading the layers...", -1)
        try:
            inputs = document.collect_inputs(self.app, settings.hint_layer, settings.reference_layer)
        except UserError as exc:
            self._fail(str(exc))
            return
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self._fail(f"Unexpected error while reading the layers: {exc.__class__.__name__}: {exc}")
            return
        self._inputs = inputs
        self.notes = list(settings.notes) + list(inputs.notes)
        self._body = api.job_body(inputs.ink_b64, inputs.hints_b64, inputs.references_b64, {})
        self._connect(run)

    def _connect(self, run: int) -> None:
        settings = self.settings
        self._set(CONNECTING, f"Connecting to the backend at {settings.url}...", -1)
        self._pending = self.client.health(self._guarded(run, lambda r: self._health_answer(run, r)))

    def _health_answer(self, run: int, r: Response) -> None:
        settings = self.settings
        if r.ok:
            ok, why = api.health_is_compatible(r.data)
            if not ok:
                self._fail(f"{why} ({settings.url})")
                return
            started = " (started by MangaColor)" if self.server.running else ""
            self._set_backend(f"Backend: {api.describe_health(r.data)} at {settings.url}{started}")
            self._submit(run)
        elif not r.unreachable:
            self._fail(f"The server at {settings.url} answered the health check with: {r.error}")
        elif self.state == STARTING:
            if time.monotonic() > self._start_deadline:
                tail = self.server.output_tail()
                self._fail(
                    f"The MangaColor backend did not answer within {settings.startup_timeout:.0f} s of starting."
                    + (f"\nIts last output:\n{tail}" if tail else "")
                )
            else:
                self._schedule(HEALTH_RETRY_MS, lambda: self._retry_health(run))
        elif self.server.running:  # started earlier (by a previous Colorize) and still coming up
            self._wait_for_server(run)
        elif settings.can_start_server:
            error = self.server.start(settings.server_command, settings.cwd)
            if error:
                self._fail(could_not_start_message(settings, error))
                return
            self._set_backend(f"Backend: starting {self.server.describe()}")
            self._wait_for_server(run)
        else:
            self._set_backend(f"Backend: not running at {settings.url}")
            self._fail(not_running_message(settings))

    def _wait_for_server(self, run: int) -> None:
        self._start_deadline = time.monotonic() + self.settings.startup_timeout
        self._set(STARTING, "Starting the MangaColor backend (the first start can take a minute)...", -1)
        self._schedule(HEALTH_RETRY_MS, lambda: self._retry_health(run))

    def _retry_health(self, run: int) -> None:
        if run != self._run or self.state != STARTING:
            return
        self._pending = self.client.health(self._guarded(run, lambda r: self._health_answer(run, r)))

    def _server_exited(self, code: int, output: str) -> None:
        if self.state == STARTING:
            self._set_backend("Backend: stopped")
            if self.server.start_error:
                self._fail(could_not_start_message(self.settings, self.server.start_error))
            else:
                self._fail(
                    f"The MangaColor backend stopped while starting (exit code {code})."
                    + (f" Its last output:\n{output}" if output else "")
                )
        else:
            self._set_backend("Backend: the server started by MangaColor has stopped" + (f" (exit code {code})" if code else ""))

    def _submit(self, run: int) -> None:
        self._set(SUBMITTING, "Sending the page to the backend...", -1)
        body = self._body
        self._body = None  # the page is sent once; free the memory

        def answer(r: Response) -> None:
            if run != self._run or not self.busy:
                # Cancelled while the page was uploading: the backend may have made the job anyway.
                if r.ok and isinstance(r.data, dict) and r.data.get("id"):
                    self.client.cancel(str(r.data["id"]))
                return
            self._guarded(run, lambda: self._submitted(run, r))()

        self._pending = self.client.submit(body, answer)

    def _http_error(self, r: Response, doing: str) -> str:
        if r.unreachable:
            return r.error
        if r.status == 401:
            return f"The backend refused the access token ({r.error}). The token is read from {token_path()}."
        if r.status == 503:
            return f"The backend is busy: {r.error}"
        return f"The backend could not {doing}: {r.error}"

    def _submitted(self, run: int, r: Response) -> None:
        if not r.ok:
            self._fail(self._http_error(r, "take this page"))
            return
        job = api.parse_job(r.data)
        self.job_id = job.id
        self._job_update(run, job)

    def _job_update(self, run: int, job: api.JobState) -> None:
        if job.status == "queued":
            self._set(QUEUED, api.describe_job(job), 0.0)
        elif job.status == "running":
            self._set(RUNNING, api.describe_job(job), job.progress)
        elif job.status == "done":
            self._download(run)
            return
        elif job.status == "failed":
            self._fail(f"The backend failed: {job.error or 'no reason given'}")
            return
        elif job.status == "cancelled":
            self._stop_timer()
            self._set(CANCELLED, "The job was cancelled on the backend.", 0.0)
            self.finished.emit(False, self.status)
            return
        self._schedule(self.poll_ms, lambda: self._poll(run))

    def _poll(self, run: int) -> None:
        if run != self._run or not self.busy or not self.job_id:
            return

        def answer(r: Response) -> None:
            if not r.ok:
                if r.status == 404:
                    self._fail(f"The backend no longer knows this job (was it restarted?): {r.error}")
                else:
                    self._fail(self._http_error(r, "report on the job"))
                return
            self._job_update(run, api.parse_job(r.data))

        self._pending = self.client.job(self.job_id, self._guarded(run, answer))

    def _download(self, run: int) -> None:
        self._set(DOWNLOADING, "Receiving the result...", 1.0)

        def answer(r: Response) -> None:
            if not r.ok:
                self._fail(self._http_error(r, "send the result"))
                return
            result = api.parse_result(r.data)
            try:
                img = imaging.decode_png_b64(result.color_layer_b64, "colour layer")
            except ValueError as exc:
                raise UserError(str(exc)) from None
            if (img.width(), img.height()) != (result.width, result.height):
                raise UserError(
                    f"The backend's colour layer is {img.width()}x{img.height()} but it said {result.width}x{result.height}."
                )
            self._apply(result, imaging.bgra8_from_qimage(img), img.width(), img.height())

        self._pending = self.client.result(self.job_id, self._guarded(run, answer))

    def _apply(self, result: api.Result, bgra: bytes, width: int, height: int) -> None:
        inputs = self._inputs
        assert inputs is not None
        self._set(APPLYING, "Adding the colour layer...", 1.0)
        applied = document.apply_result(self.app, inputs, bgra, width, height)
        self.last_result = applied
        self.notes += applied.notes
        seconds = time.monotonic() - self._started_at
        verb = "replaced" if applied.replaced else "added"
        area = "" if inputs.mask is None and inputs.region.area == inputs.doc_size[0] * inputs.doc_size[1] else " (selected area)"
        message = (
            f"Done in {seconds:.1f} s: {verb} layer '{applied.layer_name}' beneath '{inputs.ink_name}'{area}; "
            f"'{inputs.ink_name}' blends with Multiply. Model {result.model_version}."
        )
        self._inputs = None
        self._set(DONE, message, 1.0)
        self.finished.emit(True, message)

    def cancel(self) -> None:
        if not self.busy:
            return
        state = self.state
        self._run += 1  # every answer still on its way now belongs to a dead run
        self._stop_timer()
        if self._pending is not None and state != SUBMITTING:
            # A page upload is left to finish: its answer cancels the job the backend made from it.
            self._pending.abort()
        self._pending = None
        if self.job_id:
            self.client.cancel(self.job_id)
        self._inputs = None
        self._body = None
        message = "Cancelled: nothing was changed."
        if state == STARTING:
            message += " The backend keeps starting in the background."
        self._set(CANCELLED, message, 0.0)
        self.finished.emit(False, message)

    def shutdown(self) -> None:
        """Krita is closing: stop polling, and stop the server if this plugin started it."""
        if self.busy:
            self.cancel()
        self.client.abort_all()
        self.server.stop()


_instance: Optional[ColorizeModel] = None


def instance(app: Any = None) -> ColorizeModel:
    """The one model of this Krita (shared by every window's docker and the action)."""
    global _instance
    if _instance is None:
        if app is None:
            from krita import Krita  # only inside Krita (or with the test's mock module)

            app = Krita.instance()
        _instance = ColorizeModel(app)
    return _instance


def reset_instance() -> None:
    """For tests."""
    global _instance
    _instance = None
