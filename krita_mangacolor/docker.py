"""The "MangaColor" docker (Settings > Dockers > MangaColor)."""

from __future__ import annotations

import krita as krita_module
from krita import DockWidget, Krita

from . import actions, tools, ui_model
from .qt import QTimer
from .widgets import MangaColorWidget

DOCKER_ID = "mangacolor_docker"
DOCKER_TITLE = "MangaColor"
REFRESH_MS = 700


class MangaColorDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle(DOCKER_TITLE)
        app = Krita.instance()
        self.model = ui_model.instance(app)
        self.widget = MangaColorWidget(
            self.model,
            app.writeSetting,
            self,
            doc_provider=app.activeDocument,
            actions={"new_hint_layer": actions.new_hint_layer, "export_colorize_mask": actions.export_colorize_mask},
        )
        self.widget.set_colorize_mask_support(*tools.colorize_mask_support(krita_module, app))
        self.setWidget(self.widget)
        # Keep the layer pickers in step with the document: libkis has no "layers changed" or "active layer
        # changed" signal, so look a few times a second while the docker is visible (a cheap walk of the tree).
        self._layer_timer = QTimer(self)
        self._layer_timer.timeout.connect(self._refresh)
        self._layer_timer.start(REFRESH_MS)
        QTimer.singleShot(0, self.model.connection.check)

    def _refresh(self) -> None:
        if self.isVisible() and not self.model.busy:
            self.widget.roles.refresh()
            self.widget.panels.refresh()  # panels, palettes, and the panel a selection is in

    def canvasChanged(self, canvas):  # required by DockWidget: the active view changed
        if self.isVisible():
            self.widget.roles.refresh()
