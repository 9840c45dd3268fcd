"""Observable state of the plugin and the lifecycle of colorization jobs, with Qt signals.

    Colorize -> read the layers (document.read_inputs, GUI thread) -> encode PNGs (worker thread)
        -> GET /v1/health -> not reachable: start the server (server.py) if a command is configured, poll health
        -> GET /v1/options (the docker builds its option controls from it) -> POST /v1/jobs with the options
        -> poll GET /v1/jobs/{id} with a QTimer (progress, stage, queue position)
        -> GET /v1/jobs/{id}/result -> decode + convert (worker thread) -> write the result layer (GUI thread)
        -> remember the result in the history (history.py)
    Cancel -> DELETE /v1/jobs/{id}; nothing is written to the document.
    Restore -> a result from the history is written again as the MangaColor layer.
    Colorize all open documents -> the same, one document after the other, each with its own role choices.

Everything runs on Krita's event loop; nothing blocks on the network, and the heavy pixel work runs in a
worker thread. One job at a time per Krita. Every callback carries the number of the run it belongs to, so
answers to a cancelled run are ignored (apart from cancelling a job the backend created after all).
"""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from . import api, document, history, options, roles
from .client import Client, Response
from .config import SETTINGS_GROUP, Settings, load_settings, manual_start_hint, read_token, token_path
from .errors import UserError
from .qt import QObject, QTimer, pyqtSignal
from .server import ServerProcess
from .worker import Worker

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
ON_BACKEND_STATES = (SUBMITTING, QUEUED, RUNNING, DOWNLOADING)

POLL_MS = 500
HEALTH_RETRY_MS = 1000
OPTIONS_SETTING = "options"
NO_INK_PREFIX = "No ink layer"


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


def lost_backend_message(settings: Settings, why: str, ours: bool) -> str:
    again = (
        "Press Colorize to start it again."
        if settings.can_start_server
        else f"Start it again ({manual_start_hint(settings.url)}) and press Colorize."
    )
    who = "The MangaColor backend started by MangaColor" if ours else "The MangaColor backend"
    return f"{who} stopped while colorizing ({why}). Nothing was changed in the document. {again}"


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


