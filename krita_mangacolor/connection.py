"""The connection to the backend, in one place: its URL and token (settings.py), the HTTP client (client.py),
the server this plugin may start (backend_process.py), health checks, and the backend line of the docker.

Four ways to the backend, all here:
  check()   the docker's Check button and the docker's first look: ask /v1/health, never start anything;
  start()   the Start button: start the configured server unless something already answers;
  stop()    the Stop button: stop the server this plugin started (never one started elsewhere);
  ensure()  before a job: ask /v1/health; not reachable -> start the server (if a command is configured)
            and ask again every second until it answers or the startup timeout passes.
When the backend answers, its option schema (GET /v1/options) is fetched and handed to `on_options`.
Nothing blocks: every answer comes back on Krita's event loop.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

from . import api
from .backend_process import ServerProcess
from .client import Client, Response
from .qt import QObject, QTimer, pyqtSignal
from .settings import Settings, manual_start_hint, read_token

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


def lost_backend_message(settings: Settings, why: str, ours: bool) -> str:
    again = (
        "Press Colorize to start it again."
        if settings.can_start_server
        else f"Start it again ({manual_start_hint(settings.url)}) and press Colorize."
    )
    who = "The MangaColor backend started by MangaColor" if ours else "The MangaColor backend"
    return f"{who} stopped while colorizing ({why}). Nothing was changed in the document. {again}"


class _Wait:
    """One ensure(): who to tell, and until when a starting server is waited for."""

    def __init__(self, ready: Callable[[], None], fail: Callable[[str], None], starting: Callable[[], None]):
        self.ready, self.fail, self.starting = ready, fail, starting
        self.deadline = 0.0  # 0 until the server is being waited for


class Connection(QObject):
    backend_changed = pyqtSignal(str)  # the backend line of the docker
    server_lost = pyqtSignal(str)  # the server this plugin started stopped outside a start: the message for a job

    def __init__(
        self,
        settings_loader: Callable[[], Settings],
        on_options: Callable[[Response], None],
        client: Optional[Client] = None,
        server: Optional[ServerProcess] = None,
        parent: Optional[QObject] = None,
    ):
        super().__init__(parent)
        self._load_settings = settings_loader
        self.settings = settings_loader()
        self._on_options = on_options
        self.client = client or Client(lambda: self.settings.url, read_token, self)
        self.server = server or ServerProcess(self)
        self.server.exited.connect(self._server_exited)
        self.status = "Backend: not checked yet"
        self.info: Optional[dict] = None  # the last good /v1/health answer
        self._wait: Optional[_Wait] = None
        self._pending: Any = None  # the health request of the current wait
        self._retry = QTimer(self)  # ensure()'s health polling while the server starts
        self._retry.setSingleShot(True)
        self._retry.timeout.connect(self._ask)
        self._start_timer = QTimer(self)  # the Start button's own health polling
        self._start_timer.setSingleShot(True)
        self._start_timer.timeout.connect(self._start_poll)
        self._start_until = 0.0

    def reload_settings(self) -> Settings:
        self.settings = self._load_settings()
        return self.settings

    def _set(self, text: str) -> None:
        self.status = text
        self.backend_changed.emit(text)

    def _answered(self, data: Any, suffix: str = "") -> None:
        self.info = dict(data) if isinstance(data, dict) else None
        started = " (started by MangaColor)" if self.server.running else ""
        self._set(f"Backend: {api.describe_health(data)} at {self.settings.url}{started}{suffix}")

    def _not_running_text(self) -> str:
        s = self.settings
        if self.server.running:
            return f"Backend: starting ({self.server.describe()})"
        if s.can_start_server:
            return f"Backend: not running at {s.url}; Colorize or Start will start it"
        return f"Backend: not running at {s.url}; start it: {manual_start_hint(s.url)}"

    def fetch_options(self, then: Optional[Callable[[Response], None]] = None) -> Any:
        def done(r: Response) -> None:
            self._on_options(r)
            if then is not None:
                then(r)

        return self.client.options(done)

    @property
    def can_stop(self) -> bool:
        return self.server.running

    # --- the docker's buttons ---

    def check(self) -> None:
        """Ask /v1/health (and /v1/options when it answers) and update the backend line; never starts anything."""
        self.reload_settings()

        def done(r: Response) -> None:
            ok, why = api.health_is_compatible(r.data) if r.ok else (False, "")
            if ok:
                self._answered(r.data)
                self.fetch_options()
                return
            self.info = None
            if r.ok:
                self._set(f"Backend: {why}")
            elif r.unreachable:
                self._set(self._not_running_text())
            else:
                self._set(f"Backend: {self.settings.url} answered: {r.error}")

        self.client.health(done)

    def start(self) -> None:
        """The Start button: start the configured server unless something already answers."""
        settings = self.reload_settings()

        def answer(r: Response) -> None:
            if r.ok:
                self._answered(r.data, " (already running)")
                return
            if self.server.running:
                self._set(f"Backend: starting ({self.server.describe()})")
                return
            if not settings.can_start_server:
                self._set(f"Backend: no server command configured; start it by hand: {manual_start_hint(settings.url)}")
                return
            error = self._start_server()
            if error:
                self._set("Backend: " + error)
                return
            self._start_until = time.monotonic() + settings.startup_timeout
            self._start_timer.start(HEALTH_RETRY_MS)

        self.client.health(answer)

    def _start_poll(self) -> None:
        if not self.server.running:
            return  # _server_exited said why

        def answer(r: Response) -> None:
            if r.ok:
                self._answered(r.data)
                self.fetch_options()
            elif time.monotonic() < self._start_until and self.server.running:
                self._start_timer.start(HEALTH_RETRY_MS)
            elif self.server.running:
                self._set(f"Backend: did not answer within {self.settings.startup_timeout:.0f} s of starting")

        self.client.health(answer)

    def stop(self) -> bool:
        """The Stop button (the model cancels its job first). False when this plugin started no server."""
        if not self.server.running:
            self._set("Backend: MangaColor did not start the server that runs (if one runs): stop it where it was started")
            return False
        self._start_timer.stop()
        self.server.stop()
        self.info = None
        self._set("Backend: stopped (the server started by MangaColor)")
        return True

    def _start_server(self) -> str:
        """Start the configured server: '' when it is starting, else the message for the user."""
        error = self.server.start(self.settings.server_command, self.settings.cwd)
        if error:
            return could_not_start_message(self.settings, error)
        self._set(f"Backend: starting {self.server.describe()}")
        return ""

    # --- before a job ---

    def ensure(self, ready: Callable[[], None], fail: Callable[[str], None], starting: Callable[[], None]) -> None:
        """Find the backend or start it, then fetch its options: ready(), or fail(message). starting() is
        called once when the wait for a starting server begins."""
        self.abandon()
        self._wait = _Wait(ready, fail, starting)
        self._ask()

    def abandon(self) -> None:
        """Forget the current ensure() (the job was cancelled): the server, if starting, keeps starting."""
        self._wait = None
        self._retry.stop()
        if self._pending is not None:
            self._pending.abort()
            self._pending = None

    def _ask(self) -> None:
        wait = self._wait
        if wait is not None:
            self._pending = self.client.health(lambda r: self._health_answer(wait, r))

    def _finish(self, wait: _Wait, message: str = "") -> None:
        self._wait = None
        self._pending = None
        if message:
            wait.fail(message)
        else:
            wait.ready()

    def _health_answer(self, wait: _Wait, r: Response) -> None:
        if wait is not self._wait:
            return
        settings = self.settings
        if r.ok:
            ok, why = api.health_is_compatible(r.data)
            if not ok:
                self._finish(wait, f"{why} ({settings.url})")
                return
            self._answered(r.data)
            # the options may have changed with the backend (restarted, upgraded): ask, then go on
            # (an older backend without /v1/options: go on with no options)
            self._pending = self.fetch_options(lambda _r: wait is self._wait and self._finish(wait))
        elif not r.unreachable:
            self._finish(wait, f"The server at {settings.url} answered the health check with: {r.error}")
        elif wait.deadline:
            if time.monotonic() > wait.deadline:
                tail = self.server.output_tail()
                self._finish(
                    wait,
                    f"The MangaColor backend did not answer within {settings.startup_timeout:.0f} s of starting."
                    + (f"\nIts last output:\n{tail}" if tail else ""),
                )
            else:
                self._retry.start(HEALTH_RETRY_MS)
        elif self.server.running:  # started earlier (by a previous Colorize or Start) and still coming up
            self._wait_for_server(wait)
        elif settings.can_start_server:
            error = self._start_server()
            if error:
                self._finish(wait, error)
            else:
                self._wait_for_server(wait)
        else:
            self.info = None
            self._set(f"Backend: not running at {settings.url}")
            self._finish(wait, not_running_message(settings))

    def _wait_for_server(self, wait: _Wait) -> None:
        wait.deadline = time.monotonic() + self.settings.startup_timeout
        wait.starting()
        self._retry.start(HEALTH_RETRY_MS)

    # --- the server this plugin started ---

    def _server_exited(self, code: int, output: str) -> None:
        self._start_timer.stop()
        self.info = None
        wait = self._wait
        if wait is not None and wait.deadline:
            self._retry.stop()
            self._set("Backend: stopped")
            if self.server.start_error:
                self._finish(wait, could_not_start_message(self.settings, self.server.start_error))
            else:
                self._finish(
                    wait,
                    f"The MangaColor backend stopped while starting (exit code {code})."
                    + (f" Its last output:\n{output}" if output else ""),
                )
            return
        how = "it was killed or crashed" if code == -1 else f"exit code {code}"
        self._set(f"Backend: the server started by MangaColor has stopped ({how})")
        self.server_lost.emit(lost_backend_message(self.settings, how, ours=True))

    def lost(self, r: Response, ours: Optional[bool] = None) -> str:
        """A job's request found no backend: update the backend line; the message for the user."""
        self.info = None
        ours = self.server.running if ours is None else ours
        # our server's exit may be reported a moment after the request that found it gone: say it stopped now
        self._set(f"Backend: the server started by MangaColor stopped answering at {self.settings.url}" if ours else f"Backend: not answering at {self.settings.url}")
        why = r.error.split(": ", 1)[-1] or "no answer"
        return lost_backend_message(self.settings, why, ours=ours)

    def shutdown(self) -> None:
        """Krita is closing: stop polling, and stop the server if this plugin started it."""
        self.abandon()
        self._start_timer.stop()
        self.client.abort_all()
        self.server.stop()
