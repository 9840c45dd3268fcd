"""The docker's contents (Qt through qt.py, no Krita import): the Colorize button, progress, the layer role
pickers, the backend's options (built from GET /v1/options), the result history, tools, and the backend box.

Every widget the e2e harness needs has an objectName starting with "mangacolor_".
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional

from . import document, options, roles
from . import model as m
from .config import DEFAULT_HINT_LAYER, DEFAULT_REFERENCE_LAYER, Settings, join_command, save_settings, split_command
from .qt import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    Qt,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

ROLE_LABELS = {"ink": "Ink:", "hints": "Hints:", "reference": "Reference:"}
ROLE_TIPS = {
    "ink": "The line-art layer to colorize. Auto: a layer named like 'Ink' or 'Lineart', else the active layer. "
    "The choice is saved in the document (.kra).",
    "hints": "The layer with colour hints (dots or strokes; it may be hidden). Auto: the layer named 'Hints'. "
    "The choice is saved in the document (.kra).",
    "reference": "An optional layer holding a colour picture whose colours the page should use. "
    "Auto: the layer named 'Reference'. The choice is saved in the document (.kra).",
}
OPTION_PREFIX = "mangacolor_option_"
USER_DATA = Qt.UserRole


def _section(text: str, parent: QWidget, name: str, expanded: bool) -> QToolButton:
    button = QToolButton(parent)
    button.setObjectName(name)
    button.setText(text)
    button.setCheckable(True)
    button.setChecked(expanded)
    button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
    button.setArrowType(Qt.DownArrow if expanded else Qt.RightArrow)
    button.setStyleSheet("QToolButton { border: none; font-weight: bold; }")
    return button


class MangaColorWidget(QWidget):
    def __init__(
        self,
        model: m.ColorizeModel,
        write_setting: Optional[Callable[[str, str, str], None]] = None,
        parent: Optional[QWidget] = None,
        doc_provider: Optional[Callable[[], Any]] = None,
        krita_module: Any = None,
        actions: Optional[dict] = None,
    ):
        super().__init__(parent)
        self.model = model
        self._write_setting = write_setting
        self._doc_provider = doc_provider or (lambda: model.app.activeDocument())
        self._krita_module = krita_module
        self._actions = actions or {}
        self._roles_signature: Any = None
        self._option_widgets: dict[str, QWidget] = {}
        self._option_labels: list[QLabel] = []
        self.setObjectName("mangacolor_widget")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)

        # --- Colorize / Cancel, progress, status ---
        buttons = QHBoxLayout()
        self.colorize_button = QPushButton("Colorize", self)
        self.colorize_button.setObjectName("mangacolor_colorize_button")
        self.colorize_button.setToolTip(
            "Colorize the ink layer, guided by the hint and reference layers, into a 'MangaColor' layer "
            "(only inside the selection, if there is one). Shortcut: Ctrl+Shift+M (Settings > Configure Krita > "
            "Keyboard Shortcuts: 'MangaColor: Colorize')"
        )
        self.colorize_button.clicked.connect(lambda: self.model.colorize())
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

        # --- layer roles ---
        layers = QGroupBox("Layers", self)
        layers.setObjectName("mangacolor_layers")
        form = QFormLayout(layers)
        form.setContentsMargins(4, 4, 4, 4)
        self.role_combos: dict[str, QComboBox] = {}
        for role in roles.ROLES:
            combo = QComboBox(layers)
            combo.setObjectName(f"mangacolor_role_{role}")
            combo.setToolTip(ROLE_TIPS[role])
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
            combo.activated.connect(lambda index, role=role: self._role_picked(role, index))
            self.role_combos[role] = combo
            if role == "hints":
                row = QHBoxLayout()
                row.addWidget(combo, 1)
                self.new_hint_button = QToolButton(layers)
                self.new_hint_button.setObjectName("mangacolor_new_hint_layer")
                self.new_hint_button.setText("New")
                self.new_hint_button.setToolTip(
                    "MangaColor: New hint layer: create the 'Hints' layer directly above the ink (if there is none), "
                    "make it active, and select a small hard brush"
                )
                self.new_hint_button.clicked.connect(lambda: self._trigger("new_hint_layer"))
                row.addWidget(self.new_hint_button)
                form.addRow(ROLE_LABELS[role], row)
            else:
                form.addRow(ROLE_LABELS[role], combo)
        # kept for scripts and tests that read the old label
        self.ink_label = QLabel("", layers)
        self.ink_label.setVisible(False)
        layout.addWidget(layers)

        # --- options from the backend ---
        self.options_toggle = _section("Options", self, "mangacolor_options_toggle", True)
        layout.addWidget(self.options_toggle)
        self.options_box = QWidget(self)
        self.options_box.setObjectName("mangacolor_options_box")
        self.options_form = QFormLayout(self.options_box)
        self.options_form.setContentsMargins(12, 0, 0, 0)
        self.options_empty = QLabel("The options appear once the backend answers (Check, below).", self.options_box)
        self.options_empty.setObjectName("mangacolor_options_empty")
        self.options_empty.setWordWrap(True)
        self.options_form.addRow(self.options_empty)
        self.options_reset = QPushButton("Defaults", self.options_box)
        self.options_reset.setObjectName("mangacolor_options_reset")
        self.options_reset.setToolTip("Set every option back to the backend's default")
        self.options_reset.clicked.connect(self.model.reset_options)
        layout.addWidget(self.options_box)
        self.options_toggle.toggled.connect(lambda on: self._toggle(self.options_toggle, self.options_box, on))

        # --- history ---
        hist = QGroupBox("Recent results", self)
        hist.setObjectName("mangacolor_history_box")
        hl = QVBoxLayout(hist)
        hl.setContentsMargins(4, 4, 4, 4)
        self.history_list = QListWidget(hist)
        self.history_list.setObjectName("mangacolor_history")
        self.history_list.setToolTip("The last results (kept in memory until Krita quits). Restore puts one back as the MangaColor layer.")
        self.history_list.setMaximumHeight(86)
        self.history_list.itemSelectionChanged.connect(self._update_buttons)
        self.history_list.itemDoubleClicked.connect(lambda _item: self.restore_selected())
        hl.addWidget(self.history_list)
        self.restore_button = QPushButton("Restore", hist)
        self.restore_button.setObjectName("mangacolor_history_restore")
        self.restore_button.setToolTip("Put the selected result back as the MangaColor layer of its document (undoable)")
        self.restore_button.clicked.connect(self.restore_selected)
        hl.addWidget(self.restore_button)
        layout.addWidget(hist)

        # --- tools ---
        tools = QHBoxLayout()
        self.colorize_all_button = QPushButton("Colorize all open", self)
        self.colorize_all_button.setObjectName("mangacolor_colorize_all")
        self.colorize_all_button.setToolTip(
            "MangaColor: Colorize all open documents: one after the other, each with its own layer choices; "
            "documents without an ink layer are skipped and listed"
        )
        self.colorize_all_button.clicked.connect(lambda: self.model.colorize_all())
        self.export_mask_button = QPushButton("Hints to Colorize Mask", self)
        self.export_mask_button.setObjectName("mangacolor_export_colorize_mask")
        self.export_mask_button.clicked.connect(lambda: self._trigger("export_colorize_mask"))
        tools.addWidget(self.colorize_all_button)
        tools.addWidget(self.export_mask_button)
        layout.addLayout(tools)
        self.set_colorize_mask_support(False, "Needs Krita 5.2 or newer (its Colorize Mask scripting API).")

        # --- backend ---
        self.backend_status = QLabel(self)
        self.backend_status.setObjectName("mangacolor_backend_status")
        self.backend_status.setWordWrap(True)
        self.backend_status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.backend_status)
        brow = QHBoxLayout()
        self.start_button = QPushButton("Start", self)
        self.start_button.setObjectName("mangacolor_backend_start")
        self.start_button.setToolTip("Start the backend with the server command (if it is not running)")
        self.start_button.clicked.connect(self.model.start_backend)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setObjectName("mangacolor_backend_stop")
        self.stop_button.setToolTip("Stop the backend that MangaColor started (a server started elsewhere is left alone)")
        self.stop_button.clicked.connect(self.model.stop_backend)
        self.check_button = QPushButton("Check", self)
        self.check_button.setObjectName("mangacolor_check_backend")
        self.check_button.setToolTip("Ask the backend for its status and options")
        self.check_button.clicked.connect(self.model.check_backend)
        for b in (self.start_button, self.stop_button, self.check_button):
            brow.addWidget(b)
        layout.addLayout(brow)

        self.backend_toggle = _section("Backend settings", self, "mangacolor_backend_toggle", False)
        self.backend_toggle.setStyleSheet("QToolButton { border: none; }")
        layout.addWidget(self.backend_toggle)
        self.backend_box = QWidget(self)
        bform = QFormLayout(self.backend_box)
        bform.setContentsMargins(12, 0, 0, 0)
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
        self.hint_edit = QLineEdit(self.backend_box)
        self.hint_edit.setObjectName("mangacolor_hint_layer")
        self.hint_edit.setPlaceholderText(DEFAULT_HINT_LAYER)
        self.hint_edit.setToolTip("Name of the hint layer that 'Auto' looks for")
        bform.addRow("Hint layer name:", self.hint_edit)
        self.reference_edit = QLineEdit(self.backend_box)
        self.reference_edit.setObjectName("mangacolor_reference_layer")
        self.reference_edit.setPlaceholderText(DEFAULT_REFERENCE_LAYER)
        self.reference_edit.setToolTip("Name of the reference layer that 'Auto' looks for")
        bform.addRow("Reference layer name:", self.reference_edit)
        self.save_button = QPushButton("Save", self.backend_box)
        self.save_button.setObjectName("mangacolor_save_settings")
        self.save_button.clicked.connect(self.save_settings)
        bform.addRow(self.save_button)
        self.backend_box.setVisible(False)
        layout.addWidget(self.backend_box)
        self.backend_toggle.toggled.connect(lambda on: self._toggle(self.backend_toggle, self.backend_box, on))
        layout.addStretch(1)

        self.hint_edit.editingFinished.connect(self.save_settings)
        self.reference_edit.editingFinished.connect(self.save_settings)
        self.model.changed.connect(self.update_from_model)
        self.model.backend_changed.connect(self._backend_text)
        self.model.options_changed.connect(self.rebuild_options)
        self.model.history_changed.connect(self.rebuild_history)
        self.model.roles_changed.connect(lambda: self.refresh_roles(force=True))
        self.load_settings(self.model.settings)
        self.rebuild_options()
        self.rebuild_history()
        self.update_from_model()
        self._backend_text(self.model.backend_status)
        self.refresh_roles(force=True)

    # --- small helpers ---

    def _toggle(self, button: QToolButton, box: QWidget, on: bool) -> None:
        box.setVisible(on)
        button.setArrowType(Qt.DownArrow if on else Qt.RightArrow)

    def _trigger(self, name: str) -> None:
        fn = self._actions.get(name)
        if fn is not None:
            fn()

    def _backend_text(self, text: str) -> None:
        self.backend_status.setText(text)
        self._update_buttons()

    def set_colorize_mask_support(self, supported: bool, why: str) -> None:
        self._mask_supported = supported
        self.export_mask_button.setEnabled(supported and not self.model.busy)
        self.export_mask_button.setToolTip(
            "MangaColor: Export hints to Colorize Mask: a Colorize Mask on the ink layer with the hint colours as its "
            "key strokes (Krita 5.2+)" if supported else f"Export hints to Colorize Mask: {why}"
        )

    # --- settings ---

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
        self.refresh_roles(force=True)

    # --- model -> widgets ---

    def _update_buttons(self) -> None:
        busy = self.model.busy
        self.colorize_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.colorize_all_button.setEnabled(not busy)
        self.restore_button.setEnabled(not busy and self.history_list.currentItem() is not None)
        self.export_mask_button.setEnabled(getattr(self, "_mask_supported", False) and not busy)
        self.new_hint_button.setEnabled(not busy)
        self.stop_button.setEnabled(self.model.can_stop_backend)
        self.start_button.setEnabled(not self.model.server.running and self.model.backend_info is None)

    def update_from_model(self) -> None:
        mdl = self.model
        self._update_buttons()
        if mdl.progress < 0:
            self.progress.setRange(0, 0)  # indeterminate
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(round(mdl.progress * 1000)))
        prefix = "Error: " if mdl.state == m.ERROR else ""
        self.status.setText(prefix + mdl.status)
        self.notes.setText("\n".join(f"Note: {n}" for n in mdl.notes))
        self.notes.setVisible(bool(mdl.notes))

    def set_active_layer_name(self, name: Optional[str]) -> None:  # pragma: no cover - compatibility
        self.refresh_roles()

    # --- role pickers ---

    def _document(self) -> Any:
        try:
            return self._doc_provider()
        except Exception:  # pragma: no cover - defensive
            return None

    def refresh_roles(self, force: bool = False) -> None:
        """Rebuild the pickers when the document, its layers, the active layer or the choices changed."""
        doc = self._document()
        if any(c.view().isVisible() for c in self.role_combos.values()):
            return  # never rebuild under an open popup
        if doc is None:
            signature: Any = None
        else:
            try:
                active = doc.activeNode()
                signature = (
                    roles.node_uid(doc.rootNode()),
                    tuple((d, roles.node_uid(n), n.name(), n.type(), n.blendingMode()) for d, n in document.iter_layers(doc.rootNode())),
                    roles.node_uid(active) if active is not None else "",
                    roles.encode(roles.load(doc)),
                    self.model.settings.hint_layer,
                    self.model.settings.reference_layer,
                )
            except Exception:  # pragma: no cover - a document closing under us
                signature = None
        if not force and signature == self._roles_signature:
            return
        self._roles_signature = signature
        for combo in self.role_combos.values():
            combo.blockSignals(True)
            combo.clear()
        try:
            if doc is None or signature is None:
                for combo in self.role_combos.values():
                    combo.addItem("(no document)", None)
                    combo.setEnabled(False)
                return
            choices = roles.load(doc)
            settings = self.model.settings
            preview = document.preview_roles(doc, choices, settings.hint_layer, settings.reference_layer)
            layers = list(document.iter_layers(doc.rootNode()))
            for role, combo in self.role_combos.items():
                combo.setEnabled(True)
                node, text = preview[role]
                auto_text = f"Auto: {text}" if node is not None else f"Auto ({text or 'none found'})"
                combo.addItem(auto_text, roles.AUTO)
                if role != "ink":
                    combo.addItem("None", roles.NONE)
                for depth, layer in layers:
                    if document.is_own_layer(layer.name(), layer.type()):
                        continue
                    combo.addItem("    " * depth + layer.name(), roles.node_uid(layer))
                choice = choices[role]
                if choice.kind == roles.AUTO:
                    combo.setCurrentIndex(0)
                elif choice.kind == roles.NONE:
                    combo.setCurrentIndex(1)
                else:
                    index = combo.findData(choice.uid)
                    if index < 0:
                        combo.addItem(f"{choice.name} (missing)", choice.uid)
                        index = combo.count() - 1
                    combo.setCurrentIndex(index)
        finally:
            for combo in self.role_combos.values():
                combo.blockSignals(False)

    def _role_picked(self, role: str, index: int) -> None:
        combo = self.role_combos[role]
        data = combo.itemData(index)
        doc = self._document()
        if doc is None or data is None:
            return
        if data in (roles.AUTO, roles.NONE):
            choice = roles.Choice(data)
        else:
            node = document.find_by_uid_text(doc, str(data))
            if node is None:
                return
            choice = roles.Choice.layer(node)
        self.model.set_role(role, choice, doc)

    def pick_role(self, role: str, layer_name: Optional[str]) -> bool:
        """Choose a role by layer name ('auto'/'none' too), as a user would in the picker (scripts, tests)."""
        combo = self.role_combos[role]
        self.refresh_roles(force=True)
        for i in range(combo.count()):
            data = combo.itemData(i)
            text = combo.itemText(i).strip()
            if (layer_name in (roles.AUTO, roles.NONE) and data == layer_name) or (data not in (roles.AUTO, roles.NONE) and text == layer_name):
                combo.setCurrentIndex(i)
                self._role_picked(role, i)
                return True
        return False

    # --- options ---

    def rebuild_options(self) -> None:
        form = self.options_form
        while form.rowCount() > 0:
            form.takeRow(0)
        for w in list(self._option_widgets.values()) + self._option_labels:
            w.setVisible(False)
            w.deleteLater()
        self._option_widgets = {}
        self._option_labels = []
        specs = self.model.option_specs
        if not specs:
            form.addRow(self.options_empty)
            self.options_empty.setVisible(True)
            self.options_reset.setVisible(False)
            return
        self.options_empty.setVisible(False)
        values = options.effective_values(specs, self.model.option_values)
        for spec in specs:
            w = self._option_widget(spec, values[spec.name])
            w.setObjectName(OPTION_PREFIX + spec.name)
            tip = spec.help or spec.name
            if spec.type in ("int", "float") and spec.min is not None and spec.max is not None:
                tip += f" ({spec.min:g} to {spec.max:g}; default {spec.default})"
            else:
                tip += f" (default {spec.default})"
            w.setToolTip(tip)
            label = QLabel(spec.label + ":", self.options_box)
            label.setToolTip(tip)
            form.addRow(label, w)
            self._option_widgets[spec.name] = w
            self._option_labels.append(label)
        self.options_reset.setVisible(True)
        form.addRow(self.options_reset)

    def _option_widget(self, spec: options.OptionSpec, value: Any) -> QWidget:
        parent = self.options_box
        name = spec.name
        if spec.type == "bool":
            w = QCheckBox(parent)
            w.setChecked(bool(value))
            w.toggled.connect(lambda on, name=name: self._option_changed(name, bool(on)))
        elif spec.type == "enum":
            w = QComboBox(parent)
            for choice in spec.choices:
                w.addItem(str(choice), choice)
            w.setCurrentIndex(max(0, w.findData(value)))
            w.activated.connect(lambda i, w=w, name=name: self._option_changed(name, w.itemData(i)))
        elif spec.type == "int":
            w = QSpinBox(parent)
            w.setRange(int(spec.min) if spec.min is not None else -(2**31), int(spec.max) if spec.max is not None else 2**31 - 1)
            w.setValue(int(value))
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v, name=name: self._option_changed(name, int(v)))
        elif spec.type == "float":
            w = QDoubleSpinBox(parent)
            lo = spec.min if spec.min is not None else -1e9
            hi = spec.max if spec.max is not None else 1e9
            w.setDecimals(2 if hi - lo <= 10 else 1)
            w.setSingleStep(0.05 if hi - lo <= 2 else 1.0)
            w.setRange(lo, hi)
            w.setValue(float(value))
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v, name=name: self._option_changed(name, float(v)))
        else:  # text, or an option type this plugin does not know yet: JSON in a text field
            w = QLineEdit(parent)
            w.setText(value if spec.type == "string" else json.dumps(value))
            w.editingFinished.connect(lambda w=w, spec=spec: self._text_option(spec, w))
        return w

    def _text_option(self, spec: options.OptionSpec, w: QLineEdit) -> None:
        text = w.text()
        if spec.type == "string":
            self._option_changed(spec.name, text)
            return
        try:
            self._option_changed(spec.name, json.loads(text))
        except ValueError:
            w.setText(json.dumps(self.model.option_value(spec.name)))

    def _option_changed(self, name: str, value: Any) -> None:
        try:
            self.model.set_option(name, value)
        except ValueError as exc:
            self.status.setText(f"Error: {exc}")

    # --- history ---

    def rebuild_history(self) -> None:
        self.history_list.clear()
        for entry in self.model.history.entries():
            item = QListWidgetItem(entry.label(), self.history_list)
            item.setData(USER_DATA, entry.id)
            item.setToolTip(f"{entry.label()}\nmodel {entry.model_version}, {entry.seconds:.1f} s")
        if self.history_list.count():
            self.history_list.setCurrentRow(0)
        self._update_buttons()

    def restore_selected(self) -> None:
        item = self.history_list.currentItem()
        if item is not None:
            self.model.restore(int(item.data(USER_DATA)))
