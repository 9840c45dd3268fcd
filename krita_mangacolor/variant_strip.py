"""The docker's "Variants" box (issue 13): one thumbnail button per variant of the last run (the backend's
`variants` option), the one in the MangaColor layer checked. Clicking another makes it the result layer (one
undoable change, like a result); "Keep as draft" turns the checked one into the Draft layer. Hidden when the
last run made one image; a new run clears it. Qt only (qt.py); the model does the work (result_actions.py).
"""

from __future__ import annotations

from typing import Any

from .qt import QButtonGroup, QGroupBox, QHBoxLayout, QIcon, QPixmap, QPushButton, QSize, QToolButton, QVBoxLayout, QWidget
from .result_reader import THUMB_PX


class VariantStrip(QGroupBox):
    def __init__(self, model: Any, parent: QWidget):
        super().__init__("Variants", parent)
        self.setObjectName("mangacolor_variants")
        self.model = model
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.row = QHBoxLayout()
        self.row.setSpacing(2)
        self.row.addStretch(1)  # the thumbnails go before it, left-aligned
        layout.addLayout(self.row)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.buttons: list[QToolButton] = []
        self.keep_button = QPushButton("Keep as draft", self)
        self.keep_button.setObjectName("mangacolor_keep_as_draft")
        self.keep_button.setToolTip(
            "Copy the checked variant into the 'Draft' layer (made above the result if there is none): steer it "
            "with a few brush strokes and press Colorize again"
        )
        self.keep_button.clicked.connect(lambda: self.model.keep_as_draft(self.model.chosen_variant))
        layout.addWidget(self.keep_button)
        model.variants_changed.connect(self.rebuild)
        model.changed.connect(self.update_buttons)
        self.rebuild()

    def rebuild(self) -> None:
        for b in self.buttons:
            self.group.removeButton(b)
            self.row.removeWidget(b)
            b.deleteLater()
        self.buttons = []
        for v in self.model.variants:
            b = QToolButton(self)
            b.setObjectName(f"mangacolor_variant_{v.number}")
            b.setCheckable(True)
            b.setIcon(QIcon(QPixmap.fromImage(v.thumb)))
            b.setIconSize(QSize(THUMB_PX, THUMB_PX))
            b.setToolTip(f"Variant {v.number}: click to make it the MangaColor layer (undoable)")
            b.clicked.connect(lambda _checked=False, n=v.number: self._picked(n))
            self.group.addButton(b)
            self.row.insertWidget(self.row.count() - 1, b)
            self.buttons.append(b)
        self.setVisible(bool(self.buttons))
        self.update_buttons()

    def _picked(self, number: int) -> None:
        if number != self.model.chosen_variant:
            self.model.pick_variant(number)
        self.update_buttons()

    def update_buttons(self) -> None:
        busy = self.model.busy
        for b, v in zip(self.buttons, self.model.variants):
            b.setChecked(v.number == self.model.chosen_variant)
            b.setEnabled(not busy)
        self.keep_button.setEnabled(not busy and bool(self.buttons))
