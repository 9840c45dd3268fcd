"""Starting the local backend as a child process (QProcess: non-blocking, output captured).

The model decides when to start it (the backend did not answer /v1/health) and polls /v1/health
until it does; this module only owns the process.
"""

from __future__ import annotations

import os
from pathlib import Path

from .qt import QObject, QProcess, QProcessEnvironment, pyqtSignal, qbytes

from .settings import join_command

OUTPUT_KEEP = 20_000  # characters of the server's output kept for error messages
# Krita's own Python may set these; the backend's venv python must not inherit them.
_SCRUB_ENV = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE")


def check_command(command: list[str], cwd: str) -> str | None:
    """A message for the user if the command obviously cannot start, else None."""
    if not command:
        return "no server command is configured"
    program = command[0]
    if os.path.isabs(program) and not Path(program).exists():
        return f"the server program {program} does not exist (was MangaColor installed with install.py?)"
    if cwd and not Path(cwd).is_dir():
        return f"the server's working folder {cwd} does not exist"
    return None


class ServerProcess(QObject):
    exited = pyqtSignal(int, str)  # exit code (-1: crashed or failed to start), last output

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._process: QProcess | None = None
        self._output = ""
        self.command: list[str] = []
        self.start_error = ""

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.state() != QProcess.NotRunning

    @property
    def output(self) -> str:
        return self._output

    def output_tail(self, chars: int = 1500) -> str:
        return self._output[-chars:].strip()

    def start(self, command: list[str], cwd: str = "") -> str | None:
        """Start the server; returns an error message, or None if the process is starting."""
        problem = check_command(command, cwd)
        if problem:
            return problem
        if self.running and not self._already_exited():
            return None
        self.command = list(command)
        self._output = ""
        self.start_error = ""
        proc = QProcess(self)
        proc.setProgram(command[0])
        proc.setArguments(command[1:])
        if cwd:
            proc.setWorkingDirectory(cwd)
        env = QProcessEnvironment.systemEnvironment()
        for name in _SCRUB_ENV:
            env.remove(name)
        env.insert("PYTHONUNBUFFERED", "1")
        proc.setProcessEnvironment(env)
        proc.setProcessChannelMode(QProcess.MergedChannels)
        proc.readyReadStandardOutput.connect(self._read)
        proc.errorOccurred.connect(self._error)
        proc.finished.connect(self._finished)
        self._process = proc
        proc.start()
        return None

    @property
    def pid(self) -> int:
        """The process id while it runs, else 0."""
        if not self.running:
            return 0
        try:
            return int(self._process.processId())
        except Exception:  # pragma: no cover - defensive
            return 0

    def describe(self) -> str:
        return join_command(self.command)

    def _read(self) -> None:
        if self._process is None:
            return
        text = qbytes(self._process.readAllStandardOutput()).decode("utf-8", "replace")
        self._output = (self._output + text)[-OUTPUT_KEEP:]

    def _already_exited(self) -> bool:
        """A server killed from outside (SIGKILL, a crash) may not be reaped yet when the connection
        finds it gone and asks for a new one: its `finished` is still queued. Poll without waiting;
        if it has exited, forget it quietly (its late signals must not speak for the new process)."""
        proc = self._process
        if proc is None:
            return True
        proc.blockSignals(True)
        if proc.waitForFinished(0):
            self._process = None
            proc.deleteLater()
            return True
        proc.blockSignals(False)
        return False

    def _error(self, error: QProcess.ProcessError) -> None:
        if self.sender() is not None and self.sender() is not self._process:
            return  # a replaced process's late news
        if error == QProcess.FailedToStart and self._process is not None:
            self.start_error = f"could not start {self.describe()}: {self._process.errorString()}"
            self.exited.emit(-1, self.start_error)

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        if self.sender() is not None and self.sender() is not self._process:
            return  # a replaced process's late news
        self._read()
        if status == QProcess.CrashExit:
            code = -1
        self.exited.emit(code, self.output_tail())

    def stop(self, wait_ms: int = 3000) -> None:
        """Stop a server this plugin started (on Krita's exit); never touches other servers."""
        proc = self._process
        if proc is None or proc.state() == QProcess.NotRunning:
            return
        try:
            proc.finished.disconnect(self._finished)
        except TypeError:
            pass
        proc.terminate()
        if not proc.waitForFinished(wait_ms):
            proc.kill()
            proc.waitForFinished(1000)
