"""The docker's contents (plain PyQt5, no Krita import): buttons, progress, status, settings.

Every widget the e2e harness needs has an objectName starting with "mangacolor_".
"""

from __future__ import annotations

from typing import Callable, Optional

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import model as m
from .config import DEFAULT_HINT_LAYER, DEFAULT_REFERENCE_LAYER, Settings, join_command, save_settings, split_command


class MangaColorWidget(QWidget):
    def __init__(self, model: m.ColorizeModel, write_setting: Optional[Callable[[str, str, str], None]] = None, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.model = model
        self._write_setting = write_setting
        self.setObjectName("mangacolor_widget")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)

        buttons = QHBoxLayout()
        self.colorize_button = QPushButton("Colorize", self)
        self.colorize_button.setObjectName("mangacolor_colorize_button")
        self.colorize_button.setToolTip(
            "Colorize the active (ink) layer, guided by the hint layer, into a 'MangaColor' layer beneath it "
            "(only inside the selection, if there is one)"
        )
        self.colorize_button.clicked.connect(self.model.colorize)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("mangacolor_cancel_button")
        self.cancel_button.clicked.connect(self.model.cancel)
        buttons.addWidget(self.colorize_button, 2)
        buttons.addWidget(self.cancel_button, 1)
        layout.addLayout(buttons)

        self.progress = QProgressBar(self)
        self.progress.setObjectName("mangacolor_progress")
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        layout.addWidget(self.progress)

        self.status = QLabel(self)
        self.status.setObjectName("mangacolor_status")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.status.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        layout.addWidget(self.status)

        self.notes = QLabel(self)
        self.notes.setObjectName("mangacolor_notes")
        self.notes.setWordWrap(True)
        self.notes.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.notes.setStyleSheet("font-style: italic")
        layout.addWidget(self.notes)

        layers = QGroupBox("Layers", self)
        form = QFormLayout(layers)
        self.ink_label = QLabel("the active layer", layers)
        form.addRow("Ink:", self.ink_label)
        self.hint_edit = QLineEdit(layers)
        self.hint_edit.setObjectName("mangacolor_hint_layer")
        self.hint_edit.setPlaceholderText(DEFAULT_HINT_LAYER)
        self.hint_edit.setToolTip("Name of the layer with colour hints (dots or strokes); it may be empty or hidden")
        form.addRow("Hints:", self.hint_edit)
        self.reference_edit = QLineEdit(layers)
        self.reference_edit.setObjectName("mangacolor_reference_layer")
        self.reference_edit.setPlaceholderText(DEFAULT_REFERENCE_LAYER)
        self.reference_edit.setToolTip("Name of an optional layer holding a colour reference picture")
        form.addRow("Reference:", self.reference_edit)
        layout.addWidget(layers)

        self.backend_toggle = QToolButton(self)
        self.backend_toggle.setObjectName("mangacolor_backend_toggle")
        self.backend_toggle.setText("Backend settings")
        self.backend_toggle.setCheckable(True)
        self.backend_toggle.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.backend_toggle.setArrowType(Qt.RightArrow)
        self.backend_toggle.toggled.connect(self._toggle_backend)
        layout.addWidget(self.backend_toggle)

        self.backend_box = QWidget(self)
        bform = QFormLayout(self.backend_box)
        bform.setContentsMargins(0, 0, 0, 0)
        self.url_edit = QLineEdit(self.backend_box)
        self.url_edit.setObjectName("mangacolor_url")
        bform.addRow("URL:", self.url_edit)
        self.command_edit = QLineEdit(self.backend_box)
        self.command_edit.setObjectName("mangacolor_server_command")
        self.command_edit.setToolTip("Command that starts the backend when it is not running (empty: never start it)")
        bform.addRow("Server command:", self.command_edit)
        self.cwd_edit = QLineEdit(self.backend_box)
        self.cwd_edit.setObjectName("mangacolor_cwd")
        bform.addRow("Run in folder:", self.cwd_edit)
        row = QHBoxLayout()
        self.save_button = QPushButton("Save", self.backend_box)
        self.save_button.setObjectName("mangacolor_save_settings")
        self.save_button.clicked.connect(self.save_settings)
        self.check_button = QPushButton("Check connection", self.backend_box)
        self.check_button.setObjectName("mangacolor_check_backend")
        self.check_button.clicked.connect(self.model.check_backend)
        row.addWidget(self.save_button)
        row.addWidget(self.check_button)
        bform.addRow(row)
        self.backend_box.setVisible(False)
        layout.addWidget(self.backend_box)

        self.backend_status = QLabel(self)
        self.backend_status.setObjectName("mangacolor_backend_status")
        self.backend_status.setWordWrap(True)
        self.backend_status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.backend_status)
        layout.addStretch(1)

        self.hint_edit.editingFinished.connect(self.save_settings)
        self.reference_edit.editingFinished.connect(self.save_settings)
        self.model.changed.connect(self.update_from_model)
        self.model.backend_changed.connect(self.backend_status.setText)
        self.load_settings(self.model.settings)
        self.update_from_model()
        self.backend_status.setText(self.model.backend_status)

    def _toggle_backend(self, on: bool) -> None:
        self.backend_box.setVisible(on)
        self.backend_toggle.setArrowType(Qt.DownArrow if on else Qt.RightArrow)

    def load_settings(self, s: Settings) -> None:
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

    def save_settings(self) -> None:
        current = self.model.reload_settings()
        try:
            command = split_command(self.command_edit.text())
        except ValueError as exc:
            self.backend_status.setText(f"Backend: the server command is not valid: {exc}")
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
        self.model.reload_settings()

    def update_from_model(self) -> None:
        mdl = self.model
        self.colorize_button.setEnabled(not mdl.busy)
        self.cancel_button.setEnabled(mdl.busy)
        if mdl.progress < 0:
            self.progress.setRange(0, 0)  # indeterminate
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(round(mdl.progress * 1000)))
        prefix = "Error: " if mdl.state == m.ERROR else ""
        self.status.setText(prefix + mdl.status)
        self.notes.setText("\n".join(f"Note: {n}" for n in mdl.notes))
        self.notes.setVisible(bool(mdl.notes))

    def set_active_layer_name(self, name: Optional[str]) -> None:
        self.ink_label.setText(f"the active layer ('{name}')" if name else "the active layer")

