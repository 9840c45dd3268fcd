"""The docker's backend box: the backend line, Start / Stop / Check, and the collapsible Backend settings
(URL, server command, folder, the hint and reference layer names that Auto looks for)."""

from __future__ import annotations

from typing import Any, Callable, Optional

from .qt import QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, Qt, QVBoxLayout, QWidget
from .settings import DEFAULT_HINT_LAYER, DEFAULT_REFERENCE_LAYER, Settings, join_command, save_settings, split_command


def _edit(parent: QWidget, name: str, tip: str = "", placeholder: str = "") -> QLineEdit:
    edit = QLineEdit(parent)
    edit.setObjectName(name)
    if tip:
        edit.setToolTip(tip)
    if placeholder:
        edit.setPlaceholderText(placeholder)
    return edit


class BackendPanel(QWidget):
    def __init__(self, model: Any, write_setting: Optional[Callable[[str, str, str], None]], saved: Callable[[], None], parent: QWidget):
        super().__init__(parent)
        self.model = model
        self._write_setting = write_setting
        self._saved = saved  # the docker refreshes its pickers (the layer names may have changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.status = QLabel(self)
        self.status.setObjectName("mangacolor_backend_status")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.status)
        row = QHBoxLayout()
        connection = model.connection
        self.start_button = self._button("Start", "mangacolor_backend_start", "Start the backend with the server command (if it is not running)", connection.start)
        self.stop_button = self._button(
            "Stop", "mangacolor_backend_stop",
            "Stop the backend that MangaColor started (a server started elsewhere is left alone)", model.stop_backend,
        )  # fmt: skip
        self.check_button = self._button("Check", "mangacolor_check_backend", "Ask the backend for its status and options", connection.check)
        for b in (self.start_button, self.stop_button, self.check_button):
            row.addWidget(b)
        layout.addLayout(row)

    def _button(self, text: str, name: str, tip: str, slot: Callable[[], Any]) -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName(name)
        button.setToolTip(tip)
        button.clicked.connect(lambda: slot())
        return button

    def settings_box(self, parent: QWidget) -> QWidget:
        """The form under the "Backend settings" toggle (built by the docker, which places it)."""
        box = QWidget(parent)
        form = QFormLayout(box)
        form.setContentsMargins(12, 0, 0, 0)
        self.url_edit = _edit(box, "mangacolor_url")
        form.addRow("URL:", self.url_edit)
        self.command_edit = _edit(box, "mangacolor_server_command", "Command that starts the backend when it is not running (empty: never start it)")
        form.addRow("Server command:", self.command_edit)
        self.cwd_edit = _edit(box, "mangacolor_cwd")
        form.addRow("Run in folder:", self.cwd_edit)
        self.hint_edit = _edit(box, "mangacolor_hint_layer", "Name of the hint layer that 'Auto' looks for", DEFAULT_HINT_LAYER)
        form.addRow("Hint layer name:", self.hint_edit)
        self.reference_edit = _edit(box, "mangacolor_reference_layer", "Name of the reference layer that 'Auto' looks for", DEFAULT_REFERENCE_LAYER)
        form.addRow("Reference layer name:", self.reference_edit)
        self.save_button = QPushButton("Save", box)
        self.save_button.setObjectName("mangacolor_save_settings")
        self.save_button.clicked.connect(self.save)
        form.addRow(self.save_button)
        self.hint_edit.editingFinished.connect(self.save)
        self.reference_edit.editingFinished.connect(self.save)
        self.load(self.model.settings)
        return box

    def update_buttons(self) -> None:
        connection = self.model.connection
        self.stop_button.setEnabled(connection.can_stop)
        self.start_button.setEnabled(not connection.server.running and connection.info is None)

    def load(self, s: Settings) -> None:
        self.hint_edit.setText(s.hint_layer)
        self.reference_edit.setText(s.reference_layer)
        self.url_edit.setText(s.url)
        self.url_edit.setReadOnly(s.url_from_env)
        if s.url_from_env:
            self.url_edit.setToolTip("Set by the MANGACOLOR_URL environment variable")
        self.command_edit.setText(join_command(s.server_command))
        self.cwd_edit.setText(s.cwd)
        for edit in (self.url_edit, self.command_edit, self.cwd_edit):
            edit.setCursorPosition(0)  # show the start of long paths

    def save(self) -> None:
        connection = self.model.connection
        current = connection.reload_settings()
        try:
            command = split_command(self.command_edit.text())
        except ValueError as exc:
            self.status.setText(f"Backend: the server command is not valid: {exc}")
            return
        s = Settings(
            url=self.url_edit.text().strip() if not current.url_from_env else current.url,
            server_command=command,
            cwd=self.cwd_edit.text().strip(),
            hint_layer=self.hint_edit.text().strip() or DEFAULT_HINT_LAYER,
            reference_layer=self.reference_edit.text().strip() or DEFAULT_REFERENCE_LAYER,
            url_from_env=current.url_from_env,
        )
        if self._write_setting is not None:
            save_settings(self._write_setting, s)
        connection.reload_settings()
        self._saved()
