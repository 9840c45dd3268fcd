"""The docker's "Layers" box: one picker per role (ink, hints, reference) with Auto / None / each layer, and
the New button of the hint layer. A pick is stored in the document (roles.py) through the model."""

from __future__ import annotations

from typing import Any, Callable

from . import roles
from .layers import find_by_uid_text, is_own_layer, iter_layers
from .qt import QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QToolButton, QWidget
from .role_finder import preview_roles

ROLE_LABELS = {"ink": "Ink:", "hints": "Hints:", "reference": "Reference:", "draft": "Draft:"}
ROLE_TIPS = {
    "ink": "The line-art layer to colorize. Auto: a layer named like 'Ink' or 'Lineart', else the active layer. "
    "The choice is saved in the document (.kra).",
    "hints": "The layer with colour hints (dots or strokes; it may be hidden). Auto: the layer named 'Hints'. "
    "The choice is saved in the document (.kra).",
    "reference": "An optional layer holding a colour picture whose colours the page should use. "
    "Auto: the layer named 'Reference'. The choice is saved in the document (.kra).",
    "draft": "An optional layer of rough colour washes the result should follow (painted colour = draft). "
    "Auto: the layer named 'Draft'; 'Keep as draft' under the variants makes one. The choice is saved in the document (.kra).",
}


class RolePickers(QGroupBox):
    def __init__(self, model: Any, doc_provider: Callable[[], Any], new_hint_layer: Callable[[], None], parent: QWidget):
        super().__init__("Layers", parent)
        self.setObjectName("mangacolor_layers")
        self.model = model
        self._doc_provider = doc_provider
        self._signature: Any = None
        form = QFormLayout(self)
        form.setContentsMargins(4, 4, 4, 4)
        self.combos: dict[str, QComboBox] = {}
        for role in roles.ROLES:
            combo = QComboBox(self)
            combo.setObjectName(f"mangacolor_role_{role}")
            combo.setToolTip(ROLE_TIPS[role])
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
            combo.activated.connect(lambda index, role=role: self._picked(role, index))
            self.combos[role] = combo
            if role != "hints":
                form.addRow(ROLE_LABELS[role], combo)
                continue
            row = QHBoxLayout()
            row.addWidget(combo, 1)
            self.new_hint_button = QToolButton(self)
            self.new_hint_button.setObjectName("mangacolor_new_hint_layer")
            self.new_hint_button.setText("New")
            self.new_hint_button.setToolTip(
                "MangaColor: New hint layer: create the 'Hints' layer directly above the ink (if there is none), "
                "make it active, and select a small hard brush"
            )
            self.new_hint_button.clicked.connect(new_hint_layer)
            row.addWidget(self.new_hint_button)
            form.addRow(ROLE_LABELS[role], row)

    def _document(self) -> Any:
        try:
            return self._doc_provider()
        except Exception:  # pragma: no cover - defensive
            return None

    def _signature_of(self, doc: Any) -> Any:
        """Everything the pickers show: rebuilt only when this changes (the docker looks a few times a second)."""
        if doc is None:
            return None
        try:
            active = doc.activeNode()
            return (
                roles.node_uid(doc.rootNode()),
                tuple((d, roles.node_uid(n), n.name(), n.type(), n.blendingMode()) for d, n in iter_layers(doc.rootNode())),
                roles.node_uid(active) if active is not None else "",
                roles.encode(roles.load(doc)),
                self.model.settings.hint_layer,
                self.model.settings.reference_layer,
            )
        except Exception:  # pragma: no cover - a document closing under us
            return None

    def refresh(self, force: bool = False) -> None:
        """Rebuild the pickers when the document, its layers, the active layer or the choices changed."""
        doc = self._document()
        if any(c.view().isVisible() for c in self.combos.values()):
            return  # never rebuild under an open popup
        signature = self._signature_of(doc)
        if not force and signature == self._signature:
            return
        self._signature = signature
        for combo in self.combos.values():
            combo.blockSignals(True)
            combo.clear()
        try:
            if signature is None:
                for combo in self.combos.values():
                    combo.addItem("(no document)", None)
                    combo.setEnabled(False)
                return
            self._fill(doc)
        finally:
            for combo in self.combos.values():
                combo.blockSignals(False)

    def _fill(self, doc: Any) -> None:
        choices = roles.load(doc)
        settings = self.model.settings
        preview = preview_roles(doc, choices, settings.hint_layer, settings.reference_layer)
        layers = [(d, n) for d, n in iter_layers(doc.rootNode()) if not is_own_layer(n.name(), n.type())]
        for role, combo in self.combos.items():
            combo.setEnabled(True)
            layer, text = preview[role]
            combo.addItem(f"Auto: {text}" if layer is not None else f"Auto ({text or 'none found'})", roles.AUTO)
            if role != "ink":
                combo.addItem("None", roles.NONE)
            for depth, node in layers:
                combo.addItem("    " * depth + node.name(), roles.node_uid(node))
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

    def _picked(self, role: str, index: int) -> None:
        data = self.combos[role].itemData(index)
        doc = self._document()
        if doc is None or data is None:
            return
        if data in (roles.AUTO, roles.NONE):
            choice = roles.Choice(data)
        else:
            node = find_by_uid_text(doc, str(data))
            if node is None:
                return
            choice = roles.Choice.layer(node)
        self.model.set_role(role, choice, doc)
