"""The docker's "Panels & palettes" box (issue 12):

    [Detect panels] [right to left v]          -> the `Panels` vector layer (panels_model.py)
    Panel: [Panel 2 v]   Colours: [Palette: Pinoko v]   (a selection inside a panel picks it)
    Palettes: the document's library; a ticked palette applies to the whole page
    Name [.....] from [Reference layer v] [Save]   [Import...] [Export...] [Delete]
    status line

Everything it changes goes through PanelsModel into the document (stored in the .kra). The file dialogs are
`ask_path` so the tests can give a path instead.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from . import palette_library, panel_choices, panels_model
from .layers import is_own_layer, iter_layers
from .panels_layer import Panel, panel_at, read_panels
from .qt import (
    QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QPushButton,
    Qt, QtGui, QtWidgets, QVBoxLayout, QWidget,
)  # fmt: skip
from .roles import node_uid

PAGE = "page"


def _swatch_icon(colours: list) -> Any:
    pix = QtGui.QPixmap(48, 12)
    pix.fill(QtGui.QColor(255, 255, 255))
    painter = QtGui.QPainter(pix)
    for i, rgb in enumerate(colours[:6]):
        painter.fillRect(i * 8, 0, 8, 12, QtGui.QColor(*rgb))
    painter.end()
    return QtGui.QIcon(pix)


def ask_path_dialog(parent: QWidget, save: bool, title: str) -> str:
    fn = QtWidgets.QFileDialog.getSaveFileName if save else QtWidgets.QFileDialog.getOpenFileName
    path, _ = fn(parent, title, "", "MangaColor palettes (*.json)")
    return str(path or "")


class PanelsPalettesBox(QGroupBox):
    def __init__(self, model: Any, doc_provider: Callable[[], Any], parent: QWidget):
        super().__init__(parent)  # titled by the docker's collapsible header (widgets.py)
        self.setObjectName("mangacolor_panels_box")
        self.pm = panels_model.instance(model)
        self._doc_provider = doc_provider
        self._signature: Any = None
        self._panels: list[Panel] = []
        self._picked_by_selection: Optional[str] = None
        self.ask_path: Callable[[bool, str], str] = lambda save, title: ask_path_dialog(self, save, title)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)

        row = QHBoxLayout()
        self.detect_button = self._button("Detect panels", "mangacolor_detect_panels", self._detect,
                                          "Find the page's panels (backend) and write them as closed shapes into the "
                                          "'Panels' vector layer; correct them with Krita's shape tools")
        self.order = QComboBox(self)
        self.order.setObjectName("mangacolor_panel_order")
        self.order.addItem("Right to left", "rtl")
        self.order.addItem("Left to right", "ltr")
        row.addWidget(self.detect_button, 2)
        row.addWidget(self.order, 1)
        layout.addLayout(row)

        form = QFormLayout()
        self.panel_combo = self._combo("mangacolor_panel", "The panel to set colours for (a selection inside a panel picks it)")
        self.panel_combo.activated.connect(lambda _i: self._show_choice())
        self.choice_combo = self._combo("mangacolor_panel_colours", "The panel's own reference layer or palette; "
                                        "'Page's colours' uses the page's references and ticked palettes")
        self.choice_combo.activated.connect(self._choice_picked)
        form.addRow("Panel:", self.panel_combo)
        form.addRow("Colours:", self.choice_combo)
        layout.addLayout(form)

        self.library = QListWidget(self)
        self.library.setObjectName("mangacolor_palettes")
        self.library.setToolTip("The document's palettes (saved in the .kra). Ticked: applied to the whole page.")
        self.library.setMaximumHeight(90)
        self.library.itemChanged.connect(self._ticked)
        layout.addWidget(self.library)

        row = QHBoxLayout()
        self.name_edit = QLineEdit(self)
        self.name_edit.setObjectName("mangacolor_palette_name")
        self.name_edit.setPlaceholderText("Palette name")
        self.source = self._combo("mangacolor_palette_source", "Where the palette's colours come from")
        self.save_button = self._button("Save", "mangacolor_save_palette", self._save, "Save the colours as a named palette in this document")
        row.addWidget(self.name_edit, 2)
        row.addWidget(self.source, 2)
        row.addWidget(self.save_button, 1)
        layout.addLayout(row)
        row = QHBoxLayout()
        self.import_button = self._button("Import...", "mangacolor_import_palettes", self._import, "Add the palettes of a .json file")
        self.export_button = self._button("Export...", "mangacolor_export_palettes", self._export, "Write the selected palette (or all) to a .json file")
        self.delete_button = self._button("Delete", "mangacolor_delete_palette", self._delete, "Remove the selected palette from the document")
        for b in (self.import_button, self.export_button, self.delete_button):
            row.addWidget(b)
        layout.addLayout(row)
        self.status = QLabel(self)
        self.status.setObjectName("mangacolor_panels_status")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        self.pm.changed.connect(self._model_changed)
        self.pm.document_changed.connect(lambda: self.refresh(force=True))
        model.changed.connect(self._update_buttons)
        self.refresh(force=True)

    def _button(self, text: str, name: str, slot: Callable[[], Any], tip: str) -> QPushButton:
        b = QPushButton(text, self)
        b.setObjectName(name)
        b.setToolTip(tip)
        b.clicked.connect(lambda: slot())
        return b

    def _combo(self, name: str, tip: str) -> QComboBox:
        c = QComboBox(self)
        c.setObjectName(name)
        c.setToolTip(tip)
        c.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        c.setMinimumContentsLength(8)
        return c

    def _document(self) -> Any:
        try:
            return self._doc_provider()
        except Exception:  # pragma: no cover - defensive
            return None

    # --- refresh ---

    def _selection_panel(self, doc: Any) -> Optional[str]:
        try:
            sel = doc.selection()
            if sel is None or sel.width() <= 0:
                return None
            hit = panel_at(self._panels, sel.x() + sel.width() / 2.0, sel.y() + sel.height() / 2.0)
            return hit.name if hit is not None else None
        except Exception:  # pragma: no cover - a document closing under us
            return None

    def refresh(self, force: bool = False) -> None:
        doc = self._document()
        if any(c.view().isVisible() for c in (self.panel_combo, self.choice_combo, self.source)):
            return
        try:
            self._panels = read_panels(doc) if doc is not None else []
            sig = None if doc is None else (
                node_uid(doc.rootNode()), tuple(self._panels), palette_library.names(doc),
                panel_choices.load(doc).to_json(), tuple((n.name(), node_uid(n)) for _, n in iter_layers(doc.rootNode())),
            )
        except Exception:  # pragma: no cover - a document closing under us
            sig = None
        picked = self._selection_panel(doc) if doc is not None else None
        if picked is not None and picked != self._picked_by_selection:
            self._picked_by_selection = picked
            force = True
        elif picked is None:
            self._picked_by_selection = None
        if not force and sig == self._signature:
            return
        self._signature = sig
        self._rebuild(doc)
        if picked is not None:
            i = self.panel_combo.findData(picked)
            if i >= 0:
                self.panel_combo.setCurrentIndex(i)
                self._show_choice()

    def _rebuild(self, doc: Any) -> None:
        current = self.panel_combo.currentData()
        for c in (self.panel_combo, self.choice_combo, self.source):
            c.blockSignals(True)
            c.clear()
        self.library.blockSignals(True)
        self.library.clear()
        try:
            if doc is None:
                self.panel_combo.addItem("(no document)", None)
                return
            if not self._panels:
                self.panel_combo.addItem("(no Panels layer: the page is one)", None)
            for p in self._panels:
                self.panel_combo.addItem(p.name, p.name)
            i = self.panel_combo.findData(current)
            self.panel_combo.setCurrentIndex(max(0, i))
            page = set(panel_choices.load(doc).page_palettes)
            for p in palette_library.load(doc):
                item = QListWidgetItem(_swatch_icon(palette_library.swatch_colours(p)), p["name"], self.library)
                item.setData(Qt.UserRole, p["name"])
                item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                item.setCheckState(Qt.Checked if p["name"] in page else Qt.Unchecked)
            self._fill_sources(doc)
            self._fill_choices(doc)
        finally:
            for c in (self.panel_combo, self.choice_combo, self.source):
                c.blockSignals(False)
            self.library.blockSignals(False)
            self._update_buttons()

    def _layers(self, doc: Any) -> list:
        return [(d, n) for d, n in iter_layers(doc.rootNode())
                if n.type() in ("paintlayer", "filelayer", "grouplayer") and not is_own_layer(n.name(), n.type())]

    def _fill_sources(self, doc: Any) -> None:
        for depth, n in self._layers(doc):
            self.source.addItem("    " * depth + f"Layer: {n.name()}", ("reference", node_uid(n)))
        self.source.addItem("Hints", ("hints", ""))
        self.source.addItem("Selection (coloured page)", ("selection", ""))

    def _fill_choices(self, doc: Any) -> None:
        self.choice_combo.clear()
        name = self.panel_combo.currentData()
        self.choice_combo.setEnabled(name is not None)
        self.choice_combo.addItem("Page's colours", PAGE)
        for p in palette_library.names(doc):
            self.choice_combo.addItem(f"Palette: {p}", ("palette", p))
        for depth, n in self._layers(doc):
            if n.type() != "grouplayer":
                self.choice_combo.addItem(f"Layer: {n.name()}", ("reference", node_uid(n)))
        if name is None:
            return
        c = panel_choices.load(doc).of(name)
        want = ("palette", c.name) if c.kind == panel_choices.PALETTE else ("reference", c.uid) if c.kind == panel_choices.REFERENCE else PAGE
        i = self.choice_combo.findData(want)
        if i < 0 and c.kind != panel_choices.PAGE:
            self.choice_combo.addItem(f"{c.describe()} (missing)", want)
            i = self.choice_combo.count() - 1
        self.choice_combo.setCurrentIndex(max(0, i))

    def _show_choice(self) -> None:
        doc = self._document()
        if doc is not None:
            self.choice_combo.blockSignals(True)
            self._fill_choices(doc)
            self.choice_combo.blockSignals(False)

    # --- actions ---

    def _choice_picked(self, index: int) -> None:
        doc, panel = self._document(), self.panel_combo.currentData()
        data = self.choice_combo.itemData(index)
        if doc is None or panel is None or data is None:
            return
        if data == PAGE:
            choice = panel_choices.PanelChoice()
        elif data[0] == "palette":
            choice = panel_choices.PanelChoice.palette(data[1])
        else:
            from .layers import find_by_uid_text

            node = find_by_uid_text(doc, data[1])
            if node is None:
                return
            choice = panel_choices.PanelChoice.layer(node)
        self.pm.set_panel_choice(doc, panel, choice)

    def _ticked(self, _item: Any) -> None:
        doc = self._document()
        if doc is None:
            return
        names = [self.library.item(i).data(Qt.UserRole) for i in range(self.library.count())
                 if self.library.item(i).checkState() == Qt.Checked]
        self.pm.set_page_palettes(doc, names)

    def _detect(self) -> None:
        self.pm.detect_panels(self._document(), self.order.currentData() or "rtl")

    def _save(self) -> None:
        data = self.source.currentData() or ("reference", "")
        self.pm.save_palette(self.name_edit.text(), data[0], self._document(), data[1])

    def _selected_palettes(self) -> list[str]:
        return [i.data(Qt.UserRole) for i in self.library.selectedItems()]

    def _import(self) -> None:
        doc = self._document()
        path = self.ask_path(False, "Import MangaColor palettes") if doc is not None else ""
        if path:
            self.pm.import_palettes(doc, path)

    def _export(self) -> None:
        doc = self._document()
        path = self.ask_path(True, "Export MangaColor palettes") if doc is not None else ""
        if path:
            self.pm.export_palettes(doc, path, self._selected_palettes())

    def _delete(self) -> None:
        doc = self._document()
        for name in self._selected_palettes():
            self.pm.remove_palette(doc, name)

    def _model_changed(self) -> None:
        self.status.setText(("" if self.pm.ok else "Error: ") + self.pm.status)
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.pm.busy or self.pm.model.busy
        for b in (self.detect_button, self.save_button, self.import_button):
            b.setEnabled(not busy)
        has = self.library.count() > 0
        self.export_button.setEnabled(not busy and has)
        self.delete_button.setEnabled(not busy and has)
