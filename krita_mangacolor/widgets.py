"""The docker's contents (Qt through qt.py, no Krita import), built from small pieces, top to bottom:

    Colorize / Cancel, progress, status, notes      (here)
    Variants of the last run, Keep as draft         (variant_strip.py)
    Layers: the role pickers                        (role_pickers.py)
    Options, from GET /v1/options                   (option_controls.py)
    Recent results and Restore                      (HistoryBox, here)
    Colorize all open, Hints to Colorize Mask       (here)
    Panels & palettes                               (palette_widgets.py)
    the backend line, Start / Stop / Check, settings (backend_panel.py)

Every widget the e2e harness needs has an objectName starting with "mangacolor_".
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from . import ui_model as m
from .backend_panel import BackendPanel
from .option_controls import OptionControls
from .palette_widgets import PanelsPalettesBox
from .qt import QGroupBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QProgressBar, QPushButton, QSizePolicy, Qt, QToolButton, QVBoxLayout, QWidget
from .role_pickers import RolePickers
from .variant_strip import VariantStrip

USER_DATA = Qt.UserRole
COLORIZE_TIP = (
    "Colorize the ink layer, guided by the hint and reference layers, into a 'MangaColor' layer "
    "(only inside the selection, if there is one). Shortcut: Ctrl+Shift+M (Settings > Configure Krita > "
    "Keyboard Shortcuts: 'MangaColor: Colorize')"
)


def _button(text: str, parent: QWidget, name: str, slot: Callable[[], Any], tip: str = "") -> QPushButton:
    button = QPushButton(text, parent)
    button.setObjectName(name)
    if tip:
        button.setToolTip(tip)
    button.clicked.connect(lambda: slot())
    return button


def _label(parent: QWidget, name: str) -> QLabel:
    label = QLabel(parent)
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextSelectableByMouse)
    return label


def _collapsible(layout: QVBoxLayout, text: str, name: str, box: QWidget, expanded: bool, bold: bool) -> QToolButton:
    """A section title that shows and hides `box` (both added to layout)."""
    button = QToolButton(box.parentWidget())
    button.setObjectName(name)
    button.setText(text)
    button.setCheckable(True)
    button.setChecked(expanded)
    button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
    button.setStyleSheet("QToolButton { border: none; font-weight: bold; }" if bold else "QToolButton { border: none; }")

    def show(on: bool) -> None:
        box.setVisible(on)
        button.setArrowType(Qt.DownArrow if on else Qt.RightArrow)

    show(expanded)
    button.toggled.connect(show)
    layout.addWidget(button)
    layout.addWidget(box)
    return button


class HistoryBox(QGroupBox):
    """The last results (history.py), newest first; Restore (or a double click) puts one back."""

    def __init__(self, model: Any, parent: QWidget):
        super().__init__("Recent results", parent)
        self.setObjectName("mangacolor_history_box")
        self.model = model
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.list = QListWidget(self)
        self.list.setObjectName("mangacolor_history")
        self.list.setToolTip("The last results (kept in memory until Krita quits). Restore puts one back as the MangaColor layer.")
        self.list.setMaximumHeight(86)
        self.list.itemDoubleClicked.connect(lambda _item: self.restore_selected())
        layout.addWidget(self.list)
        self.restore_button = _button(
            "Restore", self, "mangacolor_history_restore", self.restore_selected,
            "Put the selected result back as the MangaColor layer of its document (undoable)",
        )  # fmt: skip
        layout.addWidget(self.restore_button)

    def rebuild(self) -> None:
        self.list.clear()
        for entry in self.model.history.entries():
            item = QListWidgetItem(entry.label(), self.list)
            item.setData(USER_DATA, entry.id)
            item.setToolTip(f"{entry.label()}\nmodel {entry.model_version}, {entry.seconds:.1f} s")
        if self.list.count():
            self.list.setCurrentRow(0)

    def restore_selected(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.model.restore(int(item.data(USER_DATA)))


class MangaColorWidget(QWidget):
    def __init__(
        self,
        model: m.ColorizeModel,
        write_setting: Optional[Callable[[str, str, str], None]] = None,
        parent: Optional[QWidget] = None,
        doc_provider: Optional[Callable[[], Any]] = None,
        actions: Optional[dict] = None,
    ):
        super().__init__(parent)
        self.model = model
        self._actions = actions or {}
        self._mask_supported = False
        self.setObjectName("mangacolor_widget")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)

        self._build_run(layout)
        self.variants = VariantStrip(model, self)
        layout.addWidget(self.variants)
        self.roles = RolePickers(model, doc_provider or (lambda: model.app.activeDocument()), lambda: self._trigger("new_hint_layer"), self)
        layout.addWidget(self.roles)
        self.options = OptionControls(model, self.status.setText, self)
        _collapsible(layout, "Options", "mangacolor_options_toggle", self.options, expanded=True, bold=True)
        self.history = HistoryBox(model, self)
        self.history.list.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.history)
        self._build_tools(layout)
        self.panels = PanelsPalettesBox(model, doc_provider or (lambda: model.app.activeDocument()), self)
        _collapsible(layout, "Panels && palettes", "mangacolor_panels_toggle", self.panels, expanded=True, bold=True)
        self.backend = BackendPanel(model, write_setting, lambda: self.roles.refresh(force=True), self)
        layout.addWidget(self.backend)
        box = self.backend.settings_box(self)
        _collapsible(layout, "Backend settings", "mangacolor_backend_toggle", box, expanded=False, bold=False)
        layout.addStretch(1)

        model.changed.connect(self.update_from_model)
        model.backend_changed.connect(self._backend_text)
        model.options_changed.connect(self.options.rebuild)
        model.history_changed.connect(self._history_changed)
        model.roles_changed.connect(lambda: self.roles.refresh(force=True))
        self.options.rebuild()
        self._history_changed()
        self.update_from_model()
        self._backend_text(model.connection.status)
        self.roles.refresh(force=True)

    def _build_run(self, layout: QVBoxLayout) -> None:
        """Colorize / Cancel, the progress bar, the status line and the notes."""
        buttons = QHBoxLayout()
        self.colorize_button = _button("Colorize", self, "mangacolor_colorize_button", self.model.colorize, COLORIZE_TIP)
        self.cancel_button = _button("Cancel", self, "mangacolor_cancel_button", self.model.cancel)
        buttons.addWidget(self.colorize_button, 2)
        buttons.addWidget(self.cancel_button, 1)
        layout.addLayout(buttons)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("mangacolor_progress")
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        layout.addWidget(self.progress)
        self.status = _label(self, "mangacolor_status")
        self.status.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        layout.addWidget(self.status)
        self.notes = _label(self, "mangacolor_notes")
        self.notes.setStyleSheet("font-style: italic")
        layout.addWidget(self.notes)

    def _build_tools(self, layout: QVBoxLayout) -> None:
        row = QHBoxLayout()
        self.colorize_all_button = _button(
            "Colorize all open", self, "mangacolor_colorize_all", self.model.colorize_all,
            "MangaColor: Colorize all open documents: one after the other, each with its own layer choices; "
            "documents without an ink layer are skipped and listed",
        )  # fmt: skip
        self.export_mask_button = _button("Hints to Colorize Mask", self, "mangacolor_export_colorize_mask", lambda: self._trigger("export_colorize_mask"))
        row.addWidget(self.colorize_all_button)
        row.addWidget(self.export_mask_button)
        layout.addLayout(row)
        self.set_colorize_mask_support(False, "Needs Krita 5.2 or newer (its Colorize Mask scripting API).")

    def _trigger(self, name: str) -> None:
        fn = self._actions.get(name)
        if fn is not None:
            fn()

    def _backend_text(self, text: str) -> None:
        self.backend.status.setText(text)
        self._update_buttons()

    def _history_changed(self) -> None:
        self.history.rebuild()
        self._update_buttons()

    def set_colorize_mask_support(self, supported: bool, why: str) -> None:
        self._mask_supported = supported
        self.export_mask_button.setEnabled(supported and not self.model.busy)
        self.export_mask_button.setToolTip(
            "MangaColor: Export hints to Colorize Mask: a Colorize Mask on the ink layer with the hint colours as its "
            "key strokes (Krita 5.2+)" if supported else f"Export hints to Colorize Mask: {why}"
        )

    def _update_buttons(self) -> None:
        busy = self.model.busy
        self.colorize_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.colorize_all_button.setEnabled(not busy)
        self.history.restore_button.setEnabled(not busy and self.history.list.currentItem() is not None)
        self.export_mask_button.setEnabled(self._mask_supported and not busy)
        self.roles.new_hint_button.setEnabled(not busy)
        self.backend.update_buttons()

    def update_from_model(self) -> None:
        mdl = self.model
        self._update_buttons()
        if mdl.progress < 0:
            self.progress.setRange(0, 0)  # indeterminate
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(round(mdl.progress * 1000)))
        self.status.setText(("Error: " if mdl.state == m.ERROR else "") + mdl.status)
        self.notes.setText("\n".join(f"Note: {n}" for n in mdl.notes))
        self.notes.setVisible(bool(mdl.notes))
