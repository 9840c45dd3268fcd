"""The docker's "Options" box: one control per option the backend lists (GET /v1/options), each with the
option's help as its tooltip, and Defaults. The values live in the model (option_values.py)."""

from __future__ import annotations

import json
from typing import Any

from . import options
from .qt import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QWidget

OPTION_PREFIX = "mangacolor_option_"


def tooltip(spec: options.OptionSpec) -> str:
    tip = spec.help or spec.name
    if spec.type in ("int", "float") and spec.min is not None and spec.max is not None:
        return tip + f" ({spec.min:g} to {spec.max:g}; default {spec.default})"
    return tip + f" (default {spec.default})"


class OptionControls(QWidget):
    def __init__(self, model: Any, show_error: Any, parent: QWidget):
        super().__init__(parent)
        self.setObjectName("mangacolor_options_box")
        self.model = model
        self._show_error = show_error
        self.controls: dict[str, QWidget] = {}
        self._labels: list[QLabel] = []
        self.form = QFormLayout(self)
        self.form.setContentsMargins(12, 0, 0, 0)
        self.empty = QLabel("The options appear once the backend answers (Check, below).", self)
        self.empty.setObjectName("mangacolor_options_empty")
        self.empty.setWordWrap(True)
        self.form.addRow(self.empty)
        self.reset = QPushButton("Defaults", self)
        self.reset.setObjectName("mangacolor_options_reset")
        self.reset.setToolTip("Set every option back to the backend's default")
        self.reset.clicked.connect(self.model.reset_options)

    def rebuild(self) -> None:
        while self.form.rowCount() > 0:
            self.form.takeRow(0)
        for w in list(self.controls.values()) + self._labels:
            w.setVisible(False)
            w.deleteLater()
        self.controls = {}
        self._labels = []
        specs = self.model.options.specs
        if not specs:
            self.form.addRow(self.empty)
            self.empty.setVisible(True)
            self.reset.setVisible(False)
            return
        self.empty.setVisible(False)
        values = self.model.options.effective()
        for spec in specs:
            w = self._control(spec, values[spec.name])
            w.setObjectName(OPTION_PREFIX + spec.name)
            w.setToolTip(tooltip(spec))
            label = QLabel(spec.label + ":", self)
            label.setToolTip(tooltip(spec))
            self.form.addRow(label, w)
            self.controls[spec.name] = w
            self._labels.append(label)
        self.reset.setVisible(True)
        self.form.addRow(self.reset)

    def _control(self, spec: options.OptionSpec, value: Any) -> QWidget:
        name = spec.name
        if spec.type == "bool":
            w = QCheckBox(self)
            w.setChecked(bool(value))
            w.toggled.connect(lambda on: self._changed(name, bool(on)))
        elif spec.type == "enum":
            w = QComboBox(self)
            for choice in spec.choices:
                w.addItem(str(choice), choice)
            w.setCurrentIndex(max(0, w.findData(value)))
            w.activated.connect(lambda i: self._changed(name, w.itemData(i)))
        elif spec.type == "int":
            w = QSpinBox(self)
            w.setRange(int(spec.min) if spec.min is not None else -(2**31), int(spec.max) if spec.max is not None else 2**31 - 1)
            w.setValue(int(value))
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v: self._changed(name, int(v)))
        elif spec.type == "float":
            w = QDoubleSpinBox(self)
            lo = spec.min if spec.min is not None else -1e9
            hi = spec.max if spec.max is not None else 1e9
            w.setDecimals(2 if hi - lo <= 10 else 1)
            w.setSingleStep(0.05 if hi - lo <= 2 else 1.0)
            w.setRange(lo, hi)
            w.setValue(float(value))
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v: self._changed(name, float(v)))
        else:  # text, or an option type this plugin does not know yet: JSON in a text field
            w = QLineEdit(self)
            w.setText(value if spec.type == "string" else json.dumps(value))
            w.editingFinished.connect(lambda: self._text(spec, w))
        return w

    def _text(self, spec: options.OptionSpec, w: QLineEdit) -> None:
        text = w.text()
        if spec.type == "string":
            self._changed(spec.name, text)
            return
        try:
            self._changed(spec.name, json.loads(text))
        except ValueError:
            w.setText(json.dumps(self.model.options.value(spec.name)))

    def _changed(self, name: str, value: Any) -> None:
        try:
            self.model.options.set(name, value)
        except ValueError as exc:
            self._show_error(f"Error: {exc}")