class ColorizeModel(QObject):
    changed = pyqtSignal()  # state, status, progress or notes changed
    backend_changed = pyqtSignal(str)
    finished = pyqtSignal(bool, str)  # success, final status text (of a run, or of a whole batch)
    options_changed = pyqtSignal()  # the backend's option schema changed
    history_changed = pyqtSignal()
    roles_changed = pyqtSignal()  # a role choice was stored in a document

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
        self.worker = Worker(self)
        self.poll_ms = poll_ms

        self.state = IDLE
        self.status = "Choose the layers and press Colorize."
        self.progress = 0.0  # 0..1, or -1 while the length of the wait is unknown
        self.notes: list[str] = []
        self.backend_status = "Backend: not checked yet"
        self.backend_info: Optional[dict] = None  # the last good /v1/health answer
        self.job_id: Optional[str] = None
        self.last_result: Optional[document.Applied] = None
        self.last_options: Optional[dict] = None  # the options sent with the last job
        self.last_roles: Optional[tuple] = None  # (ink, hint layer or None, reference layer or None) of the last job
        self.stats: dict = {}  # seconds of the last run: gui_read, encode, gui_submit, decode, gui_apply, total
        self.history = history.History()
        self.option_specs: list[options.OptionSpec] = []
        self.option_values: dict = options.load_saved(self._read_setting(OPTIONS_SETTING))
        self.batch: Optional[BatchRun] = None
        self.last_batch: Optional[BatchRun] = None

        self._run = 0
        self._kind = "colorize"  # or "restore"
        self._raw: Optional[document.RawInputs] = None
        self._inputs: Optional[document.Inputs] = None
        self._pending = None
        self._started_at = 0.0
        self._start_deadline = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._tick)
        self._tick_action: Optional[Callable[[], None]] = None
        self._start_timer = QTimer(self)  # the Start button's own health polling
        self._start_timer.setSingleShot(True)
        self._start_timer.timeout.connect(self._start_poll)
        self._start_until = 0.0

    # --- settings ---

    def _read_setting(self, key: str) -> str:
        read = getattr(self.app, "readSetting", None)
        if read is None:
            return ""
        try:
            return str(read(SETTINGS_GROUP, key, "") or "")
        except Exception:  # pragma: no cover - a broken settings file must not stop the plugin
            return ""

    def _write_setting(self, key: str, value: str) -> None:
        write = getattr(self.app, "writeSetting", None)
        if write is not None:
            write(SETTINGS_GROUP, key, value)

    def reload_settings(self) -> Settings:
        self.settings = self._load_settings()
        return self.settings

    # --- observable state ---

    @property
    def busy(self) -> bool:
        return self.state in ACTIVE_STATES or self.batch is not None

    def _set(self, state: str, status: Optional[str] = None, progress: Optional[float] = None) -> None:
        self.state = state
        b = self.batch
        if status is not None:
            if b is not None and state in ACTIVE_STATES and b.index < b.total:
                status = f"[{b.index + 1}/{b.total}] {document.document_title(b.documents[b.index])}: {status}"
            self.status = status
        if progress is not None:
            if b is not None and state in ACTIVE_STATES and b.total:
                progress = (b.index + max(0.0, progress)) / b.total
            self.progress = progress
        self.changed.emit()

    def _set_backend(self, text: str) -> None:
        self.backend_status = text
        self.backend_changed.emit(text)

    def _end(self, ok: bool, state: str, message: str) -> None:
        """Every run ends here: success, error or cancel."""
        self._stop_timer()
        self._raw = None
        self._inputs = None
        self._pending = None
        if self.batch is not None and state != CANCELLED:
            self._batch_record(ok, message)
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
                traceback.print_exc(file=sys.stderr)
                self._fail(f"Unexpected error in the MangaColor plugin: {exc.__class__.__name__}: {exc}")

        return call

    def _in_worker(self, run: int, fn: Callable[[], Any], then: Callable[[Any], None], stat: str) -> None:
        """Run fn in the worker thread, then `then(result)` on the GUI thread (if the run still lives)."""
        started = time.monotonic()

        def done(result: Any, error: Optional[BaseException]) -> None:
            self.stats[stat] = round(time.monotonic() - started, 3)
            if error is not None:
                if isinstance(error, UserError):
                    self._guarded(run, lambda: self._fail(str(error)))()
                else:
                    msg = f"Unexpected error in the MangaColor plugin: {error.__class__.__name__}: {error}"
                    traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
                    self._guarded(run, lambda: self._fail(msg))()
                return
            self._guarded(run, then)(result)

        self.worker.submit(fn, done)

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

    def report(self, ok: bool, message: str, notes: Optional[list] = None) -> None:
        """Show the outcome of a quick action (new hint layer, colorize mask) in the status line."""
        if self.busy:
            return
        self.notes = list(notes or [])
        self._set(DONE if ok else ERROR, message, 1.0 if ok else 0.0)

    # --- roles (stored in each document) ---

    def active_document(self) -> Any:
        return self.app.activeDocument()

    def role_choices(self, doc: Any = None) -> dict:
        doc = doc if doc is not None else self.active_document()
        return roles.load(doc) if doc is not None else roles.default_choices()

    def set_role(self, role: str, choice: roles.Choice, doc: Any = None) -> bool:
        """Store a role choice in the document (it travels with the .kra). Returns False without a document."""
        doc = doc if doc is not None else self.active_document()
        if doc is None:
            return False
        roles.set_choice(doc, role, choice)
        try:
            doc.setModified(True)  # the choice is part of the document: offer to save it
        except Exception:  # pragma: no cover - older API
            pass
        self.roles_changed.emit()
        return True

    # --- options (from the backend) ---

    def option_value(self, name: str) -> Any:
        return options.effective_values(self.option_specs, self.option_values).get(name)

    def set_option(self, name: str, value: Any) -> None:
        spec = next((s for s in self.option_specs if s.name == name), None)
        if spec is not None:
            value = options.coerce(spec, value)
        self.option_values[name] = value
        self._write_setting(OPTIONS_SETTING, options.dump_saved(self.option_values))

    def reset_options(self) -> None:
        self.option_values = {}
        self._write_setting(OPTIONS_SETTING, "")
        self.options_changed.emit()

    def job_options(self) -> dict:
        return options.job_options(self.option_specs, self.option_values)

    def _take_options(self, r: Response) -> None:
        if not r.ok:
            return
        specs = options.parse_schema(r.data)
        if specs and specs != self.option_specs:
            self.option_specs = specs
            self.options_changed.emit()

    def fetch_options(self, then: Optional[Callable[[], None]] = None) -> None:
        def done(r: Response) -> None:
            self._take_options(r)
            if then is not None:
                then()

        self.client.options(done)

    # --- backend status, start and stop (no job) ---

    def _health_text(self, data: dict, url: str) -> str:
        started = " (started by MangaColor)" if self.server.running else ""
        return f"Backend: {api.describe_health(data)} at {url}{started}"

    def check_backend(self) -> None:
        """Ask /v1/health (and /v1/options when it answers) and update the backend line; never starts anything."""
        settings = self.reload_settings()

        def done(r: Response) -> None:
            if r.ok:
                ok, why = api.health_is_compatible(r.data)
                if ok:
                    self.backend_info = dict(r.data)
                    self._set_backend(self._health_text(r.data, settings.url))
                    self.fetch_options()
                else:
                    self.backend_info = None
                    self._set_backend(f"Backend: {why}")
            elif r.unreachable:
                self.backend_info = None
                if self.server.running:
                    self._set_backend(f"Backend: starting ({self.server.describe()})")
                elif settings.can_start_server:
                    self._set_backend(f"Backend: not running at {settings.url}; Colorize or Start will start it")
                else:
                    self._set_backend(f"Backend: not running at {settings.url}; start it: {manual_start_hint(settings.url)}")
            else:
                self.backend_info = None
                self._set_backend(f"Backend: {settings.url} answered: {r.error}")

        self.client.health(done)

    def start_backend(self) -> None:
        """The docker's Start button: start the configured server unless something already answers."""
        settings = self.reload_settings()

        def answer(r: Response) -> None:
            if r.ok:
                self.backend_info = dict(r.data) if isinstance(r.data, dict) else None
                self._set_backend(self._health_text(r.data, settings.url) + " (already running)")
                return
            if self.server.running:
                self._set_backend(f"Backend: starting ({self.server.describe()})")
                return
            if not settings.can_start_server:
                self._set_backend(f"Backend: no server command configured; start it by hand: {manual_start_hint(settings.url)}")
                return
            error = self.server.start(settings.server_command, settings.cwd)
            if error:
                self._set_backend("Backend: " + could_not_start_message(settings, error))
                return
            self._set_backend(f"Backend: starting {self.server.describe()}")
            self._start_until = time.monotonic() + settings.startup_timeout
            self._start_timer.start(HEALTH_RETRY_MS)

        self.client.health(answer)

    def _start_poll(self) -> None:
        if not self.server.running:
            return  # _server_exited said why
        settings = self.settings

        def answer(r: Response) -> None:
            if r.ok:
                self.backend_info = dict(r.data) if isinstance(r.data, dict) else None
                self._set_backend(self._health_text(r.data, settings.url))
                self.fetch_options()
            elif time.monotonic() < self._start_until and self.server.running:
                self._start_timer.start(HEALTH_RETRY_MS)
            elif self.server.running:
                self._set_backend(f"Backend: did not answer within {settings.startup_timeout:.0f} s of starting")

        self.client.health(answer)

    def stop_backend(self) -> bool:
        """The docker's Stop button: stop the server this plugin started (never one started elsewhere)."""
        if not self.server.running:
            self._set_backend("Backend: MangaColor did not start the server that runs (if one runs): stop it where it was started")
            return False
        if self.busy:
            self.cancel()
        self._start_timer.stop()
        self.server.stop()
        self.backend_info = None
        self._set_backend("Backend: stopped (the server started by MangaColor)")
        return True

    @property
    def can_stop_backend(self) -> bool:
        return self.server.running

    # --- the job ---

    def _begin(self, kind: str) -> int:
        self._run += 1
        self._kind = kind
        self.job_id = None
        self.notes = []
        self._raw = None
        self._inputs = None
        self.stats = {}
        self._started_at = time.monotonic()
        return self._run

    def colorize(self, doc: Any = None) -> None:
        if self.busy:
            return
        self._colorize(doc, use_active=True)

    def _colorize(self, doc: Any, use_active: bool) -> None:
        run = self._begin("colorize")
        settings = self.reload_settings()
        self._set(PREPARING, "Reading the layers...", -1)
        t0 = time.monotonic()
        try:
            raw = document.read_inputs(self.app, doc, None, settings.hint_layer, settings.reference_layer, use_active)
        except UserError as exc:
            self._fail(str(exc))
            return
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self._fail(f"Unexpected error while reading the layers: {exc.__class__.__name__}: {exc}")
            return
        self.stats["gui_read"] = round(time.monotonic() - t0, 3)
        self._raw = raw
        self.notes = list(settings.notes) + list(raw.notes)
        self._set(PREPARING, "Preparing the page...", -1)
        self._in_worker(run, lambda: document.encode_inputs(raw), lambda inputs: self._encoded(run, inputs), "encode")

    def _encoded(self, run: int, inputs: document.Inputs) -> None:
        self._raw = None
        self._inputs = inputs
        self.last_roles = (inputs.ink_name, inputs.hint_name, inputs.reference_name)
        self.notes = list(self.settings.notes) + list(inputs.notes)
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
            self.backend_info = dict(r.data)
            self._set_backend(self._health_text(r.data, settings.url))
            # the options may have changed with the backend (restarted, upgraded): ask, then submit
            self._pending = self.client.options(self._guarded(run, lambda o: self._options_answer(run, o)))
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
        elif self.server.running:  # started earlier (by a previous Colorize or Start) and still coming up
            self._wait_for_server(run)
        elif settings.can_start_server:
            error = self.server.start(settings.server_command, settings.cwd)
            if error:
                self._fail(could_not_start_message(settings, error))
                return
            self._set_backend(f"Backend: starting {self.server.describe()}")
            self._wait_for_server(run)
        else:
            self.backend_info = None
            self._set_backend(f"Backend: not running at {settings.url}")
            self._fail(not_running_message(settings))

    def _options_answer(self, run: int, r: Response) -> None:
        self._take_options(r)  # an older backend without /v1/options: submit with no options
        self._submit(run)

    def _wait_for_server(self, run: int) -> None:
        self._start_deadline = time.monotonic() + self.settings.startup_timeout
        self._set(STARTING, "Starting the MangaColor backend (the first start can take a minute)...", -1)
        self._schedule(HEALTH_RETRY_MS, lambda: self._retry_health(run))

    def _retry_health(self, run: int) -> None:
        if run != self._run or self.state != STARTING:
            return
        self._pending = self.client.health(self._guarded(run, lambda r: self._health_answer(run, r)))

    def _server_exited(self, code: int, output: str) -> None:
        self._start_timer.stop()
        self.backend_info = None
        if self.state == STARTING:
            self._set_backend("Backend: stopped")
            if self.server.start_error:
                self._fail(could_not_start_message(self.settings, self.server.start_error))
            else:
                self._fail(
                    f"The MangaColor backend stopped while starting (exit code {code})."
                    + (f" Its last output:\n{output}" if output else "")
                )
            return
        how = "it was killed or crashed" if code == -1 else f"exit code {code}"
        self._set_backend(f"Backend: the server started by MangaColor has stopped ({how})")
        if self.state in ON_BACKEND_STATES:
            # our server died under a running job: say so now rather than at the next poll
            if self._pending is not None:
                self._pending.abort()
            self._fail(lost_backend_message(self.settings, how, ours=True))

    def _lost(self, r: Response) -> None:
        self.backend_info = None
        self._set_backend(f"Backend: not answering at {self.settings.url}")
        self._fail(lost_backend_message(self.settings, r.error.split(": ", 1)[-1] or "no answer", ours=self.server.running))

    def _submit(self, run: int) -> None:
        self._set(SUBMITTING, "Sending the page to the backend...", -1)
        inputs = self._inputs
        assert inputs is not None
        opts = self.job_options()
        self.last_options = dict(opts)
        t0 = time.monotonic()
        body = api.encode_body(api.job_body(inputs.ink_b64, inputs.hints_b64, inputs.references_b64, opts))
        # the page is sent once: drop the base64 copies (the target stays for applying the result)
        inputs.ink_b64, inputs.hints_b64, inputs.references_b64 = "", None, []
        self.stats["gui_submit"] = round(time.monotonic() - t0, 3)

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
            if r.unreachable and not r.timed_out:
                self._lost(r)
            else:
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
            self._end(False, CANCELLED, "The job was cancelled on the backend.")
            return
        self._schedule(self.poll_ms, lambda: self._poll(run))

    def _poll(self, run: int) -> None:
        if run != self._run or not self.busy or not self.job_id:
            return

        def answer(r: Response) -> None:
            if not r.ok:
                if r.unreachable:
                    self._lost(r)
                elif r.status == 404:
                    self._fail(f"The backend no longer knows this job (was it restarted?): {r.error}")
                else:
                    self._fail(self._http_error(r, "report on the job"))
                return
            self._job_update(run, api.parse_job(r.data))

        self._pending = self.client.job(self.job_id, self._guarded(run, answer))

    def _download(self, run: int) -> None:
        self._set(DOWNLOADING, "Receiving the result...", 1.0)
        target = self._inputs.target if self._inputs is not None else None
        assert target is not None

        def answer(r: Response) -> None:
            if not r.ok:
                if r.unreachable and not r.timed_out:
                    self._lost(r)
                else:
                    self._fail(self._http_error(r, "send the result"))
                return
            data = r.raw

            def decode() -> tuple:
                value = api.parse_json(data)
                try:
                    result = api.parse_result(value)
                except ValueError as exc:
                    raise UserError(str(exc)) from None
                png = _b64decode(result.color_layer_b64)
                prepared = document.prepare_png(target, png)
                if (prepared.width, prepared.height) != (result.width, result.height):
                    raise UserError(
                        f"The backend's colour layer is {prepared.width}x{prepared.height} but it said {result.width}x{result.height}."
                    )
                return result, png, prepared

            self._set(DOWNLOADING, "Decoding the result...", 1.0)
            self._in_worker(run, decode, lambda out: self._apply(run, target, *out), "decode")

        self._pending = self.client.result(self.job_id, self._guarded(run, answer), raw=True)

    def _apply(self, run: int, target: document.Target, result: api.Result, png: bytes, prepared: document.Prepared) -> None:
        self._set(APPLYING, "Adding the colour layer...", 1.0)
        t0 = time.monotonic()
        applied = document.apply_result(self.app, target, prepared, prepared.width, prepared.height)
        self.stats["gui_apply"] = round(time.monotonic() - t0, 3)
        self.stats.update({f"apply_{k}": v for k, v in applied.timings.items()})
        self.last_result = applied
        self.notes += applied.notes
        seconds = time.monotonic() - self._started_at
        self.stats["total"] = round(seconds, 3)
        entry = self.history.add(
            document=target.document,
            doc_name=document.document_title(target.document),
            ink_id=target.ink_id,
            ink_name=target.ink_name,
            region=target.region,
            doc_size=target.doc_size,
            color_png=png,
            width=prepared.width,
            height=prepared.height,
            mask_z=history.compress_mask(target.mask),
            model_version=result.model_version,
            options=options.changed_from_default(self.option_specs, self.last_options or {}),
            seconds=seconds,
        )
        self.history_changed.emit()
        self._end(True, DONE, self._done_message(applied, target, f"Model {result.model_version}; result #{entry.id} in the history.", seconds))

    def _done_message(self, applied: document.Applied, target: document.Target, tail: str, seconds: float) -> str:
        verb = "replaced" if applied.replaced else "added"
        area = "" if target.full_page else " (selected area)"
        if applied.above:
            where = f"above '{target.ink_name}'{area}, blending with Multiply (the ink is the lowest layer)"
        else:
            where = f"beneath '{target.ink_name}'{area}; '{target.ink_name}' blends with Multiply"
        steps = "one undo step" if applied.undo_steps == 1 else f"{applied.undo_steps} undo steps"
        return f"Done in {seconds:.1f} s: {verb} layer '{applied.layer_name}' {where} ({steps}). {tail}"

    # --- the history ---

    def restore(self, entry_id: int) -> None:
        """Put a result from the history back as the MangaColor layer of its document."""
        if self.busy:
            return
        entry = self.history.get(entry_id)
        run = self._begin("restore")
        if entry is None:
            self._fail("That result is no longer in the history.")
            return
        if not document.document_is_open(self.app, entry.document):
            self._fail(f"The document '{entry.doc_name}' of result #{entry.id} is no longer open.")
            return
        doc = entry.document
        try:
            doc_format = (doc.colorModel(), doc.colorDepth())
        except Exception:  # pragma: no cover - defensive
            doc_format = ("RGBA", "U8")
        target = document.Target(doc, entry.ink_id, entry.ink_name, entry.region, entry.doc_size, doc_format, entry.mask)
        self._set(APPLYING, f"Restoring result #{entry.id}...", -1)

        def applied_ok(prepared: document.Prepared) -> None:
            applied = document.apply_result(self.app, target, prepared, prepared.width, prepared.height)
            self.last_result = applied
            self.notes = list(applied.notes)
            self._end(True, DONE, self._done_message(applied, target, f"Restored result #{entry.id}.", time.monotonic() - self._started_at))

        self._in_worker(run, lambda: document.prepare_png(target, entry.color_png), applied_ok, "decode")

    # --- all open documents ---

    def colorize_all(self) -> None:
        """Colorize every open document, one after the other, each with its own role choices."""
        if self.busy:
            return
        docs = list(self.app.documents())
        if not docs:
            self._begin("colorize")
            self._fail("No document is open.")
            return
        self.batch = BatchRun(docs)
        self.notes = []
        self._batch_start()

    def _batch_start(self) -> None:
        b = self.batch
        if b is None:
            return
        while b.index < b.total and not document.document_is_open(self.app, b.documents[b.index]):
            b.skipped.append((document.document_title(b.documents[b.index]), "closed meanwhile"))
            b.index += 1
        if b.index >= b.total:
            self._batch_finish()
            return
        self._colorize(b.documents[b.index], use_active=False)

    def _batch_record(self, ok: bool, message: str) -> None:
        b = self.batch
        assert b is not None
        title = document.document_title(b.documents[b.index])
        if ok:
            b.done.append(title)
        elif message.startswith(NO_INK_PREFIX):
            b.skipped.append((title, "no ink layer"))
        else:
            b.failed.append((title, message.split("\n")[0]))
        b.index += 1
        self._set(self.state, None, 0.0)
        QTimer.singleShot(0, self._batch_start)

    def _batch_finish(self) -> None:
        b = self.batch
        self.batch = None
        assert b is not None
        parts = [f"Colorized {len(b.done)} of {b.total} open document{'s' if b.total != 1 else ''} in {time.monotonic() - b.started:.1f} s."]
        if b.skipped:
            parts.append("Skipped: " + "; ".join(f"'{t}' ({why})" for t, why in b.skipped) + ".")
        if b.failed:
            parts.append("Failed: " + "; ".join(f"'{t}' ({why})" for t, why in b.failed) + ".")
        if b.skipped and any(why == "no ink layer" for _, why in b.skipped):
            self.notes.append("name the line-art layer 'Ink' (or choose it in the docker) in the skipped documents")
        ok = not b.failed and bool(b.done)
        message = " ".join(parts)
        self.last_batch = b
        self._set(DONE if ok else ERROR, message, 1.0 if ok else 0.0)
        self.finished.emit(ok, message)

    # --- cancel and shutdown ---

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
        message = "Cancelled: nothing was changed."
        if state == STARTING:
            message += " The backend keeps starting in the background."
        b = self.batch
        if b is not None:
            message = (
                f"Cancelled: {len(b.done)} of {b.total} open documents were colorized before; "
                f"'{document.document_title(b.documents[b.index])}' and the rest were not changed."
                if b.index < b.total else "Cancelled."
            )
            self.last_batch = b
            self.batch = None
        self._end(False, CANCELLED, message)

    def shutdown(self) -> None:
        """Krita is closing: stop polling, and stop the server if this plugin started it."""
        if self.busy:
            self.cancel()
        self.worker.forget()
        self._start_timer.stop()
        self.client.abort_all()
        self.server.stop()


def _b64decode(text: str) -> bytes:
    import base64
    import binascii

    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise UserError("the backend sent a colour layer that is not valid base64") from None


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


def reset_instance() -> None:
    """For tests."""
    global _instance
    _instance = None

